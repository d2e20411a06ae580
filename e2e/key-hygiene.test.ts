// The key-hygiene check itself must find what it is looking for, or the reliability suites prove nothing.
import { buildCsr, exportPrivateKeyPem, generateKeyPair } from "../shared/pki";
import { exportSpki } from "../shared/pki/spki";
import { findKeyMaterial, FRAGMENT_CHARS } from "./key-hygiene";

describe("findKeyMaterial", () => {
  let pem: string;
  let body: string;
  beforeAll(async () => {
    pem = await exportPrivateKeyPem((await generateKeyPair({ algorithm: "ECDSA", curve: "P-256" })).privateKey);
    body = pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
  });

  it("finds nothing in text without key material", async () => {
    expect(await findKeyMaterial({ log: '{"message":"transition","to":"FINISHED"} MIIB' }, [pem])).toEqual([]);
  });

  it.each<[string, (pem: string, body: string) => string]>([
    ["the whole PEM", (p) => p],
    ["a fragment of the PEM body", (_p, b) => `error: ${b.slice(30, 30 + FRAGMENT_CHARS)} trailing`],
    ["a fragment of the base64 of the PEM text (Secret data)", (p) => Buffer.from(p).toString("base64").slice(41, 41 + FRAGMENT_CHARS)],
    ["a fragment of the DER in hex", (_p, b) => Buffer.from(b, "base64").toString("hex").slice(10, 10 + 2 * FRAGMENT_CHARS)],
  ])("finds %s", async (_name, leak) => {
    const leaks = await findKeyMaterial({ clean: "nothing here", dirty: `prefix ${leak(pem, body)} suffix` }, [pem]);
    expect([...new Set(leaks.map((l) => l.where))]).toEqual(["dirty"]);
    expect(leaks[0].what).not.toContain(body.slice(0, 10));
  });

  it.each(["ECDSA-P256", "RSA-2048"])("does not report the public key of a %s key, which the CSR and the certificate rightly carry", async (type) => {
    const keys = await generateKeyPair(type === "RSA-2048" ? { algorithm: "RSA", bits: 2048 } : { algorithm: "ECDSA", curve: "P-256" });
    const key = await exportPrivateKeyPem(keys.privateKey);
    const spki = Buffer.from(await exportSpki(keys.publicKey));
    const texts: Record<string, string> = { spki: spki.toString("base64"), hex: spki.toString("hex") };
    // CSRs whose public key starts at every DER offset modulo 3 and every place in a PEM line (the
    // subject's length moves it), each in a Secret's data at each alignment: the key type's algorithm
    // identifier, in the key and the CSR alike, must not count, whatever the base64 alignment.
    for (const org of Array.from({ length: 48 }, (_, n) => "m".repeat(n + 1))) {
      const csrPem = await buildCsr({ keys, hosts: ["spiffe://cluster.local/ns/istio-system/sa/istiod"], org });
      texts[`csr ${org}`] = csrPem;
      for (const pad of ["", " ", "  "]) texts[`csr ${org} in data, ${pad.length}`] = Buffer.from(pad + csrPem).toString("base64");
    }
    expect(await findKeyMaterial(texts, [key])).toEqual([]);
    // ...while the same texts with the key's PEM body in them are reported.
    const keyBody = key.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
    expect((await findKeyMaterial({ ...texts, leak: keyBody }, [key])).map((l) => l.where)).toEqual(["leak"]);
  });

  it("does not report a fragment shorter than FRAGMENT_CHARS", async () => {
    expect(await findKeyMaterial({ log: body.slice(30, 30 + FRAGMENT_CHARS - 1) }, [pem])).toEqual([]);
  });
});
