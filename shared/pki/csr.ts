import { id_ce_subjectAltName } from "@peculiar/asn1-x509";
import { x509 } from "./crypto-provider";
import { PkiError } from "./errors";
import { readSubjectAltNames, subjectAltNameExtension } from "./hosts";
import { type KeySpec, keySpecOfKey, signingAlgorithmFor } from "./key-spec";
import { ORGANIZATION_OID, singleAttributeName } from "./names";
import { decodePem, encodePem, toArrayBuffer } from "./pem";
import { importSpki } from "./spki";

const CSR_LABELS = ["CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"];

export interface CsrRequest {
  keys: CryptoKeyPair;
  org: string;
  hosts: string[];
}

/**
 * The CSR Gloo Mesh's agent sends: subject O=<org> and nothing else (no CN; empty when org is empty), one
 * critical SubjectAltName with every host, signed with SHA-256. With no hosts there is no SAN extension at
 * all, because an empty GeneralNames is invalid DER (RFC 5280 requires at least one name) and Go/Istio
 * omit the extension likewise.
 */
export async function buildCsr({ keys, org, hosts }: CsrRequest): Promise<string> {
  const spec = keySpecOfKey(keys.privateKey);
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = await x509.Pkcs10CertificateRequestGenerator.create({
      ...(org ? { name: singleAttributeName(ORGANIZATION_OID, org) } : {}),
      extensions: hosts.length > 0 ? [subjectAltNameExtension(hosts)] : [],
      signingAlgorithm: signingAlgorithmFor(spec),
      keys,
    });
  } catch (error) {
    if (error instanceof PkiError) throw error;
    throw new PkiError(`CSR could not be created with the ${spec.algorithm} key`);
  }
  return encodePem("CERTIFICATE REQUEST", csr.rawData);
}

export interface ParsedCsr {
  publicKey: CryptoKey;
  spec: KeySpec;
  /** SAN values in CSR order; IPs in their canonical text form. */
  hosts: string[];
  /** The first O= of the subject, "" when there is none. */
  org: string;
  /** Whether the CSR's self-signature verifies with the public key it carries (proof of possession). */
  valid: boolean;
}

export async function parseCsr(pem: string): Promise<ParsedCsr> {
  const der = singleCsrBlock(pem);
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(toArrayBuffer(der));
  } catch {
    throw new PkiError("not a valid PKCS#10 certificate request (DER decoding failed)");
  }
  const { key: publicKey, spec } = await importSpki(new Uint8Array(csr.publicKey.rawData));
  let valid: boolean;
  try {
    valid = await csr.verify();
  } catch {
    valid = false;
  }
  let hosts: string[];
  try {
    // @peculiar/x509 decodes the extensions on first access, each as its type (SubjectAltName included),
    // so a malformed one throws here, with the library's error.
    const sanExtensions = csr.extensions.filter((e) => e.type === id_ce_subjectAltName);
    if (sanExtensions.length > 1) throw new PkiError("CSR has more than one SubjectAltName extension");
    hosts = sanExtensions[0] ? readSubjectAltNames(sanExtensions[0].value).map((e) => e.value) : [];
  } catch (error) {
    if (error instanceof PkiError) throw error;
    throw new PkiError("CSR has a malformed extension (DER decoding failed)");
  }
  return { publicKey, spec, hosts, org: csr.subjectName.getField(ORGANIZATION_OID)[0] ?? "", valid };
}

function singleCsrBlock(pem: string): Uint8Array {
  if (typeof pem !== "string") throw new PkiError("CSR PEM must be a string");
  const blocks = decodePem(pem).blocks.filter((b) => CSR_LABELS.includes(b.label));
  if (blocks.length !== 1) throw new PkiError(`expected one PEM CERTIFICATE REQUEST, found ${blocks.length}`);
  return (blocks[0] as { der: Uint8Array }).der;
}
