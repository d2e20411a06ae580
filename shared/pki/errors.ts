import { boundedText } from "../text/bounded";

/**
 * Any failure to generate, parse or encode key material, CSRs or certificates.
 *
 * Messages are built only from our own words and from non-secret facts (lengths, labels, sizes). They
 * never quote the input and never carry the underlying library error as `cause`, because a parser's
 * message may echo bytes of a private key, and errors end up in logs, Events and CR status fields.
 */
export class PkiError extends Error {
  override readonly name: string = "PkiError";
}

/** Why a certificate returned by the issuer was refused; each maps to one check istiod or cert-manager makes. */
export type CertificateVerificationReason =
  | "Malformed"
  | "PublicKeyMismatch"
  | "UntrustedChain"
  | "NotACA"
  | "NotYetValid"
  | "Expired"
  | "SANMismatch"
  /** An Istio cert-chain.pem that is not the CA certificate followed by the root(s). */
  | "ChainMismatch";

export class CertificateVerificationError extends PkiError {
  override readonly name: string = "CertificateVerificationError";
  /** The message without the reason prefix. */
  readonly detail: string;

  constructor(readonly reason: CertificateVerificationReason, detail: string) {
    // Details quote names and SANs of the certificate, i.e. the issuer's bytes: one printable line, bounded.
    const printable = boundedText(detail);
    super(`${reason}: ${printable}`);
    this.detail = printable;
  }
}
