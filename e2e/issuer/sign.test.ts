import {
  CertificateVerificationError,
  PkiError,
  buildCertChain,
  buildCsr,
  certificateMatchesPrivateKey,
  describeCertificate,
  describeKeySpec,
  exportPrivateKeyPem,
  generateKeyPair,
  importPrivateKeyPem,
  useCryptoProvider,
  verifyIssuedCertificate,
} from "../../shared/pki";
import { OpensslWorkspace, expectNoKeyMaterial } from "../../shared/pki/testing/openssl";
import { MISBEHAVIOURS, type Misbehaviour, type RootCa, createRootCa, signIntermediate } from "./sign";
import { ALL_KEY_SPECS } from "../../shared/pki/testing/key-specs";

const HOSTS = ["spiffe://cluster.local/ns/istio-system/sa/istiod", "istiod.istio-system.svc", "10.0.0.1", "2001:db8::1"];
const DAY_MS = 86_400_000;

const ws = new OpensslWorkspace();
const agentKeys = new Map<string, CryptoKeyPair>();
let rsaRoot: RootCa;
let ecRoot: RootCa;

beforeAll(async () => {
  const [keys, rsa, ec] = await Promise.all([
    Promise.all(ALL_KEY_SPECS.map((spec) => generateKeyPair(spec))),
    createRootCa(),
    createRootCa({ commonName: "cert-agent EC root", spec: { algorithm: "ECDSA", curve: "P-384" } }),
  ]);
  ALL_KEY_SPECS.forEach((spec, i) => agentKeys.set(describeKeySpec(spec), keys[i] as CryptoKeyPair));
  [rsaRoot, ecRoot] = [rsa, ec];
  ws.file("rsa-root.pem", rsaRoot.certPem);
  ws.file("ec-root.pem", ecRoot.certPem);
}, 60_000);
afterAll(() => ws.cleanup());

/** The hex after "keyid:" or on the line following an extension's title in `openssl x509 -text`. */
function keyIdentifier(text: string, title: string): string {
  const match = new RegExp(`${title}: *\\n\\s*(?:keyid:)?([0-9A-F:]+)`).exec(text);
  if (!match) throw new Error(`${title} not found`);
  return match[1] as string;
}

