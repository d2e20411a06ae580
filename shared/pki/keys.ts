import { subtle } from "./crypto-provider";
import { PkiError } from "./errors";
import { type EcCurve, type KeySpec, keySpecOfKey, webCryptoAlgorithmFor } from "./key-spec";
import { decodePem, encodePem, toArrayBuffer } from "./pem";
import { curveOfParametersBlock, describePkcs8, pkcs1ToPkcs8, pkcs8ToPkcs1, pkcs8ToSec1, sec1ToPkcs8 } from "./private-key-der";
import { exportSpki } from "./spki";

/** "pkcs8": BEGIN PRIVATE KEY (any key). "pkcs1": BEGIN RSA PRIVATE KEY. "sec1": BEGIN EC PRIVATE KEY. */
export type PrivateKeyFormat = "pkcs8" | "pkcs1" | "sec1";

const LABEL: Record<PrivateKeyFormat, string> = {
  pkcs8: "PRIVATE KEY",
  pkcs1: "RSA PRIVATE KEY",
  sec1: "EC PRIVATE KEY",
};

/** A new extractable key pair (the private key must be exported into Secrets), signing with SHA-256. */
export async function generateKeyPair(spec: KeySpec): Promise<CryptoKeyPair> {
  const algorithm =
    spec.algorithm === "RSA"
      ? { ...webCryptoAlgorithmFor(spec), modulusLength: spec.bits, publicExponent: new Uint8Array([1, 0, 1]) }
      : webCryptoAlgorithmFor(spec);
  return (await subtle().generateKey(algorithm, true, ["sign", "verify"])) as CryptoKeyPair;
}

export async function exportPrivateKeyPem(privateKey: CryptoKey, format: PrivateKeyFormat = "pkcs8"): Promise<string> {
  if (privateKey.type !== "private") throw new PkiError("exportPrivateKeyPem needs a private key");
  let pkcs8: Uint8Array;
  try {
    pkcs8 = new Uint8Array(await subtle().exportKey("pkcs8", privateKey));
  } catch {
    throw new PkiError("private key could not be exported (is it extractable?)");
  }
  switch (format) {
    case "pkcs8":
      return encodePem(LABEL.pkcs8, pkcs8);
    case "pkcs1":
      return encodePem(LABEL.pkcs1, pkcs8ToPkcs1(pkcs8));
    case "sec1":
      return encodePem(LABEL.sec1, pkcs8ToSec1(pkcs8));
  }
}

export interface ImportedPrivateKey {
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  spec: KeySpec;
}

/**
 * Reads a private key in any form Istio accepts in ca-key.pem: PKCS#8, PKCS#1 (RSA) or SEC1 (EC, with or
 * without openssl's separate EC PARAMETERS block). Other PEM blocks (a certificate next to the key) are
 * ignored; zero or several private keys are an error. Errors never contain any of the input.
 */
export async function importPrivateKeyPem(pem: string): Promise<ImportedPrivateKey> {
  if (typeof pem !== "string") throw new PkiError("private key PEM must be a string");
  const { blocks } = decodePem(pem);
  if (blocks.some((b) => b.label === "ENCRYPTED PRIVATE KEY")) {
    throw new PkiError("encrypted private keys are not supported");
  }
  const keyBlocks = blocks.filter((b) => Object.values(LABEL).includes(b.label));
  if (keyBlocks.length !== 1) {
    throw new PkiError(
      keyBlocks.length === 0
        ? "no private key found: expected a PEM block PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY"
        : `expected one private key, found ${keyBlocks.length}`,
    );
  }
  const [keyBlock] = keyBlocks as [(typeof keyBlocks)[0]];
  const pkcs8 = toPkcs8(keyBlock.label, keyBlock.der, ecParametersCurve(blocks));
  const kind = describePkcs8(pkcs8);
  const algorithm =
    kind.kind === "RSA" ? webCryptoAlgorithmFor({ algorithm: "RSA", bits: 2048 }) : webCryptoAlgorithmFor({ algorithm: "ECDSA", curve: kind.curve });
  let privateKey: CryptoKey;
  try {
    privateKey = await subtle().importKey("pkcs8", toArrayBuffer(pkcs8), algorithm, true, ["sign"]);
  } catch {
    throw new PkiError(`${kind.kind} private key could not be imported (inconsistent or corrupt key)`);
  }
  const spec = keySpecOfKey(privateKey);
  return { privateKey, publicKey: await derivePublicKey(privateKey, spec), spec };
}

/** Hex SHA-256 of the DER SubjectPublicKeyInfo: identifies a key pair in logs without revealing it. */
export async function publicKeyFingerprint(publicKey: CryptoKey): Promise<string> {
  const digest = await subtle().digest("SHA-256", toArrayBuffer(await exportSpki(publicKey)));
  return Buffer.from(digest).toString("hex");
}

/** WebCrypto cannot derive a public key directly; its JWK export has the public members alongside the private ones. */
async function derivePublicKey(privateKey: CryptoKey, spec: KeySpec): Promise<CryptoKey> {
  const jwk = (await subtle().exportKey("jwk", privateKey)) as JsonWebKey;
  const publicJwk: JsonWebKey =
    spec.algorithm === "RSA" ? { kty: jwk.kty, n: jwk.n, e: jwk.e } : { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
  return subtle().importKey("jwk", publicJwk, webCryptoAlgorithmFor(spec), true, ["verify"]);
}

function toPkcs8(label: string, der: Uint8Array, curveFromParametersBlock: EcCurve | undefined): Uint8Array {
  switch (label) {
    case LABEL.pkcs1:
      return pkcs1ToPkcs8(der);
    case LABEL.sec1:
      return sec1ToPkcs8(der, curveFromParametersBlock);
    default:
      return der;
  }
}

function ecParametersCurve(blocks: { label: string; der: Uint8Array }[]): EcCurve | undefined {
  const parameters = blocks.find((b) => b.label === "EC PARAMETERS");
  return parameters ? curveOfParametersBlock(parameters.der) : undefined;
}
