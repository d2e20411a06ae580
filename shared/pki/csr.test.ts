import { AsnConvert } from "@peculiar/asn1-schema";
import { CertificationRequest } from "@peculiar/asn1-csr";
import { id_ce_basicConstraints, id_ce_subjectAltName } from "@peculiar/asn1-x509";
import { x509 } from "./crypto-provider";
import { subjectAltNameExtension } from "./hosts";
import { encodePem } from "./pem";
import {
  type CsrRequest,
  PkiError,
  buildCsr,
  describeKeySpec,
  parseCsr,
  publicKeyFingerprint,
} from "./index";
import { OpensslWorkspace, expectNoKeyMaterial } from "./testing/openssl";
import { FAST_KEY_SPECS, keyPairsFor } from "./testing/key-specs";

const HOSTS = [
  "spiffe://cluster.local/ns/istio-system/sa/istiod",
  "istiod.istio-system.svc",
  "10.0.0.1",
  "2001:db8::1",
];

const ws = new OpensslWorkspace();
let pairs = new Map<string, CryptoKeyPair>();

beforeAll(async () => {
  pairs = await keyPairsFor(FAST_KEY_SPECS);
}, 60_000);
afterAll(() => ws.cleanup());

describe.each(FAST_KEY_SPECS.map((spec) => [describeKeySpec(spec), spec] as const))("CSR with %s", (name, spec) => {
  const keys = () => pairs.get(name) as CryptoKeyPair;

  it("passes `openssl req -verify` with subject O= only, one critical SAN and a SHA-256 signature", async () => {
    const csr = await buildCsr({ keys: keys(), org: "solo.io", hosts: HOSTS });
    expect(csr).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----\n[\s\S]+\n-----END CERTIFICATE REQUEST-----\n$/);
    const path = ws.file(`${name}.csr.pem`, csr);
    const { output } = ws.ok(["req", "-in", path, "-noout", "-verify", "-text"]);
    expect(output).toContain("self-signature verify OK");
    expect(output).toMatch(/Subject: O ?= ?solo\.io\n/);
    expect(output).not.toMatch(/CN ?=/);
    expect(output.match(/X509v3 Subject Alternative Name/g)).toHaveLength(1);
    expect(output).toContain("X509v3 Subject Alternative Name: critical");
    expect(output).toContain(
      "URI:spiffe://cluster.local/ns/istio-system/sa/istiod, DNS:istiod.istio-system.svc, IP Address:10.0.0.1, IP Address:2001:DB8:0:0:0:0:0:1",
    );
    if (spec.algorithm === "RSA") {
      expect(output).toContain("Signature Algorithm: sha256WithRSAEncryption");
      expect(output).toContain(`Public-Key: (${spec.bits} bit)`);
    } else {
      expect(output).toContain("Signature Algorithm: ecdsa-with-SHA256");
      expect(output).toContain(`NIST CURVE: ${spec.curve}`);
    }
    expect(ws.publicKeyFingerprintOf(["req", "-in", path, "-noout", "-pubkey"])).toBe(
      await publicKeyFingerprint(keys().publicKey),
    );
  });

  it("parses back (what the issuer reads)", async () => {
    const parsed = await parseCsr(await buildCsr({ keys: keys(), org: "solo.io", hosts: HOSTS }));
    expect(parsed).toMatchObject({ org: "solo.io", hosts: HOSTS, valid: true, spec });
    expect(await publicKeyFingerprint(parsed.publicKey)).toBe(await publicKeyFingerprint(keys().publicKey));
  });
});

