// The public face of shared/pki. Importing it also selects Node's built-in WebCrypto for @peculiar/x509.
export { type CryptoProviderName, currentCryptoProvider, useCryptoProvider } from "./crypto-provider";
export { type CertificateVerificationReason, CertificateVerificationError, PkiError } from "./errors";
export {
  type EcCurve,
  type KeySpec,
  type RsaBits,
  DEFAULT_RSA_BITS,
  describeKeySpec,
  keySpecOfKey,
  parseKeyAlgorithm,
  rsaKeySpecFromBits,
} from "./key-spec";
export {
  type ImportedPrivateKey,
  type PrivateKeyFormat,
  exportPrivateKeyPem,
  generateKeyPair,
  importPrivateKeyPem,
  publicKeyFingerprint,
} from "./keys";
export { type HostKind, classifyHost, validateHost } from "./hosts";
export { type CsrRequest, type ParsedCsr, buildCsr, parseCsr } from "./csr";
export { type CertificateSummary, describeCertificate } from "./certificate";
export {
  type VerifiedCertificate,
  type VerifyCaCertificateRequest,
  type VerifyIssuedCertificateRequest,
  certificateMatchesPrivateKey,
  verifyCaCertificate,
  verifyIssuedCertificate,
} from "./verify";
export { buildCertChain, verifyCertChain } from "./chain";
