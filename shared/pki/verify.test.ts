import {
  type CertificateVerificationReason,
  CertificateVerificationError,
  PkiError,
  buildCertChain,
  buildCsr,
  certificateMatchesPrivateKey,
  describeCertificate,
  exportPrivateKeyPem,
  generateKeyPair,
  verifyCaCertificate,
  verifyCertChain,
  verifyIssuedCertificate,
} from "./index";
import { x509 } from "./crypto-provider";
import { subjectAltNameExtension } from "./hosts";
import { encodePem } from "./pem";
import {
  OPENSSL_INTERMEDIATE_EXTENSIONS,
  type OpensslCa,
  OpensslWorkspace,
  expectNoKeyMaterial,
} from "./testing/openssl";

// The issuer here is the openssl CLI, so the verifier is tested against certificates our own issuer
// code did not make (e2e/issuer/sign.test.ts covers that one).
const HOSTS = ["spiffe://cluster.local/ns/istio-system/sa/istiod", "istiod.istio-system.svc", "10.0.0.1", "2001:db8::1"];
const SAN_LINE = "subjectAltName = critical,URI:spiffe://cluster.local/ns/istio-system/sa/istiod,DNS:istiod.istio-system.svc,IP:10.0.0.1,IP:2001:db8::1";
const DAY_MS = 86_400_000;

const ws = new OpensslWorkspace();
let keys: CryptoKeyPair;
let otherKeys: CryptoKeyPair;
let csr: string;
let root: OpensslCa;
let otherRoot: OpensslCa;
let issued: string;
let serial = 0;

function sign(extensions: string[], options: { ca?: OpensslCa; days?: number; digest?: string } = {}): string {
  return ws.signCsr(`int-${serial++}`, csr, options.ca ?? root, { extensions, ...options });
}

async function verify(overrides: Partial<Parameters<typeof verifyIssuedCertificate>[0]> = {}) {
  return verifyIssuedCertificate({
    certificatePem: issued,
    rootPem: root.certPem,
    publicKey: keys.publicKey,
    hosts: HOSTS,
    now: new Date(),
    ...overrides,
  });
}

async function reasonOf(promise: Promise<unknown>): Promise<CertificateVerificationReason | "accepted"> {
  try {
    await promise;
    return "accepted";
  } catch (error) {
    if (!(error instanceof CertificateVerificationError)) throw error;
    return error.reason;
  }
}

beforeAll(async () => {
  [keys, otherKeys] = await Promise.all([
    generateKeyPair({ algorithm: "ECDSA", curve: "P-256" }),
    generateKeyPair({ algorithm: "ECDSA", curve: "P-256" }),
  ]);
  csr = await buildCsr({ keys, org: "solo.io", hosts: HOSTS });
  root = ws.makeRoot("root", { subject: "/O=openssl/CN=Root CA", key: "rsa:2048" });
  otherRoot = ws.makeRoot("other-root", { subject: "/O=openssl/CN=Other Root CA", key: "ec:P-384" });
  issued = sign([...OPENSSL_INTERMEDIATE_EXTENSIONS, SAN_LINE]);
});
afterAll(() => ws.cleanup());

describe("verifyIssuedCertificate accepts", () => {
  it("an openssl-issued intermediate for our key, and describes it", async () => {
    const verified = await verify();
    expect(verified).toMatchObject({
      subject: "O=solo.io",
      issuer: "O=openssl, CN=Root CA",
      sans: HOSTS,
      keyDescription: "ECDSA-P256",
    });
    expect(verified.serialNumber).toMatch(/^[0-9a-f]+$/);
    expect(verified.notAfter.getTime() - verified.notBefore.getTime()).toBe(5 * DAY_MS);
    expect(await describeCertificate(issued)).toEqual(verified);
  });

  it("hosts written differently from the SANs: DNS case, IPv6 spelling, duplicates, order", async () => {
    const hosts = ["2001:DB8:0:0:0:0:0:1", "ISTIOD.istio-system.svc", "10.0.0.1", "10.0.0.1", "spiffe://cluster.local/ns/istio-system/sa/istiod"];
    expect(await reasonOf(verify({ hosts }))).toBe("accepted");
  });

  it("a root bundle in which any root signed it (multi-root during a root rotation)", async () => {
    expect(await reasonOf(verify({ rootPem: `${otherRoot.certPem}${root.certPem}` }))).toBe("accepted");
  });

  it("a notBefore slightly ahead of our clock when a skew tolerance is given", async () => {
    const { notBefore } = await verify();
    const now = new Date(notBefore.getTime() - 2_000);
    expect(await reasonOf(verify({ now }))).toBe("NotYetValid");
    expect(await reasonOf(verify({ now, clockSkewToleranceMs: 5_000 }))).toBe("accepted");
  });
});

