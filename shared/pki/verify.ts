import { x509 } from "./crypto-provider";
import { CertificateVerificationError } from "./errors";
import { type CertificateSummary, type ParsedCertificate, parseCertificateBundlePem, parseSingleCertificatePem } from "./certificate";
import { hostComparisonKey, sanComparisonKey } from "./hosts";
import { importPrivateKeyPem } from "./keys";
import { samePublicKey } from "./spki";

export interface VerifyCaCertificateRequest {
  /** signedCertificate from the CertificateRequest (or a target's ca-cert.pem): one PEM certificate. */
  certificatePem: string;
  /** signingRootCa (or root-cert.pem): one or more PEM root certificates. */
  rootPem: string;
  /** The public half of the key we generated and put in the CSR (or of ca-key.pem). */
  publicKey: CryptoKey;
  now: Date;
  /**
   * Accept a notBefore (of the certificate or the root) up to this far in the future. The issuer stamps
   * notBefore with ITS clock; an agent clock a second behind would otherwise refuse a fresh certificate.
   * Default 0 (strict).
   */
  clockSkewToleranceMs?: number;
}

export interface VerifyIssuedCertificateRequest extends VerifyCaCertificateRequest {
  /** The IssuedCertificate's spec.hosts. */
  hosts: string[];
}

export type VerifiedCertificate = CertificateSummary;

// Go refuses SHA-1 and MD5 signatures in chains since 1.18; istiod and Envoy would not accept them either.
const ACCEPTED_SIGNATURE_HASHES = new Set(["SHA-256", "SHA-384", "SHA-512"]);

/**
 * The checks istiod makes on a plugged-in CA (and cert-manager on an issued certificate), in the order that
 * gives the most useful reason first. Each failure is a CertificateVerificationError with its own reason;
 * messages carry names, dates and SANs, never key material.
 */
export async function verifyIssuedCertificate(request: VerifyIssuedCertificateRequest): Promise<VerifiedCertificate> {
  const parsed = await verifiedCa(request);
  checkSans(parsed, request.hosts);
  return parsed.summary;
}

/**
 * verifyIssuedCertificate without the SANs: whether istiod can use the certificate as its plugged-in CA
 * with this key and root. The SANs are the spec's business (a re-issue policy of the agent).
 */
export async function verifyCaCertificate(request: VerifyCaCertificateRequest): Promise<VerifiedCertificate> {
  return (await verifiedCa(request)).summary;
}

async function verifiedCa(request: VerifyCaCertificateRequest): Promise<ParsedCertificate> {
  const parsed = await parseSingleCertificatePem(request.certificatePem, "signed certificate");
  if (!(await samePublicKey(parsed.publicKey, request.publicKey))) {
    throw new CertificateVerificationError(
      "PublicKeyMismatch",
      "the certificate certifies a different public key than the one in our CSR",
    );
  }
  const signer = await checkSignedByRoot(parsed, request.rootPem);
  checkIsCertificateAuthority(parsed.certificate);
  const tolerance = request.clockSkewToleranceMs ?? 0;
  checkValidity("certificate", parsed.summary, request.now, tolerance);
  // istiod verifies the whole chain at its clock; a root outside its window fails the same way.
  checkValidity("signing root", signer.summary, request.now, tolerance);
  return parsed;
}

/** Whether certPem certifies the public half of privateKeyPem (istiod's key/cert match). Malformed input throws PkiError. */
export async function certificateMatchesPrivateKey(certPem: string, privateKeyPem: string): Promise<boolean> {
  const { publicKey: certified } = await parseSingleCertificatePem(certPem);
  const { publicKey } = await importPrivateKeyPem(privateKeyPem);
  return samePublicKey(certified, publicKey);
}

