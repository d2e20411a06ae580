// The reference issuer's signing step (management-plane side), as Gloo Mesh's issuer does it: see
// docs/issuer.md. The Misbehaviour switch makes it return each kind of bad answer on purpose,
// so tests can prove the agent refuses them.
import { x509 } from "../../shared/pki/crypto-provider";
import { subjectAltNameExtension } from "../../shared/pki/hosts";
import { signingAlgorithmFor } from "../../shared/pki/key-spec";
import { COMMON_NAME_OID, singleAttributeName } from "../../shared/pki/names";
import { encodePem } from "../../shared/pki/pem";
import {
  type KeySpec,
  PkiError,
  exportPrivateKeyPem,
  generateKeyPair,
  importPrivateKeyPem,
  parseCsr,
} from "../../shared/pki";

export type Misbehaviour =
  | "none"
  | "wrong-key"
  | "foreign-root"
  | "not-a-ca"
  | "expired"
  | "not-yet-valid"
  | "wrong-sans"
  | "garbage"
  | "empty";

export const MISBEHAVIOURS: readonly Misbehaviour[] = [
  "none",
  "wrong-key",
  "foreign-root",
  "not-a-ca",
  "expired",
  "not-yet-valid",
  "wrong-sans",
  "garbage",
  "empty",
];

/** The signing secret's content: root-cert.pem and key.pem. */
export interface RootCa {
  certPem: string;
  keyPem: string;
}

export interface CreateRootCaOptions {
  commonName?: string;
  /** Default RSA-2048: quick to make, and every agent key type can be signed by it. */
  spec?: KeySpec;
  days?: number;
  now?: Date;
}

export interface SignIntermediateRequest {
  csrPem: string;
  /** IssuedCertificate.spec.hosts: the SANs come from here, never from the CSR. */
  hosts: string[];
  /** certOptions.ttlDays; 0 means one year (Gloo Mesh's default). */
  ttlDays: number;
  root: RootCa;
  now?: Date;
  misbehave?: Misbehaviour;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const DEFAULT_TTL_DAYS = 365;
/** A PEM block that decodes fine but holds no certificate: exercises the parser, not just the PEM reader. */
const GARBAGE_RESPONSE = encodePem("CERTIFICATE", Buffer.from("this is not an X.509 certificate"));

export async function createRootCa(options: CreateRootCaOptions = {}): Promise<RootCa> {
  const name = singleAttributeName(COMMON_NAME_OID, options.commonName ?? "cert-agent reference root CA");
  return selfSignedRoot(name, options.spec ?? { algorithm: "RSA", bits: 2048 }, options.days ?? 3650, options.now ?? new Date());
}

/**
 * Signs the agent's CSR as an intermediate CA: random positive serial below 2^128, EMPTY subject, critical
 * SAN from `hosts`, KeyUsage keyCertSign only, BasicConstraints CA=true (both critical), NotBefore now,
 * NotAfter now + ttlDays, the CSR's public key, SKI and AKI, SHA-256 signature by the root key.
 * A CSR whose self-signature does not verify is refused: its sender has not proven it holds the key.
 */
const MAX_TTL_DAYS = 36_500;

export async function signIntermediate(request: SignIntermediateRequest): Promise<string> {
  const misbehave = request.misbehave ?? "none";
  if (misbehave === "empty") return "";
  if (misbehave === "garbage") return GARBAGE_RESPONSE;

  const csr = await parseCsr(request.csrPem);
  if (!csr.valid) throw new PkiError("CSR signature does not verify with the public key it carries; refusing to sign");
  if (request.hosts.length === 0) {
    throw new PkiError("no hosts: an intermediate with an empty subject needs at least one SubjectAltName");
  }
  // At most 100 years, as the CRD allows: 2^32-1 days overflowed the date into 1899.
  if (!Number.isInteger(request.ttlDays) || request.ttlDays < 0 || request.ttlDays > MAX_TTL_DAYS) {
    throw new PkiError(`ttlDays must be an integer from 0 to ${MAX_TTL_DAYS}, got ${request.ttlDays}`);
  }

  const now = request.now ?? new Date();
  let root = await loadRoot(request.root);
  if (misbehave === "foreign-root") {
    // Same subject name, different key: only the signature check can tell them apart.
    root = await loadRoot(await selfSignedRoot(root.certificate.subjectName, { algorithm: "ECDSA", curve: "P-256" }, 3650, now));
  }
  const publicKey = misbehave === "wrong-key" ? (await generateKeyPair(csr.spec)).publicKey : csr.publicKey;
  const { notBefore, notAfter } = validityWindow(now, (request.ttlDays || DEFAULT_TTL_DAYS) * DAY_MS, misbehave);
  const hosts = misbehave === "wrong-sans" ? [...request.hosts, "unexpected.example.com"] : request.hosts;

  const certificate = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumberHex(),
    issuer: root.certificate.subjectName,
    // No subject: Gloo Mesh leaves it empty, which is why the SAN extension must be critical.
    notBefore,
    notAfter,
    publicKey,
    signingKey: root.privateKey,
    signingAlgorithm: signingAlgorithmFor(root.spec),
    extensions: [
      subjectAltNameExtension(hosts),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign, true),
      new x509.BasicConstraintsExtension(misbehave !== "not-a-ca", undefined, true),
      await x509.SubjectKeyIdentifierExtension.create(publicKey),
      await authorityKeyIdentifier(root.certificate),
    ],
  });
  return encodePem("CERTIFICATE", certificate.rawData);
}

