import { PkiError } from "./errors";

export type RsaBits = 2048 | 3072 | 4096;
export type EcCurve = "P-256" | "P-384";
export type KeySpec = { algorithm: "RSA"; bits: RsaBits } | { algorithm: "ECDSA"; curve: EcCurve };

const RSA_BITS: readonly RsaBits[] = [2048, 3072, 4096];
const EC_CURVES: readonly EcCurve[] = ["P-256", "P-384"];
/** Gloo Mesh's default when certOptions.rsaKeySizeBytes is 0 or unset. */
export const DEFAULT_RSA_BITS: RsaBits = 4096;

/** "RSA-4096", "ECDSA-P256": short, log-friendly, and the same words parseKeyAlgorithm accepts. */
export function describeKeySpec(spec: KeySpec): string {
  return spec.algorithm === "RSA" ? `RSA-${spec.bits}` : `ECDSA-${spec.curve.replace("-", "")}`;
}

/**
 * Gloo Mesh reads certOptions.rsaKeySizeBytes as a number of BITS despite the field's name, so we do too.
 * Sizes below 2048 are refused (kubelet and cert-manager's floor); above, only the common sizes, so a
 * typo such as 4069 fails loudly instead of producing an odd key.
 */
export function rsaKeySpecFromBits(bits: number | undefined): KeySpec {
  if (bits === undefined || bits === 0) return { algorithm: "RSA", bits: DEFAULT_RSA_BITS };
  if (!(RSA_BITS as readonly number[]).includes(bits)) {
    throw new PkiError(
      `unsupported RSA key size ${String(bits)} (certOptions.rsaKeySizeBytes is read as bits): ` +
        `use 2048, 3072 or 4096, or 0 for the default ${DEFAULT_RSA_BITS}`,
    );
  }
  return { algorithm: "RSA", bits: bits as RsaBits };
}

/**
 * "RSA" (the default when unset or empty), "ECDSA-P256" or "ECDSA-P384", case-insensitive.
 * rsaBits only matters for RSA: Gloo Mesh's CRD defaults rsaKeySizeBytes, so it is ignored for ECDSA
 * rather than treated as a conflict.
 */
export function parseKeyAlgorithm(value: string | undefined, rsaBits: number | undefined): KeySpec {
  const normalized = (value ?? "").trim().toUpperCase();
  switch (normalized) {
    case "":
    case "RSA":
      return rsaKeySpecFromBits(rsaBits);
    case "ECDSA-P256":
      return { algorithm: "ECDSA", curve: "P-256" };
    case "ECDSA-P384":
      return { algorithm: "ECDSA", curve: "P-384" };
    default:
      throw new PkiError(
        `unsupported key algorithm ${JSON.stringify(truncate(value ?? "", 40))}: use RSA, ECDSA-P256 or ECDSA-P384`,
      );
  }
}

/** The WebCrypto parameters to generate or import a key of this spec; every key signs with SHA-256. */
export function webCryptoAlgorithmFor(spec: KeySpec): RsaHashedImportParams | EcKeyImportParams {
  return spec.algorithm === "RSA"
    ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }
    : { name: "ECDSA", namedCurve: spec.curve };
}

/**
 * The sign/verify parameters. @peculiar/x509 merges these with the key's own algorithm; ECDSA keys carry
 * no hash, so it must be named here or the generator cannot pick a signature OID.
 */
export function signingAlgorithmFor(spec: KeySpec): { name: string; hash: string } {
  return spec.algorithm === "RSA"
    ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }
    : { name: "ECDSA", hash: "SHA-256" };
}

/** Reads the spec back from a WebCrypto key; anything outside KeySpec is a PkiError. */
export function keySpecOfKey(key: CryptoKey): KeySpec {
  const algorithm = key.algorithm as { name: string; modulusLength?: number; namedCurve?: string };
  if (algorithm.name === "RSASSA-PKCS1-v1_5" || algorithm.name === "RSA-PSS") {
    const bits = algorithm.modulusLength ?? 0;
    if (!(RSA_BITS as readonly number[]).includes(bits)) {
      throw new PkiError(`unsupported RSA key size ${bits} bits: supported are 2048, 3072 and 4096`);
    }
    return { algorithm: "RSA", bits: bits as RsaBits };
  }
  if (algorithm.name === "ECDSA") {
    const curve = algorithm.namedCurve ?? "";
    if (!(EC_CURVES as readonly string[]).includes(curve)) {
      throw new PkiError(`unsupported EC curve ${curve}: supported are P-256 and P-384`);
    }
    return { algorithm: "ECDSA", curve: curve as EcCurve };
  }
  throw new PkiError(`unsupported key algorithm ${algorithm.name}: supported are RSA and ECDSA`);
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…`;
}
