import { PkiError, describeKeySpec, keySpecOfKey, parseKeyAlgorithm, rsaKeySpecFromBits } from "./index";

describe("describeKeySpec", () => {
  it.each([
    [{ algorithm: "RSA", bits: 2048 } as const, "RSA-2048"],
    [{ algorithm: "RSA", bits: 4096 } as const, "RSA-4096"],
    [{ algorithm: "ECDSA", curve: "P-256" } as const, "ECDSA-P256"],
    [{ algorithm: "ECDSA", curve: "P-384" } as const, "ECDSA-P384"],
  ])("%j -> %s", (spec, text) => {
    expect(describeKeySpec(spec)).toBe(text);
  });
});

describe("rsaKeySpecFromBits (Gloo Mesh's rsaKeySizeBytes, read as bits)", () => {
  it.each([
    [undefined, 4096],
    [0, 4096],
    [2048, 2048],
    [3072, 3072],
    [4096, 4096],
  ])("%s -> RSA-%s", (bits, expected) => {
    expect(rsaKeySpecFromBits(bits)).toEqual({ algorithm: "RSA", bits: expected });
  });

  it.each([1024, -1, 512, 256, 4069, 8192, 2048.5, NaN, Infinity])("rejects %s with a PkiError naming the allowed sizes", (bits) => {
    expect(() => rsaKeySpecFromBits(bits)).toThrow(PkiError);
    expect(() => rsaKeySpecFromBits(bits)).toThrow(/unsupported RSA key size .*2048, 3072 or 4096/);
  });
});

describe("parseKeyAlgorithm", () => {
  it.each([
    [undefined, undefined, { algorithm: "RSA", bits: 4096 }],
    ["", 2048, { algorithm: "RSA", bits: 2048 }],
    ["RSA", 3072, { algorithm: "RSA", bits: 3072 }],
    ["rsa", 0, { algorithm: "RSA", bits: 4096 }],
    ["ECDSA-P256", undefined, { algorithm: "ECDSA", curve: "P-256" }],
    ["ecdsa-p384", undefined, { algorithm: "ECDSA", curve: "P-384" }],
    // The CRD defaults rsaKeySizeBytes, so an ECDSA choice must not trip over it.
    ["Ecdsa-P256", 4096, { algorithm: "ECDSA", curve: "P-256" }],
  ])("(%j, %j) -> %j", (value, bits, expected) => {
    expect(parseKeyAlgorithm(value, bits)).toEqual(expected);
  });

  it.each(["DSA", "ECDSA", "ECDSA-P521", "Ed25519", "RSA-2048"])("rejects %j", (value) => {
    expect(() => parseKeyAlgorithm(value, undefined)).toThrow(PkiError);
    expect(() => parseKeyAlgorithm(value, undefined)).toThrow(/use RSA, ECDSA-P256 or ECDSA-P384/);
  });

  it("applies the RSA size check to RSA", () => {
    expect(() => parseKeyAlgorithm("RSA", 1024)).toThrow(/unsupported RSA key size 1024/);
  });
});

describe("parseKeyAlgorithm's message", () => {
  it.each([
    ["DSA", 'unsupported key algorithm "DSA": use RSA, ECDSA-P256 or ECDSA-P384'],
    // The value comes from a custom resource: quoted, and cut at 40 characters.
    ["x".repeat(41), `unsupported key algorithm "${"x".repeat(40)}…": use RSA, ECDSA-P256 or ECDSA-P384`],
  ])("for %j is %j", (value, message) => {
    expect(() => parseKeyAlgorithm(value, undefined)).toThrow(new PkiError(message));
  });
});

describe("keySpecOfKey refuses keys outside KeySpec", () => {
  it.each<[string, () => Promise<CryptoKeyPair>, string]>([
    [
      "ECDSA P-521",
      async () => (await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-521" }, true, ["sign", "verify"])) as CryptoKeyPair,
      "unsupported EC curve P-521: supported are P-256 and P-384",
    ],
    [
      "Ed25519",
      async () => (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair,
      "unsupported key algorithm Ed25519: supported are RSA and ECDSA",
    ],
  ])("%s, with a PkiError naming what is supported", async (_name, generate, message) => {
    const { privateKey, publicKey } = await generate();
    for (const key of [privateKey, publicKey]) {
      expect(() => keySpecOfKey(key)).toThrow(PkiError);
      expect(() => keySpecOfKey(key)).toThrow(new PkiError(message));
    }
  });
});
