// Conversions between the three private-key encodings Istio accepts in ca-key.pem: PKCS#8 (what
// WebCrypto speaks), PKCS#1 (RSA "traditional", Gloo Mesh's default) and SEC1 (EC "traditional").
// PKCS#8 merely wraps the other two: PrivateKeyInfo { algorithm, privateKey OCTET STRING <PKCS#1|SEC1> }.
import { AsnConvert } from "@peculiar/asn1-schema";
import { PrivateKey, PrivateKeyInfo } from "@peculiar/asn1-pkcs8";
import { RSAPrivateKey, id_rsaEncryption, rsaEncryption } from "@peculiar/asn1-rsa";
import { ECParameters, ECPrivateKey, id_ecPublicKey, id_secp256r1, id_secp384r1 } from "@peculiar/asn1-ecc";
import { AlgorithmIdentifier } from "@peculiar/asn1-x509";
import { PkiError } from "./errors";
import type { EcCurve } from "./key-spec";
import { toArrayBuffer } from "./pem";

export type PrivateKeyKind = { kind: "RSA" } | { kind: "EC"; curve: EcCurve };

const CURVE_BY_OID: Record<string, EcCurve> = { [id_secp256r1]: "P-256", [id_secp384r1]: "P-384" };
const OID_BY_CURVE: Record<EcCurve, string> = { "P-256": id_secp256r1, "P-384": id_secp384r1 };

/** Which key a PKCS#8 PrivateKeyInfo holds; needed because WebCrypto's importKey must be told. */
export function describePkcs8(pkcs8: Uint8Array): PrivateKeyKind {
  const info = parse(pkcs8, PrivateKeyInfo, "PKCS#8 PrivateKeyInfo");
  const oid = info.privateKeyAlgorithm.algorithm;
  if (oid === id_rsaEncryption) return { kind: "RSA" };
  if (oid === id_ecPublicKey) {
    const parameters = info.privateKeyAlgorithm.parameters;
    if (!parameters) throw new PkiError("PKCS#8 EC key names no curve");
    return { kind: "EC", curve: curveFromOid(parse(new Uint8Array(parameters), ECParameters, "EC parameters").namedCurve) };
  }
  throw new PkiError(`unsupported private key algorithm (OID ${oid}): supported are RSA and ECDSA`);
}

export function pkcs1ToPkcs8(pkcs1: Uint8Array): Uint8Array {
  parse(pkcs1, RSAPrivateKey, "PKCS#1 RSAPrivateKey"); // validate before wrapping
  return serialize(
    new PrivateKeyInfo({ version: 0, privateKeyAlgorithm: rsaEncryption, privateKey: new PrivateKey(toArrayBuffer(pkcs1)) }),
  );
}

export function pkcs8ToPkcs1(pkcs8: Uint8Array): Uint8Array {
  if (describePkcs8(pkcs8).kind !== "RSA") throw new PkiError("PKCS#1 can only hold RSA keys; use PKCS#8 or SEC1 for EC keys");
  return new Uint8Array(parse(pkcs8, PrivateKeyInfo, "PKCS#8 PrivateKeyInfo").privateKey.buffer);
}

/**
 * SEC1 names its curve inside ECPrivateKey.parameters, which is optional; `openssl ecparam -genkey` also
 * writes a separate "EC PARAMETERS" block, passed here as curveFromParametersBlock.
 */
export function sec1ToPkcs8(sec1: Uint8Array, curveFromParametersBlock?: EcCurve): Uint8Array {
  const ecKey = parse(sec1, ECPrivateKey, "SEC1 ECPrivateKey");
  const curve = ecKey.parameters ? curveFromOid(ecKey.parameters.namedCurve) : curveFromParametersBlock;
  if (!curve) throw new PkiError("SEC1 EC key names no curve");
  if (curveFromParametersBlock && curve !== curveFromParametersBlock) {
    throw new PkiError("SEC1 EC key and its EC PARAMETERS block name different curves");
  }
  const algorithm = new AlgorithmIdentifier({
    algorithm: id_ecPublicKey,
    parameters: AsnConvert.serialize(new ECParameters({ namedCurve: OID_BY_CURVE[curve] })),
  });
  return serialize(new PrivateKeyInfo({ version: 0, privateKeyAlgorithm: algorithm, privateKey: new PrivateKey(toArrayBuffer(sec1)) }));
}

/** The SEC1 form, with the curve written in (WebCrypto's PKCS#8 omits it inside, SEC1 readers need it). */
export function pkcs8ToSec1(pkcs8: Uint8Array): Uint8Array {
  const kind = describePkcs8(pkcs8);
  if (kind.kind !== "EC") throw new PkiError("SEC1 can only hold EC keys; use PKCS#8 or PKCS#1 for RSA keys");
  const inner = new Uint8Array(parse(pkcs8, PrivateKeyInfo, "PKCS#8 PrivateKeyInfo").privateKey.buffer);
  const ecKey = parse(inner, ECPrivateKey, "SEC1 ECPrivateKey");
  ecKey.parameters = new ECParameters({ namedCurve: OID_BY_CURVE[kind.curve] });
  return serialize(ecKey);
}

/** The curve of an "EC PARAMETERS" PEM block. */
export function curveOfParametersBlock(der: Uint8Array): EcCurve {
  return curveFromOid(parse(der, ECParameters, "EC parameters").namedCurve);
}

function curveFromOid(oid: string | undefined): EcCurve {
  const curve = oid === undefined ? undefined : CURVE_BY_OID[oid];
  if (!curve) throw new PkiError(`unsupported EC curve (OID ${oid ?? "none: explicit parameters"}): supported are P-256 and P-384`);
  return curve;
}

// Parser errors are replaced, not wrapped: their messages may quote the bytes being parsed.
function parse<T>(der: Uint8Array, type: new () => T, what: string): T {
  try {
    return AsnConvert.parse(toArrayBuffer(der), type);
  } catch {
    throw new PkiError(`not a valid ${what} (DER decoding failed)`);
  }
}

function serialize(value: object): Uint8Array {
  return new Uint8Array(AsnConvert.serialize(value));
}
