import { createHash } from "node:crypto";
import {
  PkiError,
  describeKeySpec,
  exportPrivateKeyPem,
  generateKeyPair,
  importPrivateKeyPem,
  keySpecOfKey,
  publicKeyFingerprint,
} from "./index";
import { OpensslWorkspace, expectNoKeyMaterial } from "./testing/openssl";
import { ALL_KEY_SPECS, keyPairsFor } from "./testing/key-specs";
import { encodePem } from "./pem";

const ws = new OpensslWorkspace();
let pairs = new Map<string, CryptoKeyPair>();

beforeAll(async () => {
  pairs = await keyPairsFor(ALL_KEY_SPECS);
}, 60_000);
afterAll(() => ws.cleanup());

async function signsAndVerifies(privateKey: CryptoKey, publicKey: CryptoKey): Promise<boolean> {
  const algorithm = privateKey.algorithm.name === "ECDSA" ? { name: "ECDSA", hash: "SHA-256" } : { name: "RSASSA-PKCS1-v1_5" };
  const data = new TextEncoder().encode("cert-agent");
  const signature = await crypto.subtle.sign(algorithm, privateKey, data);
  return crypto.subtle.verify(algorithm, publicKey, signature, data);
}

describe.each(ALL_KEY_SPECS.map((spec) => [describeKeySpec(spec), spec] as const))("%s", (name, spec) => {
  const keys = () => pairs.get(name) as CryptoKeyPair;
  const traditional = spec.algorithm === "RSA" ? ("pkcs1" as const) : ("sec1" as const);

  it("generates an extractable key of the requested spec", () => {
    expect(keySpecOfKey(keys().privateKey)).toEqual(spec);
    expect(keySpecOfKey(keys().publicKey)).toEqual(spec);
    expect(keys().privateKey.extractable).toBe(true);
    if (spec.algorithm === "RSA") {
      expect(Array.from((keys().publicKey.algorithm as RsaHashedKeyAlgorithm).publicExponent)).toEqual([1, 0, 1]);
      expect((keys().publicKey.algorithm as RsaHashedKeyAlgorithm).hash.name).toBe("SHA-256");
    }
  });

  it("fingerprints the public key as openssl's SHA-256 of the DER SPKI", async () => {
    const pem = ws.file(`${name}.pkcs8.pem`, await exportPrivateKeyPem(keys().privateKey));
    const fingerprint = await publicKeyFingerprint(keys().publicKey);
    expect(fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(fingerprint).toBe(ws.publicKeyFingerprintOf(["pkey", "-in", pem, "-pubout", "-outform", "DER"]));
  });

  it("exports PKCS#8 by default, which openssl parses and checks", async () => {
    const pem = await exportPrivateKeyPem(keys().privateKey);
    expect(pem).toMatch(/^-----BEGIN PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+\n-----END PRIVATE KEY-----\n$/);
    ws.file(`${name}.p8.pem`, pem);
    expect(ws.ok(["pkey", "-in", `${name}.p8.pem`, "-check", "-noout"]).output).toMatch(/valid|ok/i);
  });

  it(`exports ${traditional.toUpperCase()}, which openssl parses as the same key`, async () => {
    const pem = await exportPrivateKeyPem(keys().privateKey, traditional);
    const label = spec.algorithm === "RSA" ? "RSA PRIVATE KEY" : "EC PRIVATE KEY";
    expect(pem.startsWith(`-----BEGIN ${label}-----\n`)).toBe(true);
    const path = ws.file(`${name}.trad.pem`, pem);
    if (spec.algorithm === "RSA") {
      expect(ws.ok(["rsa", "-in", path, "-check", "-noout"]).output).toContain("RSA key ok");
    } else {
      const text = ws.ok(["ec", "-in", path, "-check", "-noout", "-text"]).output;
      expect(text).toContain(spec.curve === "P-256" ? "prime256v1" : "secp384r1");
      expect(text).toContain("EC Key valid");
    }
    expect(ws.publicKeyFingerprintOf(["pkey", "-in", path, "-pubout", "-outform", "DER"])).toBe(
      await publicKeyFingerprint(keys().publicKey),
    );
  });

  it("refuses the other algorithm's traditional format", async () => {
    const other = spec.algorithm === "RSA" ? "sec1" : "pkcs1";
    await expect(exportPrivateKeyPem(keys().privateKey, other)).rejects.toThrow(PkiError);
  });

  it.each(["pkcs8", "traditional"] as const)("imports its own %s export with the public key derived", async (format) => {
    const pem = await exportPrivateKeyPem(keys().privateKey, format === "pkcs8" ? "pkcs8" : traditional);
    const imported = await importPrivateKeyPem(pem);
    expect(imported.spec).toEqual(spec);
    expect(imported.publicKey.type).toBe("public");
    expect(await publicKeyFingerprint(imported.publicKey)).toBe(await publicKeyFingerprint(keys().publicKey));
    expect(await signsAndVerifies(imported.privateKey, keys().publicKey)).toBe(true);
    expect(await signsAndVerifies(keys().privateKey, imported.publicKey)).toBe(true);
  });

  it("never quotes the key in an error, however the PEM is damaged", async () => {
    const pem = await exportPrivateKeyPem(keys().privateKey, traditional);
    const body = pem.split("\n").slice(1, -2).join("\n");
    const label = pem.split("\n")[0] as string;
    const end = label.replace("BEGIN", "END");
    const der = Buffer.from(body.replace(/\n/g, ""), "base64");
    const flipped = Buffer.from(der);
    flipped[Math.floor(der.length / 2)] ^= 0xff;
    const damaged = [
      pem.slice(0, Math.floor(pem.length / 2)), // truncated: no END line
      `${label}\n${body.slice(0, Math.floor(body.length / 2)).replace(/\n$/, "")}\n${end}\n`, // truncated DER
      `${label}\n${body.replace(/A/g, "!")}\n${end}\n`, // invalid base64
      `${label}\n${flipped.toString("base64")}\n${end}\n`, // corrupt DER
      pem.replace(/(RSA|EC) PRIVATE KEY/g, "PRIVATE KEY"), // wrong label: not PKCS#8
      pem.replace(/PRIVATE KEY/g, "PUBLIC KEY"), // no private key at all
      `${pem}${pem}`, // two keys
      `-----BEGIN PRIVATE KEY-----\n${body}\n-----END RSA PRIVATE KEY-----\n`, // mismatched labels
      `-----BEGIN ENCRYPTED PRIVATE KEY-----\n${body}\n-----END ENCRYPTED PRIVATE KEY-----\n`,
    ];
    for (const [index, input] of damaged.entries()) {
      const error = await importPrivateKeyPem(input).then(
        () => undefined,
        (e: unknown) => e,
      );
      // A flipped byte inside a big integer can still decode to some key; every other case must fail.
      if (error === undefined && input.includes(flipped.toString("base64"))) continue;
      expect([index, error]).toEqual([index, expect.any(PkiError)]);
      expectNoKeyMaterial(error, pem);
    }
  });
});

describe("importPrivateKeyPem with keys made by the openssl CLI", () => {
  it.each([
    ["genrsa -traditional (PKCS#1)", ["genrsa", "-traditional", "2048"], "RSA PRIVATE KEY", { algorithm: "RSA", bits: 2048 }],
    ["genrsa (PKCS#8)", ["genrsa", "2048"], "PRIVATE KEY", { algorithm: "RSA", bits: 2048 }],
    ["ecparam -genkey (SEC1 + EC PARAMETERS)", ["ecparam", "-name", "prime256v1", "-genkey"], "EC PRIVATE KEY", { algorithm: "ECDSA", curve: "P-256" }],
    ["ecparam -genkey -noout (SEC1)", ["ecparam", "-name", "secp384r1", "-genkey", "-noout"], "EC PRIVATE KEY", { algorithm: "ECDSA", curve: "P-384" }],
    ["genpkey EC (PKCS#8)", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"], "PRIVATE KEY", { algorithm: "ECDSA", curve: "P-256" }],
  ] as const)("%s", async (_name, args, label, spec) => {
    const pem = ws.ok([...args]).stdout;
    expect(pem).toContain(`-----BEGIN ${label}-----`);
    const path = ws.file(`openssl-${args.join("-")}.pem`, pem);
    const imported = await importPrivateKeyPem(pem);
    expect(imported.spec).toEqual(spec);
    expect(await publicKeyFingerprint(imported.publicKey)).toBe(
      ws.publicKeyFingerprintOf(["pkey", "-in", path, "-pubout", "-outform", "DER"]),
    );
  });

  it("reads a SEC1 key whose curve is only in the EC PARAMETERS block", async () => {
    // openssl writes the curve inside ECPrivateKey too; strip it to prove the separate block is honoured.
    const pem = ws.ok(["ecparam", "-name", "prime256v1", "-genkey"]).stdout;
    const params = pem.slice(0, pem.indexOf("-----BEGIN EC PRIVATE KEY-----"));
    const ecKey = await importPrivateKeyPem(pem);
    const pkcs8 = await exportPrivateKeyPem(ecKey.privateKey);
    const { AsnConvert } = await import("@peculiar/asn1-schema");
    const { PrivateKeyInfo } = await import("@peculiar/asn1-pkcs8");
    const inner = AsnConvert.parse(Buffer.from(pkcs8.replace(/-----[^-]+-----|\s/g, ""), "base64"), PrivateKeyInfo).privateKey.buffer;
    const withoutCurve = `-----BEGIN EC PRIVATE KEY-----\n${Buffer.from(inner).toString("base64")}\n-----END EC PRIVATE KEY-----\n`;
    await expect(importPrivateKeyPem(withoutCurve)).rejects.toThrow(/names no curve/);
    const imported = await importPrivateKeyPem(`${params}${withoutCurve}`);
    expect(imported.spec).toEqual({ algorithm: "ECDSA", curve: "P-256" });
    expect(await publicKeyFingerprint(imported.publicKey)).toBe(await publicKeyFingerprint(ecKey.publicKey));
  });

  it.each([
    ["RSA-1024", ["genrsa", "-traditional", "1024"], /unsupported RSA key size 1024/],
    ["P-521", ["ecparam", "-name", "secp521r1", "-genkey", "-noout"], /unsupported EC curve/],
    ["explicit EC parameters", ["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-param_enc", "explicit"], /unsupported EC curve|names no curve/],
    ["Ed25519", ["genpkey", "-algorithm", "ed25519"], /unsupported private key algorithm/],
    ["PKCS#8 encrypted", ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes256", "-pass", "pass:secret"], /encrypted private keys are not supported/],
    ["legacy encrypted PEM", ["genrsa", "-traditional", "-aes128", "-passout", "pass:secret", "2048"], /headers/],
  ])("refuses %s with a PkiError that quotes nothing", async (_name, args, message) => {
    const pem = ws.ok([...args]).stdout;
    const error = await importPrivateKeyPem(pem).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PkiError);
    expect((error as Error).message).toMatch(message);
    expectNoKeyMaterial(error, pem);
  });

  it.each([
    ["empty", ""],
    ["whitespace", "  \n"],
    ["not PEM", "hello"],
    ["a certificate only", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"],
  ])("refuses %s", async (_name, input) => {
    await expect(importPrivateKeyPem(input)).rejects.toThrow("no private key found: expected a PEM block PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY");
  });

  it("refuses two keys, a public key as the private one, and a non-string, each saying so", async () => {
    const keys = await generateKeyPair({ algorithm: "ECDSA", curve: "P-256" });
    const pem = await exportPrivateKeyPem(keys.privateKey);
    await expect(importPrivateKeyPem(pem + pem)).rejects.toThrow("expected one private key, found 2");
    await expect(exportPrivateKeyPem(keys.publicKey)).rejects.toThrow("exportPrivateKeyPem needs a private key");
    await expect(importPrivateKeyPem(undefined as unknown as string)).rejects.toThrow("private key PEM must be a string");
  });

  it("refuses a key whose DER is consistent in form but corrupt, naming its type", async () => {
    const keys = await generateKeyPair({ algorithm: "ECDSA", curve: "P-256" });
    const der = Buffer.from((await exportPrivateKeyPem(keys.privateKey)).replace(/-----[^-]+-----|\s/g, ""), "base64");
    der[der.length - 10] ^= 0xff; // inside the public point: not on the curve any more
    const pem = encodePem("PRIVATE KEY", der);
    await expect(importPrivateKeyPem(pem)).rejects.toThrow("EC private key could not be imported (inconsistent or corrupt key)");
  });
});

describe("generateKeyPair with the built-in provider", () => {
  it("leaves the event loop free while an RSA key is generated", async () => {
    const events: string[] = [];
    const timer = new Promise<void>((resolve) => setTimeout(() => (events.push("timer"), resolve()), 1));
    const key = generateKeyPair({ algorithm: "RSA", bits: 2048 }).then(() => events.push("key"));
    await Promise.all([timer, key]);
    expect(events).toEqual(["timer", "key"]);
  });
});

describe("publicKeyFingerprint", () => {
  it("is the hex SHA-256 of the DER SubjectPublicKeyInfo", async () => {
    const { publicKey } = pairs.get("ECDSA-P256") as CryptoKeyPair;
    const spki = Buffer.from(await crypto.subtle.exportKey("spki", publicKey));
    expect(await publicKeyFingerprint(publicKey)).toBe(createHash("sha256").update(spki).digest("hex"));
  });
});

describe("expectNoKeyMaterial (the leak detector these tests rely on)", () => {
  it("notices a fragment of the base64 body or of the DER hex", async () => {
    const pem = await exportPrivateKeyPem((pairs.get("ECDSA-P256") as CryptoKeyPair).privateKey);
    const body = pem.split("\n")[2] as string;
    const hex = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64").toString("hex");
    expect(() => expectNoKeyMaterial(new PkiError(`oops ${body.slice(10, 30)}`), pem)).toThrow(/key material/);
    expect(() => expectNoKeyMaterial(new PkiError(`oops ${hex.slice(41, 61)}`), pem)).toThrow(/key material/);
    expect(() => expectNoKeyMaterial(new PkiError("a clean message"), pem)).not.toThrow();
  });
});

describe("exportPrivateKeyPem of a key that cannot leave WebCrypto", () => {
  it.each(["pkcs8", "pkcs1", "sec1"] as const)("refuses (%s) with a PkiError that carries no cause", async (format) => {
    const spec = format === "pkcs1" ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]) } : { name: "ECDSA", namedCurve: "P-256" };
    const { privateKey } = (await crypto.subtle.generateKey(spec, false, ["sign", "verify"])) as CryptoKeyPair;
    const error = await exportPrivateKeyPem(privateKey, format).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(PkiError);
    expect((error as Error).message).toBe("private key could not be exported (is it extractable?)");
    expect((error as { cause?: unknown }).cause).toBeUndefined();
  });
});
