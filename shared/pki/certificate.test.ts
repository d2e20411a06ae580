// Reading certificates as they come from an issuer or a target secret: exactly what is accepted, and
// the exact Malformed message for everything else (these messages reach status and Events).
import { createRootCa, RootCa } from "../../e2e/issuer/sign";
import { describeCertificate, PARSED_CERTIFICATES_KEPT, parseCertificateBundlePem, parseSingleCertificatePem } from "./certificate";
import { CertificateVerificationError } from "./errors";
import { encodePem } from "./pem";

let a: RootCa;
let b: RootCa;
beforeAll(async () => {
  a = await createRootCa({ spec: { algorithm: "ECDSA", curve: "P-256" }, commonName: "root a" });
  b = await createRootCa({ spec: { algorithm: "ECDSA", curve: "P-256" }, commonName: "root b" });
});

async function refusal(p: Promise<unknown>): Promise<[string, string]> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(CertificateVerificationError);
    return [(err as CertificateVerificationError).reason, (err as Error).message];
  }
  throw new Error("accepted");
}

describe("parseSingleCertificatePem", () => {
  it("reads one certificate, with surrounding whitespace", async () => {
    const parsed = await parseSingleCertificatePem(`\n${a.certPem}\n\n`);
    expect(parsed.summary.subject).toBe("CN=root a");
    expect((await describeCertificate(a.certPem)).subject).toBe("CN=root a");
  });

  it.each<[string, () => string, string]>([
    ["empty", () => "", "ca-cert.pem: empty"],
    ["only whitespace", () => " \n\t", "ca-cert.pem: empty"],
    ["text without a PEM block", () => "not a certificate", "ca-cert.pem: no PEM block found"],
    ["a private key", () => a.keyPem, "ca-cert.pem: contains PEM blocks other than CERTIFICATE"],
    ["a certificate and its key", () => a.certPem + a.keyPem, "ca-cert.pem: contains PEM blocks other than CERTIFICATE"],
    ["two certificates", () => a.certPem + b.certPem, "ca-cert.pem: expected exactly one certificate, found 2"],
    ["a certificate with text after it", () => `${a.certPem}trailing words\n`, "ca-cert.pem: contains text outside the PEM block"],
    ["a CERTIFICATE block that is not X.509", () => encodePem("CERTIFICATE", new Uint8Array([1, 2, 3, 4])), "ca-cert.pem: not a parseable X.509 certificate"],
    ["a block whose end label differs", () => a.certPem.replace("END CERTIFICATE", "END X509 CRL"), 'ca-cert.pem: PEM block "CERTIFICATE" ends with a different label'],
  ])("refuses %s as Malformed, naming the field", async (_name, pem, message) => {
    expect(await refusal(parseSingleCertificatePem(pem(), "ca-cert.pem"))).toEqual(["Malformed", `Malformed: ${message}`]);
  });

  it("names the input 'certificate' by default", async () => {
    expect((await refusal(parseSingleCertificatePem("")))[1]).toBe("Malformed: certificate: empty");
  });
});

describe("parseCertificateBundlePem (root-cert.pem may hold several roots)", () => {
  it("reads every CERTIFICATE block in order and skips other blocks", async () => {
    const parsed = await parseCertificateBundlePem(a.certPem + a.keyPem + b.certPem, "root-cert.pem");
    expect(parsed.map((p) => p.summary.subject)).toEqual(["CN=root a", "CN=root b"]);
  });

  it.each<[string, () => string, string]>([
    ["empty", () => "", "root-cert.pem: empty"],
    ["only whitespace", () => "\n \n", "root-cert.pem: empty"],
    ["only a key", () => a.keyPem, "root-cert.pem: no PEM CERTIFICATE block found"],
    ["text without a block", () => "hello", "root-cert.pem: no PEM CERTIFICATE block found"],
    ["a broken block", () => a.certPem.replace("END CERTIFICATE", "END X509 CRL"), 'root-cert.pem: PEM block "CERTIFICATE" ends with a different label'],
    ["a CERTIFICATE block that is not X.509", () => encodePem("CERTIFICATE", new Uint8Array([9, 9, 9, 9])), "root-cert.pem: not a parseable X.509 certificate"],
  ])("refuses %s", async (_name, pem, message) => {
    expect(await refusal(parseCertificateBundlePem(pem(), "root-cert.pem"))).toEqual(["Malformed", `Malformed: ${message}`]);
  });
});

describe("parsed certificates are kept for a while (PARSED_CERTIFICATES_KEPT)", () => {
  it("the same bytes give the same parse, also through another PEM wrapping; other bytes their own", async () => {
    const first = await parseSingleCertificatePem(a.certPem);
    expect(await parseSingleCertificatePem(`\n${a.certPem}`)).toBe(first);
    expect((await parseCertificateBundlePem(a.certPem + b.certPem, "root-cert.pem"))[0]).toBe(first);
    expect(await parseSingleCertificatePem(b.certPem)).not.toBe(first);
  });

  it("a failure is not kept, and its message names the field of each call", async () => {
    const bad = encodePem("CERTIFICATE", new Uint8Array([9, 9, 9]));
    expect((await refusal(parseSingleCertificatePem(bad, "ca-cert.pem")))[1]).toBe("Malformed: ca-cert.pem: not a parseable X.509 certificate");
    expect((await refusal(parseSingleCertificatePem(bad, "root-cert.pem")))[1]).toBe("Malformed: root-cert.pem: not a parseable X.509 certificate");
  });

  it("the least recently used goes first once more are kept", async () => {
    const parsedA = await parseSingleCertificatePem(a.certPem);
    const parsedB = await parseSingleCertificatePem(b.certPem);
    const others = await Promise.all(Array.from({ length: PARSED_CERTIFICATES_KEPT }, () => createRootCa({ spec: { algorithm: "ECDSA", curve: "P-256" } })));
    for (const [i, other] of others.entries()) {
      if (i === PARSED_CERTIFICATES_KEPT / 2) expect(await parseSingleCertificatePem(a.certPem)).toBe(parsedA); // used again: kept longer
      await parseSingleCertificatePem(other.certPem);
    }
    expect(await parseSingleCertificatePem(a.certPem)).toBe(parsedA);
    const again = await parseSingleCertificatePem(b.certPem);
    expect(again).not.toBe(parsedB);
    expect(again.summary).toEqual(parsedB.summary);
  });
});
