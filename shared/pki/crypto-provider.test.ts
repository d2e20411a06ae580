import { Crypto as PeculiarCrypto } from "@peculiar/webcrypto";
import {
  type KeySpec,
  buildCsr,
  currentCryptoProvider,
  describeKeySpec,
  exportPrivateKeyPem,
  generateKeyPair,
  importPrivateKeyPem,
  parseCsr,
  publicKeyFingerprint,
  useCryptoProvider,
  verifyIssuedCertificate,
} from "./index";
import { x509 } from "./crypto-provider";
import { OPENSSL_INTERMEDIATE_EXTENSIONS, OpensslWorkspace } from "./testing/openssl";

const ws = new OpensslWorkspace();
afterAll(() => {
  useCryptoProvider("node");
  ws.cleanup();
});

it("defaults to Node's built-in WebCrypto, for @peculiar/x509 too", () => {
  expect(currentCryptoProvider()).toBe("node");
  expect(x509.cryptoProvider.get()).toBe(globalThis.crypto);
});

describe.each<KeySpec>([
  { algorithm: "ECDSA", curve: "P-256" },
  { algorithm: "RSA", bits: 2048 },
])("the explicit @peculiar/webcrypto alternative with %j", (spec) => {
  const name = describeKeySpec(spec);
  const hosts = ["spiffe://td/ns/istio-system/sa/istiod", "istiod.istio-system.svc", "10.0.0.1"];

  beforeAll(() => useCryptoProvider("peculiar"));
  afterAll(() => useCryptoProvider("node"));

  it("builds a CSR that openssl verifies and an openssl-signed intermediate that verifies", async () => {
    expect(currentCryptoProvider()).toBe("peculiar");
    expect(x509.cryptoProvider.get()).toBeInstanceOf(PeculiarCrypto);
    const keys = await generateKeyPair(spec);
    expect(keys.privateKey).not.toBeInstanceOf(globalThis.CryptoKey); // really made by the other implementation

    const csr = await buildCsr({ keys, org: "solo.io", hosts });
    const csrPath = ws.file(`${name}.csr.pem`, csr);
    expect(ws.ok(["req", "-in", csrPath, "-noout", "-verify"]).output).toContain("verify OK");
    expect(await parseCsr(csr)).toMatchObject({ hosts, org: "solo.io", valid: true, spec });

    const root = ws.makeRoot(`${name}-root`);
    const san = `subjectAltName = critical,${hosts.map((h) => (h.startsWith("spiffe") ? `URI:${h}` : /^\d/.test(h) ? `IP:${h}` : `DNS:${h}`)).join(",")}`;
    const certificatePem = ws.signCsr(`${name}-int`, csr, root, { extensions: [...OPENSSL_INTERMEDIATE_EXTENSIONS, san] });
    const verified = await verifyIssuedCertificate({ certificatePem, rootPem: root.certPem, publicKey: keys.publicKey, hosts, now: new Date() });
    expect(verified.keyDescription).toBe(name);

    const other = await generateKeyPair(spec);
    await expect(
      verifyIssuedCertificate({ certificatePem, rootPem: root.certPem, publicKey: other.publicKey, hosts, now: new Date() }),
    ).rejects.toMatchObject({ reason: "PublicKeyMismatch" });
  });

  it("exports and imports keys that openssl reads", async () => {
    const keys = await generateKeyPair(spec);
    const pem = await exportPrivateKeyPem(keys.privateKey, spec.algorithm === "RSA" ? "pkcs1" : "sec1");
    const path = ws.file(`${name}.key.pem`, pem);
    expect(ws.publicKeyFingerprintOf(["pkey", "-in", path, "-pubout"])).toBe(await publicKeyFingerprint(keys.publicKey));
    const imported = await importPrivateKeyPem(pem);
    expect(await publicKeyFingerprint(imported.publicKey)).toBe(await publicKeyFingerprint(keys.publicKey));
  });
});

it("says so when a key from one provider meets the other", async () => {
  useCryptoProvider("node");
  const nodeKeys = await generateKeyPair({ algorithm: "ECDSA", curve: "P-256" });
  useCryptoProvider("peculiar");
  try {
    await expect(publicKeyFingerprint(nodeKeys.publicKey)).rejects.toThrow(/made by another provider/);
  } finally {
    useCryptoProvider("node");
  }
});

it("switches back to the built-in provider", async () => {
  useCryptoProvider("node");
  expect(currentCryptoProvider()).toBe("node");
  const keys = await generateKeyPair({ algorithm: "ECDSA", curve: "P-256" });
  expect(keys.privateKey).toBeInstanceOf(globalThis.CryptoKey);
  expect(x509.cryptoProvider.get()).toBe(globalThis.crypto);
});