describe("verifyIssuedCertificate refuses", () => {
  it.each([
    ["empty", ""],
    ["whitespace", " \n"],
    ["not PEM", "not a certificate"],
    ["a PEM of garbage", encodePem("CERTIFICATE", Buffer.from("garbage"))],
    ["invalid base64", "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"],
    ["a CSR", "csr"],
    ["two certificates", "two"],
    ["text outside the PEM block", "stray"],
  ])("%s as Malformed", async (_name, input) => {
    const certificatePem = input === "csr" ? csr : input === "two" ? `${issued}${root.certPem}` : input === "stray" ? `Certificate:\n${issued}` : input;
    expect(await reasonOf(verify({ certificatePem }))).toBe("Malformed");
  });

  it("a private key where the certificate should be, without quoting it", async () => {
    const keyPem = await exportPrivateKeyPem(keys.privateKey);
    const error = await verify({ certificatePem: keyPem }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CertificateVerificationError);
    expect((error as CertificateVerificationError).reason).toBe("Malformed");
    expectNoKeyMaterial(error, keyPem);
  });

  it("a certificate with a repeated extension as Malformed (Go refuses to parse it)", async () => {
    const rootKeys = await generateKeyPair({ algorithm: "ECDSA", curve: "P-256" });
    const certificate = await x509.X509CertificateGenerator.create({
      issuer: "CN=x",
      publicKey: keys.publicKey,
      signingKey: rootKeys.privateKey,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
      extensions: [subjectAltNameExtension(["a.example.com"]), subjectAltNameExtension(["b.example.com"])],
    });
    const error = await verify({ certificatePem: encodePem("CERTIFICATE", certificate.rawData) }).catch((e: unknown) => e);
    expect(error).toMatchObject({ reason: "Malformed", message: expect.stringContaining("repeats an extension") });
  });

  it("a certificate for another key as PublicKeyMismatch", async () => {
    expect(await reasonOf(verify({ publicKey: otherKeys.publicKey }))).toBe("PublicKeyMismatch");
    const rsa = await generateKeyPair({ algorithm: "RSA", bits: 2048 });
    expect(await reasonOf(verify({ publicKey: rsa.publicKey }))).toBe("PublicKeyMismatch");
  });

  it("a root that did not sign it as UntrustedChain", async () => {
    const error = await verify({ rootPem: otherRoot.certPem }).catch((e: unknown) => e);
    expect(error).toMatchObject({ reason: "UntrustedChain", message: expect.stringContaining("is not the subject of the signing root") });
  });

  it("a different root with the same name as UntrustedChain (signature check, not just names)", async () => {
    const impostor = ws.makeRoot("impostor", { subject: "/O=openssl/CN=Root CA", key: "rsa:2048" });
    const error = await verify({ rootPem: impostor.certPem }).catch((e: unknown) => e);
    expect(error).toMatchObject({ reason: "UntrustedChain", message: expect.stringContaining("signature does not verify") });
  });

  it.each([
    ["empty", ""],
    ["garbage", "garbage"],
    ["a PEM of garbage", encodePem("CERTIFICATE", Buffer.from("garbage"))],
  ])("a root that is %s as UntrustedChain", async (_name, rootPem) => {
    const error = await verify({ rootPem }).catch((e: unknown) => e);
    expect(error).toMatchObject({ reason: "UntrustedChain", message: expect.stringMatching(/^UntrustedChain: signing root: /) });
  });

  it.each([
    ["is not a CA", ["basicConstraints = critical,CA:FALSE", "keyUsage = critical,keyCertSign"], "not a CA"],
    ["allows no intermediate (pathlen:0)", ["basicConstraints = critical,CA:TRUE,pathlen:0", "keyUsage = critical,keyCertSign"], "pathLenConstraint 0"],
    ["may not sign certificates (KeyUsage)", ["basicConstraints = critical,CA:TRUE", "keyUsage = critical,digitalSignature,cRLSign"], "KeyUsage"],
  ])("a root that %s as UntrustedChain", async (_name, extensions, message) => {
    const weakRoot = ws.makeRoot(`weak-root-${serial++}`, { subject: "/CN=Weak Root", extensions });
    const certificatePem = sign([...OPENSSL_INTERMEDIATE_EXTENSIONS, SAN_LINE], { ca: weakRoot });
    const error = await verify({ certificatePem, rootPem: weakRoot.certPem }).catch((e: unknown) => e);
    expect(error).toMatchObject({ reason: "UntrustedChain", message: expect.stringContaining(message) });
  });

  it("a SHA-1 signature as UntrustedChain", async () => {
    const certificatePem = sign([...OPENSSL_INTERMEDIATE_EXTENSIONS, SAN_LINE], { digest: "sha1" });
    const error = await verify({ certificatePem }).catch((e: unknown) => e);
    expect(error).toMatchObject({ reason: "UntrustedChain", message: expect.stringContaining("SHA-1") });
  });

  it("an expired root as Expired, naming the root", async () => {
    const shortRoot = ws.makeRoot("short-root", { subject: "/CN=Short Root", days: 1 });
    const certificatePem = sign([...OPENSSL_INTERMEDIATE_EXTENSIONS, SAN_LINE], { ca: shortRoot, days: 5 });
    const inTwoDays = new Date(Date.now() + 2 * DAY_MS);
    const expired = await verify({ certificatePem, rootPem: shortRoot.certPem, now: inTwoDays }).catch((e: unknown) => e);
    expect(expired).toMatchObject({ reason: "Expired", message: expect.stringContaining("signing root expired") });
  });

  it.each([
    ["CA:FALSE", ["basicConstraints = critical,CA:FALSE", "keyUsage = critical,keyCertSign"]],
    ["no BasicConstraints", ["keyUsage = critical,keyCertSign"]],
    ["KeyUsage without Certificate Sign", ["basicConstraints = critical,CA:TRUE", "keyUsage = critical,digitalSignature"]],
  ])("%s as NotACA", async (_name, extensions) => {
    expect(await reasonOf(verify({ certificatePem: sign([...extensions, SAN_LINE]) }))).toBe("NotACA");
  });

  it("before notBefore as NotYetValid and after notAfter as Expired", async () => {
    const { notBefore, notAfter } = await verify();
    expect(await reasonOf(verify({ now: new Date(notBefore.getTime() - 1_000) }))).toBe("NotYetValid");
    expect(await reasonOf(verify({ now: notBefore }))).toBe("accepted");
    expect(await reasonOf(verify({ now: notAfter }))).toBe("accepted");
    expect(await reasonOf(verify({ now: new Date(notAfter.getTime() + 1_000) }))).toBe("Expired");
  });

  it.each([
    ["a host missing", [...HOSTS, "extra.example.com"]],
    ["an extra SAN", HOSTS.slice(1)],
    ["a URI differing in case", [...HOSTS.slice(1), "spiffe://cluster.local/ns/istio-system/sa/ISTIOD"]],
    ["no hosts at all", []],
  ])("SANs that differ from the hosts (%s) as SANMismatch", async (_name, hosts) => {
    expect(await reasonOf(verify({ hosts }))).toBe("SANMismatch");
  });

  it("an IP host certified as a DNS name as SANMismatch", async () => {
    const certificatePem = sign([...OPENSSL_INTERMEDIATE_EXTENSIONS, "subjectAltName = critical,DNS:10.0.0.1"]);
    const error = await verify({ certificatePem, hosts: ["10.0.0.1"] }).catch((e: unknown) => e);
    expect(error).toMatchObject({ reason: "SANMismatch", message: 'SANMismatch: certificate SANs differ from the requested hosts: missing ["10.0.0.1"], unexpected ["10.0.0.1"]' });
  });

  it("a certificate without SANs as SANMismatch", async () => {
    expect(await reasonOf(verify({ certificatePem: sign(OPENSSL_INTERMEDIATE_EXTENSIONS) }))).toBe("SANMismatch");
  });
});