describe("buildCsr details", () => {
  const keys = () => pairs.get("ECDSA-P256") as CryptoKeyPair;

  it("writes an empty subject when org is empty", async () => {
    const path = ws.file("no-org.csr.pem", await buildCsr({ keys: keys(), org: "", hosts: ["a.example.com"] }));
    expect(ws.ok(["req", "-in", path, "-noout", "-subject", "-nameopt", "RFC2253"]).stdout.trim()).toBe("subject=");
    expect((await parseCsr(ws.read("no-org.csr.pem"))).org).toBe("");
  });

  it("keeps an org with DN-special characters as one O= value", async () => {
    const org = 'Solo, Inc. + "friends" \\ #1 – Zürich';
    const csr = await buildCsr({ keys: keys(), org, hosts: ["a.example.com"] });
    expect((await parseCsr(csr)).org).toBe(org);
    const path = ws.file("special-org.csr.pem", csr);
    const subject = ws.ok(["req", "-in", path, "-noout", "-subject", "-nameopt", "multiline,utf8,-esc_msb"]).stdout;
    // openssl's display escapes the backslash; the bytes are the org verbatim.
    expect(subject).toContain(`organizationName          = ${org.replace(/\\/g, "\\\\")}`);
  });

  it("omits the SAN extension when there are no hosts (an empty GeneralNames is invalid DER)", async () => {
    const path = ws.file("no-hosts.csr.pem", await buildCsr({ keys: keys(), org: "o", hosts: [] }));
    const { output } = ws.ok(["req", "-in", path, "-noout", "-verify", "-text"]);
    expect(output).not.toContain("Subject Alternative Name");
    expect((await parseCsr(ws.read("no-hosts.csr.pem"))).hosts).toEqual([]);
  });

  it("encodes an IPv4-mapped IPv6 host as the IPv4 address, as Go does", async () => {
    const path = ws.file("mapped.csr.pem", await buildCsr({ keys: keys(), org: "o", hosts: ["::ffff:10.1.2.3"] }));
    expect(ws.ok(["req", "-in", path, "-noout", "-text"]).output).toContain("IP Address:10.1.2.3\n");
  });

  it("reports a CSR whose signature does not match as invalid (and openssl agrees)", async () => {
    const csr = await buildCsr({ keys: keys(), org: "o", hosts: ["a.example.com"] });
    const der = Buffer.from(csr.replace(/-----[^-]+-----|\s/g, ""), "base64");
    der[der.length - 5] ^= 0x01; // inside the signature value
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    expect((await parseCsr(tampered)).valid).toBe(false);
    ws.file("tampered.csr.pem", tampered);
    // openssl 3.0 exits 0 here and only says so.
    expect(ws.run(["req", "-in", "tampered.csr.pem", "-noout", "-verify"]).output).toContain("verify failure");
  });

  it("parses a CSR made by openssl", async () => {
    const key = ws.file("openssl.key", ws.ok(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384"]).stdout);
    const csr = ws.ok([
      "req", "-new", "-key", key, "-subj", "/O=from-openssl",
      "-addext", "subjectAltName=critical,URI:spiffe://td/ns/x/sa/y,DNS:x.example.com,IP:192.0.2.1",
    ]).stdout;
    expect(await parseCsr(csr)).toMatchObject({
      org: "from-openssl",
      hosts: ["spiffe://td/ns/x/sa/y", "x.example.com", "192.0.2.1"],
      valid: true,
      spec: { algorithm: "ECDSA", curve: "P-384" },
    });
  });

  it.each([
    ["empty", "", "expected one PEM CERTIFICATE REQUEST, found 0"],
    ["not PEM", "garbage", "expected one PEM CERTIFICATE REQUEST, found 0"],
    ["a PEM that is not a CSR", "-----BEGIN CERTIFICATE REQUEST-----\nbm90IGEgQ1NS\n-----END CERTIFICATE REQUEST-----\n", "not a valid PKCS#10 certificate request (DER decoding failed)"],
    ["two CSRs", "two", "expected one PEM CERTIFICATE REQUEST, found 2"],
  ])("refuses %s with a PkiError saying why", async (_name, input, message) => {
    const csr = await buildCsr({ keys: keys(), org: "o", hosts: ["a"] });
    const pem = input === "two" ? csr.repeat(2) : input;
    await expect(parseCsr(pem)).rejects.toThrow(PkiError);
    await expect(parseCsr(pem)).rejects.toThrow(message);
  });

  it("reads the one CSR among other PEM blocks (only CERTIFICATE REQUEST blocks count)", async () => {
    const csr = await buildCsr({ keys: keys(), org: "o", hosts: ["a"] });
    await expect(parseCsr(`${csr}-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n`)).resolves.toMatchObject({ hosts: ["a"], org: "o" });
  });

  it("refuses a non-string with a PkiError", async () => {
    await expect(parseCsr(42 as unknown as string)).rejects.toThrow("CSR PEM must be a string");
  });
});

describe("CSR errors", () => {
  const keys = () => pairs.get("ECDSA-P256") as CryptoKeyPair;
  const settle = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);
  const csrWith = async (extensions: x509.Extension[]) =>
    encodePem(
      "CERTIFICATE REQUEST",
      (await x509.Pkcs10CertificateRequestGenerator.create({ extensions, signingAlgorithm: { name: "ECDSA", hash: "SHA-256" }, keys: keys() })).rawData,
    );

  it.each<[string, () => Partial<CsrRequest>, string]>([
    // WebCrypto refuses to sign with a public key: a library error, replaced by our words.
    ["a public key as the private one", () => ({ keys: { privateKey: keys().publicKey, publicKey: keys().publicKey } }), "CSR could not be created with the ECDSA key"],
    // Hosts come from a custom resource: a JSON array where a string belongs is refused by name, as it was.
    ["a host that is not text", () => ({ hosts: [["10.0.0.1"]] as unknown as string[] }), 'host ["10.0.0.1"] cannot be encoded in a SubjectAltName'],
  ])("buildCsr refuses %s with a PkiError saying so", async (_name, change, message) => {
    const error = await settle(buildCsr({ keys: keys(), org: "o", hosts: ["a.example.com"], ...change() }));
    expect(error).toBeInstanceOf(PkiError);
    expect((error as Error).message).toBe(message);
  });

  it.each<[string, () => Promise<string>, string]>([
    [
      "two SubjectAltName extensions",
      async () => csrWith([subjectAltNameExtension(["a.example.com"]), subjectAltNameExtension(["b.example.com"])]),
      "CSR has more than one SubjectAltName extension",
    ],
    [
      "a SubjectAltName extension that is no GeneralNames",
      async () => csrWith([new x509.Extension(id_ce_subjectAltName, true, new Uint8Array([0x04, 0x01, 0x41]))]),
      "CSR has a malformed extension (DER decoding failed)",
    ],
    [
      "a BasicConstraints extension that is no BasicConstraints",
      async () => csrWith([new x509.Extension(id_ce_basicConstraints, true, new Uint8Array([0x04, 0x01, 0x41]))]),
      "CSR has a malformed extension (DER decoding failed)",
    ],
  ])("parseCsr refuses %s with a PkiError that quotes nothing", async (_name, make, message) => {
    const pem = await make();
    const error = await settle(parseCsr(pem));
    expect(error).toBeInstanceOf(PkiError);
    expect((error as Error).message).toBe(message);
    expectNoKeyMaterial(error, pem);
  });

  it("reports a CSR whose signature does not even decode as invalid (the library throws instead of answering)", async () => {
    const pem = await buildCsr({ keys: keys(), org: "o", hosts: ["a.example.com"] });
    const asn = AsnConvert.parse(Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64"), CertificationRequest);
    asn.signature = new Uint8Array([1, 2, 3]).buffer; // no ECDSA-Sig-Value SEQUENCE
    const damaged = AsnConvert.serialize(asn);
    await expect(new x509.Pkcs10CertificateRequest(damaged).verify()).rejects.toThrow();
    expect(await parseCsr(encodePem("CERTIFICATE REQUEST", damaged))).toMatchObject({ valid: false, hosts: ["a.example.com"], org: "o" });
  });
});
