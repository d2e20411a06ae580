// The key-hygiene check itself must find what it is looking for, or the reliability suites prove nothing.
import { exportPrivateKeyPem, generateKeyPair } from "../shared/pki";
import { findKeyMaterial, FRAGMENT_CHARS } from "./key-hygiene";

describe("findKeyMaterial", () => {
  let pem: string;
  let body: string;
  beforeAll(async () => {
    pem = await exportPrivateKeyPem((await generateKeyPair({ algorithm: "ECDSA", curve: "P-256" })).privateKey);
    body = pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
  });

  it("finds nothing in text without key material", () => {
    expect(findKeyMaterial({ log: '{"message":"transition","to":"FINISHED"} MIIB' }, [pem])).toEqual([]);
  });

  it.each<[string, (pem: string, body: string) => string]>([
    ["the whole PEM", (p) => p],
    ["a fragment of the PEM body", (_p, b) => `error: ${b.slice(30, 30 + FRAGMENT_CHARS)} trailing`],
    ["a fragment of the base64 of the PEM text (Secret data)", (p) => Buffer.from(p).toString("base64").slice(41, 41 + FRAGMENT_CHARS)],
    ["a fragment of the DER in hex", (_p, b) => Buffer.from(b, "base64").toString("hex").slice(10, 10 + 2 * FRAGMENT_CHARS)],
  ])("finds %s", (_name, leak) => {
    const leaks = findKeyMaterial({ clean: "nothing here", dirty: `prefix ${leak(pem, body)} suffix` }, [pem]);
    expect([...new Set(leaks.map((l) => l.where))]).toEqual(["dirty"]);
    expect(leaks[0].what).not.toContain(body.slice(0, 10));
  });

  it("does not report a fragment shorter than FRAGMENT_CHARS", () => {
    expect(findKeyMaterial({ log: body.slice(30, 30 + FRAGMENT_CHARS - 1) }, [pem])).toEqual([]);
  });
});