async function selfSignedRoot(name: x509.Name, spec: KeySpec, days: number, now: Date): Promise<RootCa> {
  const keys = await generateKeyPair(spec);
  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialNumberHex(),
    name,
    notBefore: now,
    notAfter: new Date(now.getTime() + days * DAY_MS),
    keys,
    signingAlgorithm: signingAlgorithmFor(spec),
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certPem: encodePem("CERTIFICATE", certificate.rawData), keyPem: await exportPrivateKeyPem(keys.privateKey) };
}

async function loadRoot(root: RootCa) {
  let certificate: x509.X509Certificate;
  try {
    certificate = new x509.X509Certificate(root.certPem);
  } catch {
    throw new PkiError("signing secret: root-cert.pem is not a valid certificate");
  }
  const { privateKey, spec } = await importPrivateKeyPem(root.keyPem);
  return { certificate, privateKey, spec };
}

function validityWindow(now: Date, ttlMs: number, misbehave: Misbehaviour): { notBefore: Date; notAfter: Date } {
  switch (misbehave) {
    case "expired":
      return { notBefore: new Date(now.getTime() - DAY_MS - ttlMs), notAfter: new Date(now.getTime() - DAY_MS) };
    case "not-yet-valid":
      return { notBefore: new Date(now.getTime() + DAY_MS), notAfter: new Date(now.getTime() + DAY_MS + ttlMs) };
    default:
      return { notBefore: now, notAfter: new Date(now.getTime() + ttlMs) };
  }
}

/** 16 random bytes: a positive integer below 2^128 (the generator adds a 0x00 sign byte when needed). */
function randomSerialNumberHex(): string {
  return Buffer.from(globalThis.crypto.getRandomValues(new Uint8Array(16))).toString("hex");
}

/** The root's own SKI when it has one, so that AKI matches it byte for byte; else derived from its key. */
async function authorityKeyIdentifier(rootCertificate: x509.X509Certificate): Promise<x509.AuthorityKeyIdentifierExtension> {
  const ski = rootCertificate.getExtension(x509.SubjectKeyIdentifierExtension);
  return ski ? new x509.AuthorityKeyIdentifierExtension(ski.keyId) : x509.AuthorityKeyIdentifierExtension.create(rootCertificate.publicKey);
}