describe.each(ALL_KEY_SPECS.map((spec) => [describeKeySpec(spec), spec] as const))("agent key %s", (name, spec) => {
  const keys = () => agentKeys.get(name) as CryptoKeyPair;
  const traditional = spec.algorithm === "RSA" ? ("pkcs1" as const) : ("sec1" as const);

  it.each([
    ["RSA-2048 root", "rsa"],
    ["ECDSA-P384 root", "ec"],
  ] as const)("is issued an intermediate by the %s that openssl and our verifier accept", async (_rootName, rootKind) => {
    const root = rootKind === "rsa" ? rsaRoot : ecRoot;
    const prefix = `${name}-${rootKind}`;
    const csr = await buildCsr({ keys: keys(), org: "solo.io", hosts: HOSTS });
    ws.file(`${prefix}.csr.pem`, csr);
    expect(ws.ok(["req", "-in", `${prefix}.csr.pem`, "-noout", "-verify"]).output).toContain("verify OK");

    const now = new Date();
    const certificatePem = await signIntermediate({ csrPem: csr, hosts: HOSTS, ttlDays: 30, root, now });
    ws.file(`${prefix}.int.pem`, certificatePem);

    const verified = await verifyIssuedCertificate({ certificatePem, rootPem: root.certPem, publicKey: keys().publicKey, hosts: HOSTS, now });
    expect(verified).toMatchObject({ subject: "", sans: HOSTS, keyDescription: name });
    expect(verified.notAfter.getTime() - verified.notBefore.getTime()).toBe(30 * DAY_MS);
    expect(verified.notBefore.getTime()).toBe(Math.floor(now.getTime() / 1000) * 1000);

    expect(ws.ok(["verify", "-CAfile", `${rootKind}-root.pem`, `${prefix}.int.pem`]).output).toContain(`${prefix}.int.pem: OK`);
    const text = ws.ok(["x509", "-in", `${prefix}.int.pem`, "-noout", "-text"]).output;
    expect(text).toMatch(/\n\s+Subject: *\n/); // empty subject
    expect(text).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE\n/);
    expect(text).toMatch(/X509v3 Key Usage: critical\n\s+Certificate Sign\n/); // and nothing else
    expect(text).toMatch(
      /X509v3 Subject Alternative Name: critical\n\s+URI:spiffe:\/\/cluster.local\/ns\/istio-system\/sa\/istiod, DNS:istiod.istio-system.svc, IP Address:10.0.0.1, IP Address:2001:DB8:0:0:0:0:0:1\n/,
    );
    expect(text).toContain(rootKind === "rsa" ? "Signature Algorithm: sha256WithRSAEncryption" : "Signature Algorithm: ecdsa-with-SHA256");
    const rootText = ws.ok(["x509", "-in", `${rootKind}-root.pem`, "-noout", "-text"]).output;
    expect(keyIdentifier(text, "X509v3 Authority Key Identifier")).toBe(keyIdentifier(rootText, "X509v3 Subject Key Identifier"));
    expect(keyIdentifier(text, "X509v3 Subject Key Identifier")).toMatch(/^([0-9A-F]{2}:){19}[0-9A-F]{2}$/);

    const serial = BigInt(`0x${ws.ok(["x509", "-in", `${prefix}.int.pem`, "-noout", "-serial"]).stdout.trim().replace("serial=", "")}`);
    expect(serial > 0n && serial < 2n ** 128n).toBe(true);
  });

  it.each(["pkcs8", "traditional"] as const)("has a %s key whose public half openssl matches with the certificate's", async (format) => {
    const certificatePem = await signIntermediate({ csrPem: await buildCsr({ keys: keys(), org: "", hosts: HOSTS }), hosts: HOSTS, ttlDays: 1, root: rsaRoot });
    const keyPem = await exportPrivateKeyPem(keys().privateKey, format === "pkcs8" ? "pkcs8" : traditional);
    ws.file(`${name}-${format}.key.pem`, keyPem);
    ws.file(`${name}-${format}.cert.pem`, certificatePem);
    const fromKey = ws.ok(["pkey", "-in", `${name}-${format}.key.pem`, "-pubout"]).stdout;
    const fromCert = ws.ok(["x509", "-in", `${name}-${format}.cert.pem`, "-pubkey", "-noout"]).stdout;
    expect(fromKey).toBe(fromCert);
    expect(await certificateMatchesPrivateKey(certificatePem, keyPem)).toBe(true);
  });

  it("makes a cacerts bundle whose key signs workload certificates that chain to the root", async () => {
    const certificatePem = await signIntermediate({ csrPem: await buildCsr({ keys: keys(), org: "o", hosts: HOSTS }), hosts: HOSTS, ttlDays: 1, root: rsaRoot });
    const dir = `${name}-cacerts`;
    ws.file(`${dir}-ca-cert.pem`, certificatePem);
    ws.file(`${dir}-ca-key.pem`, await exportPrivateKeyPem(keys().privateKey, traditional)); // Gloo Mesh writes PKCS#1
    ws.file(`${dir}-cert-chain.pem`, buildCertChain(certificatePem, rsaRoot.certPem));
    ws.file(`${dir}-root-cert.pem`, rsaRoot.certPem);
    expect(ws.ok(["verify", "-CAfile", `${dir}-root-cert.pem`, "-untrusted", `${dir}-cert-chain.pem`, `${dir}-ca-cert.pem`]).output).toContain("OK");

    // What istiod does with the bundle: sign a workload certificate with ca-key.pem.
    ws.ok(["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${dir}-leaf.key`,
      "-subj", "/", "-addext", "subjectAltName=critical,URI:spiffe://cluster.local/ns/default/sa/app", "-out", `${dir}-leaf.csr`]);
    ws.ok(["x509", "-req", "-in", `${dir}-leaf.csr`, "-CA", `${dir}-ca-cert.pem`, "-CAkey", `${dir}-ca-key.pem`, "-set_serial", "7", "-days", "1", "-copy_extensions", "copy", "-out", `${dir}-leaf.pem`]);
    expect(ws.ok(["verify", "-CAfile", `${dir}-root-cert.pem`, "-untrusted", `${dir}-cert-chain.pem`, `${dir}-leaf.pem`]).output).toContain(`${dir}-leaf.pem: OK`);
  });
});