describe("certificateMatchesPrivateKey", () => {
  it.each(["pkcs8", "sec1"] as const)("is true for our key as %s", async (format) => {
    expect(await certificateMatchesPrivateKey(issued, await exportPrivateKeyPem(keys.privateKey, format))).toBe(true);
  });

  it("is false for another key", async () => {
    expect(await certificateMatchesPrivateKey(issued, await exportPrivateKeyPem(otherKeys.privateKey))).toBe(false);
    expect(await certificateMatchesPrivateKey(root.certPem, ws.read("root.key"))).toBe(true);
    expect(await certificateMatchesPrivateKey(root.certPem, await exportPrivateKeyPem(keys.privateKey))).toBe(false);
  });

  it("throws PkiError on malformed input", async () => {
    await expect(certificateMatchesPrivateKey("nope", await exportPrivateKeyPem(keys.privateKey))).rejects.toThrow(PkiError);
    await expect(certificateMatchesPrivateKey(issued, "nope")).rejects.toThrow(PkiError);
  });
});

describe("buildCertChain", () => {
  it("puts the intermediate (trailing newlines trimmed) before the root, byte for byte", () => {
    expect(buildCertChain("INT\n\n", "ROOT\n")).toBe("INT\nROOT\n");
    expect(buildCertChain("INT", "ROOT")).toBe("INT\nROOT");
    expect(buildCertChain("INT\r\n", "ROOT\r\n")).toBe("INT\nROOT\r\n");
  });

  it("gives a chain openssl verifies", () => {
    ws.file("ca-cert.pem", issued);
    ws.file("cert-chain.pem", buildCertChain(issued, root.certPem));
    const { output } = ws.ok(["verify", "-CAfile", root.certPath, "-untrusted", "cert-chain.pem", "ca-cert.pem"]);
    expect(output).toContain("ca-cert.pem: OK");
  });
});

