// Importing a SubjectPublicKeyInfo (from a certificate or CSR): the refusals, each with its own message.
import { AsnConvert } from "@peculiar/asn1-schema";
import { SubjectPublicKeyInfo } from "@peculiar/asn1-x509";
import { PkiError, generateKeyPair } from "./index";
import { exportSpki, importSpki } from "./spki";
import { OpensslWorkspace } from "./testing/openssl";

const ws = new OpensslWorkspace();
afterAll(() => ws.cleanup());

let p256Spki: Uint8Array = new Uint8Array();
let p521Spki: Uint8Array = new Uint8Array();
let explicitSpki: Uint8Array = new Uint8Array();
beforeAll(async () => {
  // openssl can still write a curve as its explicit parameters (a SpecifiedECDomain) instead of its OID.
  const key = ws.file("explicit.key", ws.ok(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-param_enc", "explicit"]).stdout);
  const publicPem = ws.ok(["ec", "-in", key, "-pubout", "-param_enc", "explicit"]).stdout;
  explicitSpki = new Uint8Array(Buffer.from(publicPem.replace(/-----[^-]+-----|\s/g, ""), "base64"));
  p256Spki = await exportSpki((await generateKeyPair({ algorithm: "ECDSA", curve: "P-256" })).publicKey);
  const p521 = (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-521" }, true, ["sign", "verify"])) as CryptoKeyPair;
  p521Spki = new Uint8Array(await crypto.subtle.exportKey("spki", p521.publicKey));
});

/** The P-256 SPKI with its AlgorithmIdentifier parameters replaced by these DER bytes. */
function withEcParameters(parameters: number[]): Uint8Array {
  const info = AsnConvert.parse(p256Spki, SubjectPublicKeyInfo);
  info.algorithm.parameters = new Uint8Array(parameters).buffer;
  return new Uint8Array(AsnConvert.serialize(info));
}

describe("importSpki", () => {
  it("imports a P-256 key", async () => {
    expect((await importSpki(p256Spki)).spec).toEqual({ algorithm: "ECDSA", curve: "P-256" });
  });

  it.each<[string, () => Uint8Array, string]>([
    ["bytes that are no DER", () => new Uint8Array([1, 2, 3]), "not a valid SubjectPublicKeyInfo (DER decoding failed)"],
    ["EC parameters that are no ECParameters (an INTEGER)", () => withEcParameters([0x02, 0x01, 0x00]), "public key has malformed EC parameters"],
    ["explicit EC parameters", () => explicitSpki, "unsupported EC curve (OID explicit parameters): supported are P-256 and P-384"],
    // NULL parameters (implicitlyCA) read as no parameters at all.
    ["implicit EC parameters (NULL)", () => withEcParameters([0x05, 0x00]), "unsupported public key algorithm (OID 1.2.840.10045.2.1): supported are RSA and ECDSA"],
    ["a P-521 key", () => p521Spki, "unsupported EC curve (OID 1.3.132.0.35): supported are P-256 and P-384"],
  ])("refuses %s with a PkiError saying why", async (_name, der, message) => {
    const error = await importSpki(der()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PkiError);
    expect((error as Error).message).toBe(message);
  });
});