describe("signIntermediate", () => {
  const keys = () => agentKeys.get("ECDSA-P256") as CryptoKeyPair;
  const csr = () => buildCsr({ keys: keys(), org: "solo.io", hosts: ["from-the-csr.example.com"] });

  it("takes the SANs from the hosts, not from the CSR", async () => {
    const certificatePem = await signIntermediate({ csrPem: await csr(), hosts: ["from-the-request.example.com"], ttlDays: 1, root: rsaRoot });
    expect((await describeCertificate(certificatePem)).sans).toEqual(["from-the-request.example.com"]);
  });

  it("signs a 186 KB CSR (6000 hosts) and a 100-year certificate", async () => {
    const many = Array.from({ length: 6000 }, (_, i) => `host-${i}.example.com`);
    const big = await buildCsr({ keys: keys(), org: "o", hosts: many });
    expect(big.length).toBeGreaterThan(180_000);
    expect((await describeCertificate(await signIntermediate({ csrPem: big, hosts: many, ttlDays: 1, root: ecRoot }))).sans).toHaveLength(6000);
    const now = new Date("2026-01-01T00:00:00Z");
    const { notAfter } = await describeCertificate(await signIntermediate({ csrPem: await csr(), hosts: HOSTS, ttlDays: 36_500, root: ecRoot, now }));
    expect(notAfter.getTime()).toBeGreaterThan(new Date("2125-01-01T00:00:00Z").getTime());
  });

  it("issues for one year when ttlDays is 0", async () => {
    const { notBefore, notAfter } = await describeCertificate(await signIntermediate({ csrPem: await csr(), hosts: HOSTS, ttlDays: 0, root: rsaRoot }));
    expect(notAfter.getTime() - notBefore.getTime()).toBe(365 * DAY_MS);
  });

  it("uses a fresh positive serial below 2^128 each time", async () => {
    const csrPem = await csr();
    const serials = await Promise.all(
      Array.from({ length: 12 }, async () => (await describeCertificate(await signIntermediate({ csrPem, hosts: HOSTS, ttlDays: 1, root: ecRoot }))).serialNumber),
    );
    expect(new Set(serials).size).toBe(serials.length);
    for (const serial of serials) expect(BigInt(`0x${serial}`) < 2n ** 128n && BigInt(`0x${serial}`) > 0n).toBe(true);
  });

  it("refuses a CSR whose signature does not verify", async () => {
    const der = Buffer.from((await csr()).replace(/-----[^-]+-----|\s/g, ""), "base64");
    der[der.length - 5] ^= 0x01;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    await expect(signIntermediate({ csrPem: tampered, hosts: HOSTS, ttlDays: 1, root: rsaRoot })).rejects.toThrow(
      /CSR signature does not verify.*refusing to sign/,
    );
  });

  it.each([
    ["a malformed CSR", { csrPem: "garbage" }, /CERTIFICATE REQUEST/],
    ["no hosts", { hosts: [] }, /at least one SubjectAltName/],
    ["a negative ttl", { ttlDays: -1 }, /^ttlDays must be an integer from 0 to 36500, got -1$/],
    ["a ttl of 2^32-1 days (it overflowed notAfter into 1899)", { ttlDays: 4294967295 }, /^ttlDays must be an integer from 0 to 36500, got 4294967295$/],
  ])("refuses %s", async (_name, override, error) => {
    await expect(signIntermediate({ csrPem: await csr(), hosts: HOSTS, ttlDays: 1, root: rsaRoot, ...override })).rejects.toThrow(error);
  });

  it("refuses a signing secret whose key or certificate is unreadable", async () => {
    const csrPem = await csr();
    await expect(signIntermediate({ csrPem, hosts: HOSTS, ttlDays: 1, root: { ...rsaRoot, keyPem: "nope" } })).rejects.toThrow(PkiError);
    await expect(signIntermediate({ csrPem, hosts: HOSTS, ttlDays: 1, root: { ...rsaRoot, certPem: "nope" } })).rejects.toThrow(
      /root-cert.pem is not a valid certificate/,
    );
  });

  it("signs with a signing secret made outside (openssl root, PKCS#1 key.pem)", async () => {
    const opensslRoot = ws.makeRoot("outside-root", { key: "rsa:2048", subject: "/O=Gloo Mesh/CN=relay root" });
    const pkcs1Key = ws.ok(["rsa", "-in", opensslRoot.keyPath, "-traditional"]).stdout;
    expect(pkcs1Key).toContain("BEGIN RSA PRIVATE KEY");
    const certificatePem = await signIntermediate({ csrPem: await csr(), hosts: HOSTS, ttlDays: 1, root: { certPem: opensslRoot.certPem, keyPem: pkcs1Key } });
    ws.file("outside-int.pem", certificatePem);
    expect(ws.ok(["verify", "-CAfile", opensslRoot.certPath, "outside-int.pem"]).output).toContain("outside-int.pem: OK");
    expect((await describeCertificate(certificatePem)).issuer).toBe("O=Gloo Mesh, CN=relay root");
  });
});

