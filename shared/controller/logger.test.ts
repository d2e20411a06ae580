// createLogger: one JSON line per record, and no PEM block (key material) ever reaches the stream,
// wherever it sits in the record. Real keys from node:crypto, so the bodies are what a leak would be.
import { generateKeyPairSync } from "node:crypto";
import { Writable } from "node:stream";
import { createLogger, type LogLevel } from "./logger";

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const ec = generateKeyPairSync("ec", { namedCurve: "P-256" });
const PKCS8_PEM = (rsa.privateKey.export({ type: "pkcs8", format: "pem" }) as string).trimEnd(); // BEGIN PRIVATE KEY
const SEC1_PEM = (ec.privateKey.export({ type: "sec1", format: "pem" }) as string).trimEnd(); // BEGIN EC PRIVATE KEY
const TRUNCATED_PEM = PKCS8_PEM.slice(0, 200); // no END line: a message cut short

/** The base64 lines of a PEM block: none of them may appear in the output. */
function bodyLines(pem: string): string[] {
  return pem.split("\n").filter((l) => l !== "" && !l.startsWith("-----"));
}
const SECRET_FRAGMENTS = [...bodyLines(PKCS8_PEM), ...bodyLines(SEC1_PEM)].filter((l) => l.length >= 16);

interface Capture {
  log: ReturnType<typeof createLogger>;
  /** Resolves once `n` lines were written: the raw text and the parsed lines. */
  lines(n: number): Promise<{ raw: string; records: Record<string, unknown>[] }>;
}

