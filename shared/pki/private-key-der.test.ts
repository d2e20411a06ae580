// The conversions between PKCS#8, PKCS#1 and SEC1: the refusals not reached through openssl-made keys.
import { AsnConvert } from "@peculiar/asn1-schema";
import { PrivateKeyInfo } from "@peculiar/asn1-pkcs8";
import { ECParameters, id_secp256r1, id_secp384r1 } from "@peculiar/asn1-ecc";
import { PkiError, exportPrivateKeyPem, generateKeyPair, importPrivateKeyPem } from "./index";
import { encodePem } from "./pem";
import { describePkcs8, sec1ToPkcs8 } from "./private-key-der";
import { expectNoKeyMaterial } from "./testing/openssl";

const derOf = (pem: string) => new Uint8Array(Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64"));
const parametersPem = (curveOid: string) => encodePem("EC PARAMETERS", AsnConvert.serialize(new ECParameters({ namedCurve: curveOid })));

async function refusal(run: () => unknown): Promise<unknown> {
  try {
    await run();
  } catch (error) {
    return error;
  }
  throw new Error("accepted");
}

let p256Pkcs8 = "";
let p256Sec1 = "";
beforeAll(async () => {
  const { privateKey } = await generateKeyPair({ algorithm: "ECDSA", curve: "P-256" });
  p256Pkcs8 = await exportPrivateKeyPem(privateKey, "pkcs8");
  p256Sec1 = await exportPrivateKeyPem(privateKey, "sec1");
});

describe("describePkcs8", () => {
  it("reads the curve of an EC key", () => {
    expect(describePkcs8(derOf(p256Pkcs8))).toEqual({ kind: "EC", curve: "P-256" });
  });

  it("refuses an EC key whose AlgorithmIdentifier has no parameters, quoting nothing", async () => {
    const info = AsnConvert.parse(derOf(p256Pkcs8), PrivateKeyInfo);
    info.privateKeyAlgorithm.parameters = undefined;
    const pem = encodePem("PRIVATE KEY", AsnConvert.serialize(info));
    for (const run of [() => describePkcs8(derOf(pem)), () => importPrivateKeyPem(pem)]) {
      const error = await refusal(run);
      expect(error).toBeInstanceOf(PkiError);
      expect((error as Error).message).toBe("PKCS#8 EC key names no curve");
      expectNoKeyMaterial(error, pem);
    }
  });
});

describe("a SEC1 key with openssl's separate EC PARAMETERS block", () => {
  it.each([
    ["no block", undefined, "P-256"],
    ["a block naming the same curve", "P-256", "P-256"],
  ] as const)("%s: the key's own curve", async (_name, blockCurve, curve) => {
    expect(describePkcs8(sec1ToPkcs8(derOf(p256Sec1), blockCurve))).toEqual({ kind: "EC", curve });
    const pem = blockCurve ? `${parametersPem(id_secp256r1)}${p256Sec1}` : p256Sec1;
    expect((await importPrivateKeyPem(pem)).spec).toEqual({ algorithm: "ECDSA", curve });
  });

  it("refuses a block naming another curve than the key, quoting nothing", async () => {
    const pem = `${parametersPem(id_secp384r1)}${p256Sec1}`;
    for (const run of [() => sec1ToPkcs8(derOf(p256Sec1), "P-384"), () => importPrivateKeyPem(pem)]) {
      const error = await refusal(run);
      expect(error).toBeInstanceOf(PkiError);
      expect((error as Error).message).toBe("SEC1 EC key and its EC PARAMETERS block name different curves");
      expectNoKeyMaterial(error, pem);
    }
  });
});
