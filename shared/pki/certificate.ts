import { id_ce_subjectAltName } from "@peculiar/asn1-x509";
import { x509 } from "./crypto-provider";
import { CertificateVerificationError, PkiError } from "./errors";
import { type SanEntry, readSubjectAltNames } from "./hosts";
import { describeKeySpec } from "./key-spec";
import { decodePem, toArrayBuffer } from "./pem";
import { importSpki } from "./spki";

/** What a certificate says about itself; safe to log (no key material). */
export interface CertificateSummary {
  /** RFC 4514 text, "" for the empty subject our intermediates have. */
  subject: string;
  issuer: string;
  /** SAN values in certificate order (IPs in canonical text). */
  sans: string[];
  notBefore: Date;
  notAfter: Date;
  /** Lower-case hex, without a sign byte. */
  serialNumber: string;
  /** describeKeySpec of the certified key, e.g. "RSA-4096". */
  keyDescription: string;
}

export interface ParsedCertificate {
  certificate: x509.X509Certificate;
  sanEntries: SanEntry[];
  publicKey: CryptoKey;
  summary: CertificateSummary;
}

/**
 * Exactly one PEM CERTIFICATE and nothing else: these bytes are written to ca-cert.pem as they are, so
 * a second certificate or stray text is refused instead of guessed at. Everything is decoded up front
 * (extensions included), so later checks cannot trip over a malformed field.
 */
export async function parseSingleCertificatePem(pem: string, what = "certificate"): Promise<ParsedCertificate> {
  const malformed = (message: string) => new CertificateVerificationError("Malformed", `${what}: ${message}`);
  if (typeof pem !== "string" || pem.trim() === "") throw malformed("empty");
  let document;
  try {
    document = decodePem(pem);
  } catch (error) {
    throw malformed(error instanceof PkiError ? error.message : "not PEM");
  }
  const certificates = document.blocks.filter((b) => b.label === "CERTIFICATE");
  if (document.blocks.length === 0) throw malformed("no PEM block found");
  if (certificates.length !== document.blocks.length) throw malformed("contains PEM blocks other than CERTIFICATE");
  if (certificates.length !== 1) throw malformed(`expected exactly one certificate, found ${certificates.length}`);
  if (document.hasStrayText) throw malformed("contains text outside the PEM block");
  return parseCertificateDer((certificates[0] as { der: Uint8Array }).der, malformed);
}

/** All CERTIFICATE blocks of a bundle (a root-cert.pem may hold several roots while a root is rotated). */
export async function parseCertificateBundlePem(pem: string, what: string): Promise<ParsedCertificate[]> {
  const malformed = (message: string) => new CertificateVerificationError("Malformed", `${what}: ${message}`);
  if (typeof pem !== "string" || pem.trim() === "") throw malformed("empty");
  let blocks;
  try {
    blocks = decodePem(pem).blocks.filter((b) => b.label === "CERTIFICATE");
  } catch (error) {
    throw malformed(error instanceof PkiError ? error.message : "not PEM");
  }
  if (blocks.length === 0) throw malformed("no PEM CERTIFICATE block found");
  return Promise.all(blocks.map((b) => parseCertificateDer(b.der, malformed)));
}

/** Reads a single PEM certificate without verifying anything (e.g. to plan a rotation from notAfter). */
export async function describeCertificate(pem: string): Promise<CertificateSummary> {
  return (await parseSingleCertificatePem(pem)).summary;
}

/**
 * Certificates parsed lately, by their DER (base64): a pass parses the same intermediate and root
 * several times (describe, verify, chain), the passes of one issuance parse the same answer again, and
 * ASN.1 parsing in JavaScript is most of the agent's CPU. Only successes are kept; what is kept is
 * public (certificates and their public keys) and never changed by its users.
 */
const parsedLately = new Map<string, Promise<ParsedCertificate>>();
export const PARSED_CERTIFICATES_KEPT = 128;

function parseCertificateDer(der: Uint8Array, malformed: (message: string) => CertificateVerificationError): Promise<ParsedCertificate> {
  const key = Buffer.from(der).toString("base64");
  const kept = parsedLately.get(key);
  if (kept) {
    // Most recently used last: the first entry is the one to drop.
    parsedLately.delete(key);
    parsedLately.set(key, kept);
    return kept;
  }
  const parsing = parseCertificateDerAnew(der, malformed);
  parsedLately.set(key, parsing);
  if (parsedLately.size > PARSED_CERTIFICATES_KEPT) parsedLately.delete(parsedLately.keys().next().value!);
  parsing.catch(() => parsedLately.delete(key));
  return parsing;
}

async function parseCertificateDerAnew(
  der: Uint8Array,
  malformed: (message: string) => CertificateVerificationError,
): Promise<ParsedCertificate> {
  let certificate: x509.X509Certificate;
  let sanEntries: SanEntry[];
  try {
    certificate = new x509.X509Certificate(toArrayBuffer(der));
    const types = certificate.extensions.map((e) => e.type);
    // Go (and so istiod) refuses certificates with a repeated extension.
    if (new Set(types).size !== types.length) throw malformed("repeats an extension");
    const sanExtension = certificate.extensions.find((e) => e.type === id_ce_subjectAltName);
    sanEntries = sanExtension ? readSubjectAltNames(sanExtension.value) : [];
    certificate.getExtension(x509.BasicConstraintsExtension);
    certificate.getExtension(x509.KeyUsagesExtension);
  } catch (error) {
    if (error instanceof CertificateVerificationError) throw error;
    throw malformed("not a parseable X.509 certificate");
  }
  let imported;
  try {
    imported = await importSpki(new Uint8Array(certificate.publicKey.rawData));
  } catch (error) {
    // An unsupported key cannot be ours, which is the more useful thing to report.
    throw new CertificateVerificationError(
      "PublicKeyMismatch",
      error instanceof PkiError ? `certified public key: ${error.message}` : "certified public key cannot be read",
    );
  }
  return {
    certificate,
    sanEntries,
    publicKey: imported.key,
    summary: {
      subject: certificate.subject,
      issuer: certificate.issuer,
      sans: sanEntries.map((e) => e.value),
      notBefore: certificate.notBefore,
      notAfter: certificate.notAfter,
      serialNumber: certificate.serialNumber.toLowerCase(),
      keyDescription: describeKeySpec(imported.spec),
    },
  };
}