describe("verifyCaCertificate (a plugged-in CA as istiod uses it: verifyIssuedCertificate without the SANs)", () => {
  const ca = (overrides: Partial<Parameters<typeof verifyCaCertificate>[0]> = {}) =>
    verifyCaCertificate({ certificatePem: issued, rootPem: root.certPem, publicKey: keys.publicKey, now: new Date(), ...overrides });

  it("accepts our intermediate and describes it like verifyIssuedCertificate, whatever the hosts", async () => {
    expect(await ca()).toEqual(await verify());
  });

  it.each<[string, () => Partial<Parameters<typeof verifyCaCertificate>[0]>, CertificateVerificationReason]>([
    ["another key", () => ({ publicKey: otherKeys.publicKey }), "PublicKeyMismatch"],
    ["another root", () => ({ rootPem: otherRoot.certPem }), "UntrustedChain"],
    ["a root that is no PEM", () => ({ rootPem: "garbage" }), "UntrustedChain"],
    ["a certificate that is no CA", () => ({ certificatePem: sign(["basicConstraints = critical,CA:false", SAN_LINE]) }), "NotACA"],
    ["a time before notBefore", () => ({ now: new Date(Date.now() - 2 * DAY_MS) }), "NotYetValid"],
    ["a time after notAfter", () => ({ now: new Date(Date.now() + 6 * DAY_MS) }), "Expired"],
    ["garbage", () => ({ certificatePem: "garbage" }), "Malformed"],
  ])("refuses %s, with the same reason as verifyIssuedCertificate", async (_name, overrides, reason) => {
    expect(await reasonOf(ca(overrides()))).toBe(reason);
    expect(await reasonOf(verify(overrides()))).toBe(reason);
  });
});

describe("verifyCertChain", () => {
  const chain = () => buildCertChain(issued, root.certPem);
  it.each<[string, () => string]>([
    ["buildCertChain's output", chain],
    ["CRLF line ends and no final newline", () => chain().replace(/\n/g, "\r\n").trimEnd()],
    ["text between the blocks (openssl's -text output)", () => `subject=...\n${issued}issuer=...\n${root.certPem}`],
  ])("accepts %s", (_name, chainPem) => {
    expect(() => verifyCertChain(chainPem(), issued, root.certPem)).not.toThrow();
  });

  it("accepts the intermediate followed by every root of a bundle (a root rotation)", () => {
    const roots = `${root.certPem}${otherRoot.certPem}`;
    expect(() => verifyCertChain(buildCertChain(issued, roots), issued, roots)).not.toThrow();
  });

  it.each<[string, () => string]>([
    ["garbage", () => "garbage"],
    ["an empty text", () => ""],
    ["a PEM with invalid base64", () => "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"],
    ["the intermediate alone", () => issued],
    ["the root alone", () => root.certPem],
    ["root, then intermediate", () => buildCertChain(root.certPem, issued)],
    ["another root", () => buildCertChain(issued, otherRoot.certPem)],
    ["the root twice", () => buildCertChain(issued, `${root.certPem}${root.certPem}`)],
    ["a private key block added", () => `${chain()}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n`],
  ])("refuses %s as ChainMismatch, naming the files, quoting nothing", (_name, chainPem) => {
    let error: unknown;
    try {
      verifyCertChain(chainPem(), issued, root.certPem);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CertificateVerificationError);
    expect(error).toMatchObject({ reason: "ChainMismatch", message: "ChainMismatch: cert-chain.pem is not ca-cert.pem followed by root-cert.pem" });
  });
});