function capture(level: LogLevel = "debug"): Capture {
  let raw = "";
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      raw += chunk.toString("utf8");
      done();
    },
  });
  const log = createLogger(level, stream);
  return {
    log,
    async lines(n) {
      const deadline = Date.now() + 5000;
      while (raw.split("\n").filter(Boolean).length < n && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      const lines = raw.split("\n").filter(Boolean);
      expect(lines).toHaveLength(n);
      expect(raw.endsWith("\n")).toBe(true);
      return { raw, records: lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
    },
  };
}

function expectNoKeyMaterial(raw: string): void {
  expect(raw).not.toContain("BEGIN");
  expect(raw).not.toContain("END PRIVATE");
  expect(raw).not.toContain("END EC PRIVATE");
  for (const fragment of SECRET_FRAGMENTS) expect(raw).not.toContain(fragment);
  // The truncated block's body is a prefix of the RSA key's first line.
  expect(raw).not.toContain(bodyLines(TRUNCATED_PEM)[0]!.slice(0, 32));
}

describe("createLogger", () => {
  it("writes one JSON line per record with ordinary text unchanged", async () => {
    const c = capture();
    c.log.info("transition", { namespace: "gloo-mesh", name: "istiod", from: "PENDING", to: "REQUESTED", generation: 3 });
    c.log.warn("multi\nline message", { detail: "keeps -----dashes----- and BEGIN words" });
    c.log.debug("third");
    const { records } = await c.lines(3);
    expect(records[0]).toMatchObject({ level: "info", message: "transition", namespace: "gloo-mesh", name: "istiod", from: "PENDING", to: "REQUESTED", generation: 3 });
    expect(typeof records[0]!.timestamp).toBe("string");
    expect(records[1]).toMatchObject({ level: "warn", message: "multi\nline message", detail: "keeps -----dashes----- and BEGIN words" });
    expect(records[2]).toMatchObject({ level: "debug", message: "third" });
  });

  it("drops records below its level", async () => {
    const c = capture("warn");
    c.log.info("not written");
    c.log.warn("written");
    const { records } = await c.lines(1);
    expect(records[0]!.message).toBe("written");
  });

  it.each([
    ["a PRIVATE KEY block (PKCS#8)", PKCS8_PEM],
    ["an EC PRIVATE KEY block (SEC1)", SEC1_PEM],
    ["a truncated block with no END line", TRUNCATED_PEM],
  ])("never writes %s, in the message or a field", async (_what, pem) => {
    const c = capture();
    c.log.error(`could not parse key: ${pem}`);
    c.log.warn("import failed", { detail: `input was ${pem}`, pem });
    const { raw, records } = await c.lines(2);
    expectNoKeyMaterial(raw);
    expect(records[0]!.message).toBe("could not parse key: [redacted PEM]");
    expect(records[1]).toMatchObject({ message: "import failed", detail: "input was [redacted PEM]", pem: "[redacted PEM]" });
  });

  it("keeps the text around a complete block", async () => {
    const c = capture();
    c.log.info(`before ${SEC1_PEM} after`);
    const { raw, records } = await c.lines(1);
    expectNoKeyMaterial(raw);
    expect(records[0]!.message).toBe("before [redacted PEM] after");
  });

  it("writes an Error field as its redacted message (it was written as {})", async () => {
    const c = capture();
    c.log.warn("could not record event", { error: new Error(`parser said: ${PKCS8_PEM}`) });
    const { raw, records } = await c.lines(1);
    expectNoKeyMaterial(raw);
    expect(records[0]!.error).toEqual({ name: "Error", message: "parser said: [redacted PEM]" });
  });

  it("redacts an Error's own fields and its cause (an own field was written unredacted)", async () => {
    const c = capture();
    const err = Object.assign(new Error("HTTP-Code: 422", { cause: new Error(`inner ${SEC1_PEM}`) }), { code: 422, body: `{"message":"${PKCS8_PEM}"}` });
    c.log.warn("write failed", { error: err });
    const { raw, records } = await c.lines(1);
    expectNoKeyMaterial(raw);
    expect(records[0]!.error).toEqual({
      name: "Error",
      message: "HTTP-Code: 422",
      code: 422,
      body: '{"message":"[redacted PEM]"}',
      cause: { name: "Error", message: "inner [redacted PEM]" },
    });
  });

  it("writes the redacted message of log.error(err) (no message was written at all)", async () => {
    const c = capture();
    c.log.error(new Error(`bad key ${PKCS8_PEM}`));
    const { raw, records } = await c.lines(1);
    expectNoKeyMaterial(raw);
    expect(records[0]).toMatchObject({ level: "error", message: "bad key [redacted PEM]" });
  });

  it("redacts the message and stack of an Error passed as the metadata", async () => {
    const c = capture();
    c.log.warn("import failed:", new Error(SEC1_PEM));
    const { raw, records } = await c.lines(1);
    expectNoKeyMaterial(raw);
    expect(records[0]!.message).toBe("import failed: [redacted PEM]");
    expect(records[0]!.stack).toMatch(/^Error: \[redacted PEM\]\n/);
  });

  it("redacts PEM in nested objects and arrays (they were written unredacted)", async () => {
    const c = capture();
    c.log.info("secret summary", {
      secret: { metadata: { name: "cacerts" }, stringData: { "ca-key.pem": PKCS8_PEM, "ca-cert.pem": "not a key" } },
      chain: [SEC1_PEM, { deeper: [[TRUNCATED_PEM]] }],
    });
    const { raw, records } = await c.lines(1);
    expectNoKeyMaterial(raw);
    expect(records[0]).toMatchObject({
      secret: { metadata: { name: "cacerts" }, stringData: { "ca-key.pem": "[redacted PEM]", "ca-cert.pem": "not a key" } },
      chain: ["[redacted PEM]", { deeper: [["[redacted PEM]"]] }],
    });
  });

  it("leaves the caller's objects and Errors unmodified", async () => {
    const c = capture();
    const fields = { nested: { pem: PKCS8_PEM } };
    const err = new Error(`bad ${SEC1_PEM}`);
    c.log.info("x", fields);
    c.log.error(err);
    await c.lines(2);
    expect(fields.nested.pem).toBe(PKCS8_PEM);
    expect(err.message).toBe(`bad ${SEC1_PEM}`);
  });

  it("writes cycles and very deep values without walking forever or leaking", async () => {
    const c = capture();
    const cyclic: Record<string, unknown> = { pem: SEC1_PEM };
    cyclic.self = cyclic;
    let deep: unknown = PKCS8_PEM;
    for (let i = 0; i < 50; i++) deep = { d: deep };
    c.log.info("odd shapes", { cyclic, deep, when: new Date(0) });
    const { raw, records } = await c.lines(1);
    expectNoKeyMaterial(raw);
    expect(records[0]).toMatchObject({ cyclic: { pem: "[redacted PEM]", self: "[Circular]" }, when: "1970-01-01T00:00:00.000Z" });
  });
});
