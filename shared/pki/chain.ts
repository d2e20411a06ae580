import { CertificateVerificationError, PkiError } from "./errors";
import { decodePem, PemBlock } from "./pem";

/**
 * cert-chain.pem for Istio: leaf-most first, i.e. the intermediate (its trailing newlines trimmed) and
 * then the root exactly as the issuer returned it, as Gloo Mesh writes it.
 */
export function buildCertChain(intermediatePem: string, rootPem: string): string {
  return `${intermediatePem.replace(/[\r\n]+$/, "")}\n${rootPem}`;
}

/**
 * The check of buildCertChain's output: chainPem holds exactly the certificates of intermediatePem and
 * then those of rootPem, compared as DER (line breaks and text between blocks do not matter, as for
 * openssl and Go). Anything else, text that is no PEM included, is a CertificateVerificationError
 * "ChainMismatch".
 */
export function verifyCertChain(chainPem: string, intermediatePem: string, rootPem: string): void {
  const wanted = [...blocksOf(intermediatePem), ...blocksOf(rootPem)];
  const found = blocksOf(chainPem);
  const same = wanted.length === found.length &&
    wanted.every((block, i) => block.label === "CERTIFICATE" && found[i].label === "CERTIFICATE" && Buffer.from(block.der).equals(found[i].der));
  if (!same) throw new CertificateVerificationError("ChainMismatch", "cert-chain.pem is not ca-cert.pem followed by root-cert.pem");
}

/** The PEM blocks of text; none when it is no PEM. */
function blocksOf(text: string): PemBlock[] {
  try {
    return decodePem(text).blocks;
  } catch (error) {
    if (error instanceof PkiError) return [];
    throw error;
  }
}
