import { AsnConvert } from "@peculiar/asn1-schema";
import { SubjectPublicKeyInfo } from "@peculiar/asn1-x509";
import { ECParameters, id_ecPublicKey, id_secp256r1, id_secp384r1 } from "@peculiar/asn1-ecc";
import { id_rsaEncryption } from "@peculiar/asn1-rsa";
import { subtle } from "./crypto-provider";
import { PkiError } from "./errors";
import { type KeySpec, keySpecOfKey, webCryptoAlgorithmFor } from "./key-spec";
import { toArrayBuffer } from "./pem";

/**
 * Imports a DER SubjectPublicKeyInfo (from a certificate or CSR) as a verify key.
 * WebCrypto must be told the algorithm up front, so the SPKI's algorithm OID is read first.
 */
export async function importSpki(der: Uint8Array): Promise<{ key: CryptoKey; spec: KeySpec }> {
  let info: SubjectPublicKeyInfo;
  try {
    info = AsnConvert.parse(toArrayBuffer(der), SubjectPublicKeyInfo);
  } catch {
    throw new PkiError("not a valid SubjectPublicKeyInfo (DER decoding failed)");
  }
  const algorithm = webCryptoAlgorithmFor(provisionalSpec(info));
  let key: CryptoKey;
  try {
    key = await subtle().importKey("spki", toArrayBuffer(der), algorithm, true, ["verify"]);
  } catch {
    throw new PkiError("public key could not be imported");
  }
  return { key, spec: keySpecOfKey(key) };
}

export async function exportSpki(publicKey: CryptoKey): Promise<Uint8Array> {
  try {
    return new Uint8Array(await subtle().exportKey("spki", publicKey));
  } catch {
    // Typically a key made by the other crypto provider: CryptoKeys do not cross implementations.
    throw new PkiError("public key cannot be exported by the active crypto provider (was it made by another provider?)");
  }
}

/** Same key material? Both sides go through the provider's SPKI export, which normalizes the encoding. */
export async function samePublicKey(a: CryptoKey, b: CryptoKey): Promise<boolean> {
  return Buffer.from(await exportSpki(a)).equals(Buffer.from(await exportSpki(b)));
}

// The RSA size is unknown until WebCrypto has parsed the modulus; any allowed size selects the algorithm.
function provisionalSpec(info: SubjectPublicKeyInfo): KeySpec {
  const oid = info.algorithm.algorithm;
  if (oid === id_rsaEncryption) return { algorithm: "RSA", bits: 2048 };
  if (oid === id_ecPublicKey && info.algorithm.parameters) {
    let namedCurve: string | undefined;
    try {
      namedCurve = AsnConvert.parse(info.algorithm.parameters, ECParameters).namedCurve;
    } catch {
      throw new PkiError("public key has malformed EC parameters");
    }
    if (namedCurve === id_secp256r1) return { algorithm: "ECDSA", curve: "P-256" };
    if (namedCurve === id_secp384r1) return { algorithm: "ECDSA", curve: "P-384" };
    throw new PkiError(`unsupported EC curve (OID ${namedCurve ?? "explicit parameters"}): supported are P-256 and P-384`);
  }
  throw new PkiError(`unsupported public key algorithm (OID ${oid}): supported are RSA and ECDSA`);
}
