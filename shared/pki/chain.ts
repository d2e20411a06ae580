/**
 * cert-chain.pem for Istio: leaf-most first, i.e. the intermediate (its trailing newlines trimmed) and
 * then the root exactly as the issuer returned it, as Gloo Mesh writes it.
 */
export function buildCertChain(intermediatePem: string, rootPem: string): string {
  return `${intermediatePem.replace(/[\r\n]+$/, "")}\n${rootPem}`;
}