describe("createRootCa", () => {
  it("makes a self-signed CA with Certificate Sign + CRL Sign and an SKI", async () => {
    const text = ws.ok(["x509", "-in", "ec-root.pem", "-noout", "-text"]).output;
    expect(text).toMatch(/Subject: CN ?= ?cert-agent EC root\n/);
    expect(text).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE\n/);
    expect(text).toMatch(/X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/);
    expect(text).toContain("X509v3 Subject Key Identifier");
    expect(text).toContain("NIST CURVE: P-384");
    expect(ws.ok(["verify", "-CAfile", "ec-root.pem", "ec-root.pem"]).output).toContain("OK");
    expect((await importPrivateKeyPem(ecRoot.keyPem)).spec).toEqual({ algorithm: "ECDSA", curve: "P-384" });
    expect(await certificateMatchesPrivateKey(ecRoot.certPem, ecRoot.keyPem)).toBe(true);
  });

  it("honours days and defaults to RSA-2048", async () => {
    const summary = await describeCertificate(rsaRoot.certPem);
    expect(summary.keyDescription).toBe("RSA-2048");
    expect(summary.notAfter.getTime() - summary.notBefore.getTime()).toBe(3650 * DAY_MS);
    const short = await describeCertificate((await createRootCa({ days: 2, spec: { algorithm: "ECDSA", curve: "P-256" } })).certPem);
    expect(short.notAfter.getTime() - short.notBefore.getTime()).toBe(2 * DAY_MS);
  });
});

describe("misbehaviours: each bad answer is refused by verifyIssuedCertificate", () => {
  const EXPECTED: Record<Misbehaviour, CertificateVerificationError["reason"] | "accepted"> = {
    none: "accepted",
    "wrong-key": "PublicKeyMismatch",
    "foreign-root": "UntrustedChain",
    "not-a-ca": "NotACA",
    expired: "Expired",
    "not-yet-valid": "NotYetValid",
    "wrong-sans": "SANMismatch",
    garbage: "Malformed",
    empty: "Malformed",
  };

  it("covers every misbehaviour", () => {
    expect(Object.keys(EXPECTED).sort()).toEqual([...MISBEHAVIOURS].sort());
  });

  it.each(MISBEHAVIOURS.map((m) => [m, EXPECTED[m]] as const))("%s -> %s, with no key material in the error", async (misbehave, reason) => {
    const keys = agentKeys.get("ECDSA-P256") as CryptoKeyPair;
    const now = new Date();
    const csrPem = await buildCsr({ keys, org: "solo.io", hosts: HOSTS });
    const certificatePem = await signIntermediate({ csrPem, hosts: HOSTS, ttlDays: 30, root: rsaRoot, now, misbehave });
    const outcome = await verifyIssuedCertificate({ certificatePem, rootPem: rsaRoot.certPem, publicKey: keys.publicKey, hosts: HOSTS, now }).then(
      () => "accepted" as const,
      (error: unknown) => error,
    );
    if (reason === "accepted") {
      expect(outcome).toBe("accepted");
      return;
    }
    expect(outcome).toBeInstanceOf(CertificateVerificationError);
    expect((outcome as CertificateVerificationError).reason).toBe(reason);
    expect((outcome as Error).message).toMatch(new RegExp(`^${reason}: \\S`));
    expectNoKeyMaterial(outcome, await exportPrivateKeyPem(keys.privateKey));
    expectNoKeyMaterial(outcome, await exportPrivateKeyPem(keys.privateKey, "sec1"));
    expectNoKeyMaterial(outcome, rsaRoot.keyPem);
  });

  it.each(["foreign-root", "expired", "not-yet-valid"] as const)("%s is refused by `openssl verify` as well", async (misbehave) => {
    const keys = agentKeys.get("ECDSA-P256") as CryptoKeyPair;
    const csrPem = await buildCsr({ keys, org: "", hosts: HOSTS });
    ws.file(`${misbehave}.pem`, await signIntermediate({ csrPem, hosts: HOSTS, ttlDays: 30, root: rsaRoot, misbehave }));
    expect(ws.run(["verify", "-CAfile", "rsa-root.pem", `${misbehave}.pem`]).status).not.toBe(0);
  });
});

describe("with the @peculiar/webcrypto provider", () => {
  afterAll(() => useCryptoProvider("node"));

  it("creates a root, signs an intermediate and verifies it", async () => {
    useCryptoProvider("peculiar");
    const root = await createRootCa({ spec: { algorithm: "ECDSA", curve: "P-256" } });
    const keys = await generateKeyPair({ algorithm: "ECDSA", curve: "P-384" });
    const certificatePem = await signIntermediate({ csrPem: await buildCsr({ keys, org: "o", hosts: HOSTS }), hosts: HOSTS, ttlDays: 1, root });
    const verified = await verifyIssuedCertificate({ certificatePem, rootPem: root.certPem, publicKey: keys.publicKey, hosts: HOSTS, now: new Date() });
    expect(verified.keyDescription).toBe("ECDSA-P384");
    ws.file("peculiar-root.pem", root.certPem);
    ws.file("peculiar-int.pem", certificatePem);
    expect(ws.ok(["verify", "-CAfile", "peculiar-root.pem", "peculiar-int.pem"]).output).toContain("peculiar-int.pem: OK");
  });
});