/** Returns the root that signed the certificate. */
async function checkSignedByRoot(parsed: ParsedCertificate, rootPem: string): Promise<ParsedCertificate> {
  const untrusted = (message: string) => new CertificateVerificationError("UntrustedChain", message);
  let roots: ParsedCertificate[];
  try {
    roots = await parseCertificateBundlePem(rootPem, "signing root");
  } catch (error) {
    throw untrusted(error instanceof CertificateVerificationError ? error.detail : "signing root is malformed");
  }
  const { certificate } = parsed;
  const hash = certificate.signatureAlgorithm.hash?.name ?? "none";
  if (!ACCEPTED_SIGNATURE_HASHES.has(hash)) throw untrusted(`certificate is signed with ${hash}; SHA-256 or stronger is required`);

  const issuerName = Buffer.from(certificate.issuerName.toArrayBuffer());
  const namedRoots = roots.filter((r) => issuerName.equals(Buffer.from(r.certificate.subjectName.toArrayBuffer())));
  if (namedRoots.length === 0) {
    throw untrusted(
      `certificate issuer "${certificate.issuer}" is not the subject of the signing root ` +
        `(${roots.map((r) => `"${r.summary.subject}"`).join(", ")})`,
    );
  }
  let signer: ParsedCertificate | undefined;
  for (const root of namedRoots) {
    if (await signedBy(certificate, root.certificate)) {
      signer = root;
      break;
    }
  }
  if (!signer) throw untrusted(`certificate signature does not verify with the key of root "${certificate.issuer}"`);

  const constraints = signer.certificate.getExtension(x509.BasicConstraintsExtension);
  if (!constraints?.ca) throw untrusted("the signing root is not a CA (BasicConstraints CA is not true)");
  if (constraints.pathLength === 0) throw untrusted("the signing root allows no intermediate CA (pathLenConstraint 0)");
  const usages = signer.certificate.getExtension(x509.KeyUsagesExtension);
  if (usages && !(usages.usages & x509.KeyUsageFlags.keyCertSign)) {
    throw untrusted("the signing root's KeyUsage does not allow certificate signing");
  }
  return signer;
}

/** Whether root's key made the certificate's signature. A signature that does not even decode (a damaged
 * ECDSA value: @peculiar/x509 throws instead of answering false) is no signature of root's either. */
async function signedBy(certificate: x509.X509Certificate, root: x509.X509Certificate): Promise<boolean> {
  try {
    return await certificate.verify({ publicKey: root.publicKey, signatureOnly: true });
  } catch {
    return false;
  }
}

/**
 * Istio signs workload certificates with this key, and Envoy (BoringSSL) refuses a chain whose CA lacks
 * CA=true, or whose KeyUsage, when present, lacks keyCertSign.
 */
function checkIsCertificateAuthority(certificate: x509.X509Certificate): void {
  const constraints = certificate.getExtension(x509.BasicConstraintsExtension);
  if (!constraints?.ca) {
    throw new CertificateVerificationError(
      "NotACA",
      constraints ? "BasicConstraints CA is false" : "the certificate has no BasicConstraints extension",
    );
  }
  const usages = certificate.getExtension(x509.KeyUsagesExtension);
  if (usages && !(usages.usages & x509.KeyUsageFlags.keyCertSign)) {
    throw new CertificateVerificationError("NotACA", "KeyUsage does not include Certificate Sign");
  }
}

function checkValidity(what: string, summary: CertificateSummary, now: Date, clockSkewToleranceMs: number): void {
  if (now.getTime() + clockSkewToleranceMs < summary.notBefore.getTime()) {
    throw new CertificateVerificationError(
      "NotYetValid",
      `${what} is valid from ${summary.notBefore.toISOString()}, now is ${now.toISOString()}`,
    );
  }
  if (now > summary.notAfter) {
    throw new CertificateVerificationError(
      "Expired",
      `${what} expired at ${summary.notAfter.toISOString()}, now is ${now.toISOString()}`,
    );
  }
}

/** Set equality by (type, value): an IP host must be an IP SAN, a spiffe:// host a URI SAN, anything else DNS. */
function checkSans(parsed: ParsedCertificate, hosts: readonly string[]): void {
  const wanted = new Map(hosts.map((h) => [hostComparisonKey(h), h]));
  const present = new Map(parsed.sanEntries.map((e) => [sanComparisonKey(e), e.value]));
  const missing = [...wanted].filter(([key]) => !present.has(key)).map(([, host]) => host);
  const unexpected = [...present].filter(([key]) => !wanted.has(key)).map(([, value]) => value);
  if (missing.length > 0 || unexpected.length > 0) {
    throw new CertificateVerificationError(
      "SANMismatch",
      `certificate SANs differ from the requested hosts: missing ${JSON.stringify(missing)}, unexpected ${JSON.stringify(unexpected)}`,
    );
  }
}
