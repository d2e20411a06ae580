// Property-based hostile input against the real API server (issue 11): a few hundred generated specs,
// then a few hundred generated wrong issuer answers, each handled by the agent as in production. The
// pure spec reader and verifier get thousands of cases in unit tests (agent/spec.property.test.ts,
// shared/pki/verify.property.test.ts); here the question is what reaches the API and the cluster:
//   - no crash, and no hot loop (reconciles per object are bounded);
//   - every refusal has its specific reason in status, a Warning Event and the log, as one printable,
//     bounded line;
//   - a refused spec makes no key and no CertificateRequest; a rejected answer leaves the target secret
//     byte-identical (same data, same resourceVersion);
//   - no private-key material in any log, Event, status or CertificateRequest.
// Seeded (CERT_AGENT_PROPERTY_SEED replays a run); HOSTILE_SPECS / HOSTILE_ANSWERS change the counts.
import fc from "fast-check";
import { FAILURE_REASON_ANNOTATION, KEY_ALGORITHM_ANNOTATION, Reason } from "../agent/constants";
import { InvalidSpecError, readIntent } from "../agent/spec";
import { anyText, hostileIssuedCertificates } from "../agent/testing/hostile-specs";
import { decodeBytes, encodeBytes, ISTIOD_SPIFFE_ID } from "../shared/api/builders";
import type { CertificateRequest, IssuedCertificate } from "../shared/api/types";
import { PROPERTY_SEED, seeded } from "../shared/testing/property";
import { hasControlCharacters } from "../shared/text/bounded";
import { describeWithControlPlane, sharedKubeConfig } from "./controlplane/testenv";
import {
  Clients,
  clients,
  createNamespace,
  createSigningSecret,
  decodeSecret,
  getSecretOrUndefined,
  InProcessAgent,
  newIssuedCertificate,
  opensslCheckBundle,
  RootCa,
  startInProcessAgent,
  startIssuer,
  waitFor,
} from "./harness";
import { findKeyMaterial, KeyRecorder } from "./key-hygiene";
import { createRootCa, signIntermediate } from "./issuer/sign";
import type { ReferenceIssuer } from "./issuer/issuer";

jest.setTimeout(600_000);

const SPECS = Number(process.env.HOSTILE_SPECS ?? 200);
const ANSWERS = Number(process.env.HOSTILE_ANSWERS ?? 200);
/** Our own text around a bounded foreign text (the issuer's error, a host) stays within this. */
const MAX_MESSAGE = 2_048;
/** A hot loop reconciles an object many times a second; a healthy run a handful of times overall. */
const MAX_RECONCILES_PER_OBJECT = 20;
/** No retry within the test: a refused object must stay refused, with its reason, while we look. */
const NO_RETRY = ["--retry-base-delay", "1h", "--retry-max-delay", "1h", "--log-level", "debug", "--concurrency", "8"];

interface LogLine {
  level: string;
  message: string;
  name?: string;
  to?: string;
  reason?: string;
}

function parseLogs(agent: InProcessAgent): { raw: string[]; lines: LogLine[] } {
  const raw = agent.logs().split("\n").filter(Boolean);
  return { raw, lines: raw.map((l) => JSON.parse(l) as LogLine) };
}

/** What every text the agent publishes must be: one printable line, bounded. */
function expectPublishable(where: string, text: string | undefined): void {
  if (text === undefined) return;
  if (hasControlCharacters(text) || text.length > MAX_MESSAGE) {
    throw new Error(`${where} is not one printable bounded line (${text.length} characters): ${JSON.stringify(text.slice(0, 200))}`);
  }
}

describeWithControlPlane(seeded("generated hostile specs and issuer answers on the real API server"), () => {
  let c: Clients;
  let ns: string;
  let root: RootCa;
  let recorder: KeyRecorder;
  let agent: InProcessAgent;
  let issuer: ReferenceIssuer | undefined;
  const figures: Record<string, number> = {};

  beforeAll(async () => {
    c = clients(sharedKubeConfig());
    ns = await createNamespace(c, "hostile-gen");
    root = await createSigningSecret(c, ns);
    recorder = new KeyRecorder(c.kc, ns);
    await recorder.start();
    agent = await startInProcessAgent(c.kc, ["--namespace", ns, ...NO_RETRY]);
  });

  afterAll(async () => {
    await agent?.stop();
    await issuer?.stop();
    recorder?.stop();
    // The figures the README's Reliability table quotes.
    console.log(`hostile-generated figures: ${JSON.stringify(figures)}`);
  });

  async function eventsByObject(): Promise<Map<string, { type: string; reason: string; message: string }[]>> {
    const byObject = new Map<string, { type: string; reason: string; message: string }[]>();
    for (const e of (await c.core.listNamespacedEvent({ namespace: ns })).items) {
      const name = e.involvedObject.name ?? "";
      byObject.set(name, [...(byObject.get(name) ?? []), { type: e.type ?? "", reason: e.reason ?? "", message: e.message ?? "" }]);
    }
    return byObject;
  }

  /**
   * The Events by object, once every FAILED one has its Warning: the agent writes an Event after the status
   * it goes with and does not wait for it, so the last objects to settle may still have theirs in flight.
   */
  async function eventsOnceWarned(settled: Map<string, IssuedCertificate>): Promise<Map<string, { type: string; reason: string; message: string }[]>> {
    return waitFor("a Warning Event for each FAILED IssuedCertificate", async () => {
      const byObject = await eventsByObject();
      const unwarned = [...settled].filter(([name, ic]) => ic.status?.state === "FAILED" &&
        !(byObject.get(name) ?? []).some((e) => e.type === "Warning" && e.reason === ic.metadata.annotations?.[FAILURE_REASON_ANNOTATION]));
      return unwarned.length === 0 ? byObject : undefined;
    });
  }

  /** Waits until every named IssuedCertificate has settled at its generation (FINISHED or FAILED). */
  async function settle(names: string[], timeoutMs: number): Promise<Map<string, IssuedCertificate>> {
    const settled = (ic: IssuedCertificate | undefined) =>
      ic?.status?.observedGeneration === ic?.metadata.generation && (ic?.status?.state === "FINISHED" || ic?.status?.state === "FAILED");
    let all = new Map<string, IssuedCertificate>();
    try {
      return await waitFor(`${names.length} IssuedCertificates to settle`, async () => {
        all = new Map((await c.issued.list(ns)).items.map((i) => [i.metadata.name!, i]));
        return names.every((n) => settled(all.get(n))) ? all : undefined;
      }, timeoutMs, 500);
    } catch (err) {
      const stuck = names.filter((n) => !settled(all.get(n))).map((n) => ({ n, spec: all.get(n)?.spec, annotations: all.get(n)?.metadata.annotations, status: all.get(n)?.status }));
      throw new Error(`${String(err)}; not settled: ${JSON.stringify(stuck).slice(0, 4_000)}`, { cause: err });
    }
  }

  it(`${SPECS} generated specs: each refused with its reason and no key, or issued and verified`, async () => {
    issuer = await startIssuer(c.kc, ns);
    const missingNamespace = `${ns}-missing`;
    const created: IssuedCertificate[] = [];
    let refusedByApiServer = 0;
    for (let i = 0; i < SPECS; i++) {
      const name = `s-${i}`;
      const [ic] = fc.sample(hostileIssuedCertificates({ name, namespace: ns, target: { name: `t-${i}`, namespace: ns }, keyAlgorithms: ["ECDSA-P256"] }),
        { seed: PROPERTY_SEED + i, numRuns: 1 });
      // The generator's own targets (mostly names and namespaces of any text) would refuse nearly every
      // spec; and no suite may write into namespaces other suites use. So a generated target elsewhere
      // goes, by turns, to a namespace that does not exist (TargetNamespaceMissing), into ours under its
      // generated name (names shared by several specs collide), or to the spec's own default target.
      const target = ic.spec?.issuedCertificateSecret;
      if (target && target.namespace !== ns) {
        if (i % 5 === 0) target.namespace = missingNamespace;
        else if (i % 5 === 1) target.namespace = ns;
        else ic.spec!.issuedCertificateSecret = { name: `t-${i}`, namespace: ns };
      }
      // Key generation stays cheap: 9 in 10 specs without a key type get P-256 (RSA-4096 is the default).
      if (!ic.metadata.annotations?.[KEY_ALGORITHM_ANNOTATION] && i % 10 !== 0) {
        ic.metadata.annotations = { ...ic.metadata.annotations, [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" };
      }
      try {
        // What the API server stored (it may have replaced invalid UTF-8) is what the agent reads.
        created.push(await c.issued.create(ns, ic));
      } catch {
        refusedByApiServer++; // its schema said no: nothing reaches the agent
      }
    }
    const names = created.map((ic) => ic.metadata.name!);
    const started = Date.now();
    const settled = await settle(names, 300_000);
    figures.specsGenerated = SPECS;
    figures.specsRefusedByApiServer = refusedByApiServer;
    figures.specsSettleSeconds = Math.round((Date.now() - started) / 1000);

    const events = await eventsOnceWarned(settled);
    const { raw, lines } = parseLogs(agent);
    const outcomes: Record<string, number> = {};
    for (const stored of created) {
      const name = stored.metadata.name!;
      const ic = settled.get(name)!;
      const reason = ic.metadata.annotations?.[FAILURE_REASON_ANNOTATION];
      const outcome = ic.status?.state === "FINISHED" ? "FINISHED" : `FAILED ${reason}`;
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      expectPublishable(`status.error of ${name}`, ic.status?.error);
      for (const e of events.get(name) ?? []) expectPublishable(`Event ${e.reason} of ${name}`, e.message);

      let refusal: string | undefined;
      try {
        readIntent(stored);
      } catch (err) {
        if (!(err instanceof InvalidSpecError)) throw err;
        refusal = err.message;
      }
      if (refusal !== undefined) {
        // Refused up front: the reason everywhere, and nothing made.
        expect({ name, state: ic.status?.state, reason, error: ic.status?.error }).toEqual({ name, state: "FAILED", reason: Reason.InvalidSpec, error: `invalid spec: ${refusal}` });
        expect((events.get(name) ?? []).some((e) => e.type === "Warning" && e.reason === Reason.InvalidSpec && e.message === ic.status?.error)).toBe(true);
        expect(lines.some((l) => l.message === "transition" && l.name === name && l.to === "FAILED" && l.reason === Reason.InvalidSpec && l.level === "warn")).toBe(true);
        expect(await c.requests.get(ns, name)).toBeUndefined();
        expect(await getSecretOrUndefined(c, ns, name)).toBeUndefined();
      } else if (ic.status?.state === "FINISHED") {
        const target = stored.spec!.issuedCertificateSecret!;
        const data = decodeSecret((await getSecretOrUndefined(c, target.namespace!, target.name!))!);
        expect(opensslCheckBundle(data)).toEqual({ verify: "ca-cert.pem: OK", keyMatches: true });
      } else {
        // A valid spec refused for where its target is: a namespace that does not exist, or a name
        // another IssuedCertificate's target or staged key holds.
        expect([Reason.TargetNamespaceMissing, Reason.TargetSecretCollision, Reason.TargetSecretConflict]).toContain(reason);
        expect((events.get(name) ?? []).some((e) => e.type === "Warning" && e.reason === reason)).toBe(true);
      }
    }
    for (const line of raw) if (line.length > 4 * MAX_MESSAGE) throw new Error(`a ${line.length}-character log line: ${line.slice(0, 200)}`);
    const reconciles = new Map<string, number>();
    for (const l of lines) if (l.message === "reconciled" && l.name) reconciles.set(l.name, (reconciles.get(l.name) ?? 0) + 1);
    figures.specsMaxReconcilesPerObject = Math.max(...reconciles.values());
    expect(figures.specsMaxReconcilesPerObject).toBeLessThanOrEqual(MAX_RECONCILES_PER_OBJECT);
    console.log(`hostile-generated spec outcomes: ${JSON.stringify(outcomes)}`);
    // The generators reach every side: refused, issued, and refused for its target.
    expect(outcomes[`FAILED ${Reason.InvalidSpec}`]).toBeGreaterThan(SPECS / 10);
    expect(outcomes.FINISHED).toBeGreaterThan(SPECS / 10);
  });

  it(`${ANSWERS} generated wrong answers of the issuer: each refused with its reason, the target byte-identical`, async () => {
    // Every object first gets a good certificate from the reference issuer...
    issuer ??= await startIssuer(c.kc, ns);
    const names = Array.from({ length: ANSWERS }, (_, i) => `a-${i}`);
    for (const [i, name] of names.entries()) {
      await c.issued.create(ns, newIssuedCertificate(ns, name, { annotations: { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" }, target: { name: `ta-${i}`, namespace: ns }, ttlDays: 30 }));
    }
    await settle(names, 300_000);
    const before = new Map<string, Record<string, unknown>>();
    for (const [i, name] of names.entries()) {
      const ic = (await c.issued.get(ns, name))!;
      expect(ic.status?.state).toBe("FINISHED");
      const secret = (await getSecretOrUndefined(c, ns, `ta-${i}`))!;
      before.set(name, { data: secret.data, resourceVersion: secret.metadata?.resourceVersion });
    }
    await issuer.stop();
    issuer = undefined;

    // ...then a spec change asks for a new one, and the test answers in the issuer's place, wrongly.
    for (const name of names) {
      const ic = (await c.issued.get(ns, name))!;
      ic.spec!.certOptions = { ...ic.spec!.certOptions, ttlDays: 31 };
      await c.issued.replace(ic);
    }
    const requests = await waitFor("a new CertificateRequest for every object", async () => {
      const items = (await c.requests.list(ns)).items.filter((r) => names.includes(r.metadata.name!));
      const fresh = items.filter((r) => r.status?.observedGeneration !== r.metadata.generation || r.status?.state === undefined);
      return fresh.length === names.length ? fresh : undefined;
    }, 300_000, 500);

    const foreign = await createRootCa({ commonName: "someone else's root", spec: { algorithm: "ECDSA", curve: "P-256" } });
    const kinds: Record<string, number> = {};
    const started = Date.now();
    for (const [i, cr] of requests.entries()) {
      const answer = await wrongAnswer(cr, i, root, foreign);
      kinds[answer.kind] = (kinds[answer.kind] ?? 0) + 1;
      await c.requests.replaceStatus({ ...cr, status: { observedGeneration: cr.metadata.generation, ...answer.status } });
    }
    const settled = await settle(names, 300_000);
    figures.answersGenerated = ANSWERS;
    figures.answersSettleSeconds = Math.round((Date.now() - started) / 1000);

    const events = await eventsOnceWarned(settled);
    const { raw, lines } = parseLogs(agent);
    const reasons: Record<string, number> = {};
    for (const [i, name] of names.entries()) {
      const ic = settled.get(name)!;
      const reason = ic.metadata.annotations?.[FAILURE_REASON_ANNOTATION] ?? "";
      reasons[reason] = (reasons[reason] ?? 0) + 1;
      expect({ name, state: ic.status?.state }).toEqual({ name, state: "FAILED" });
      expect([Reason.IssuerFailed, Reason.CertificateRejected]).toContain(reason);
      expect(ic.status?.error).toMatch(/\S/);
      expectPublishable(`status.error of ${name}`, ic.status?.error);
      for (const e of events.get(name) ?? []) expectPublishable(`Event ${e.reason} of ${name}`, e.message);
      expect((events.get(name) ?? []).some((e) => e.type === "Warning" && e.reason === reason)).toBe(true);
      expect(lines.some((l) => l.message === "transition" && l.name === name && l.to === "FAILED" && l.reason === reason)).toBe(true);
      const secret = (await getSecretOrUndefined(c, ns, `ta-${i}`))!;
      expect({ name, data: secret.data, resourceVersion: secret.metadata?.resourceVersion }).toEqual({ name, ...before.get(name) });
    }
    for (const line of raw) if (line.length > 4 * MAX_MESSAGE) throw new Error(`a ${line.length}-character log line: ${line.slice(0, 200)}`);
    const reconciles = new Map<string, number>();
    for (const l of lines) if (l.message === "reconciled" && l.name?.startsWith("a-")) reconciles.set(l.name, (reconciles.get(l.name) ?? 0) + 1);
    figures.answersMaxReconcilesPerObject = Math.max(...reconciles.values());
    expect(figures.answersMaxReconcilesPerObject).toBeLessThanOrEqual(MAX_RECONCILES_PER_OBJECT);
    console.log(`hostile-generated answers: kinds ${JSON.stringify(kinds)}, reasons ${JSON.stringify(reasons)}`);
  });

  it("no private-key material in any log, Event, status or CertificateRequest of the run", async () => {
    for (const s of (await c.core.listNamespacedSecret({ namespace: ns })).items) recorder.add(s);
    figures.keysRecorded = recorder.keys.size;
    expect(recorder.keys.size).toBeGreaterThan(ANSWERS);
    const texts: Record<string, string> = { "agent log": agent.logs() };
    for (const e of (await c.core.listNamespacedEvent({ namespace: ns })).items) texts[`Event ${e.metadata.name}`] = e.message ?? "";
    for (const ic of (await c.issued.list(ns)).items) texts[`status of ${ic.metadata.name}`] = JSON.stringify(ic.status ?? {});
    for (const cr of (await c.requests.list(ns)).items) texts[`CertificateRequest ${cr.metadata.name}`] = JSON.stringify(cr);
    expect(await findKeyMaterial(texts, recorder.keys)).toEqual([]);
  });
});

interface WrongAnswer {
  kind: string;
  status: Omit<NonNullable<CertificateRequest["status"]>, "observedGeneration">;
}

/**
 * A generated wrong answer to one request: the right certificate with one DER byte changed or cut
 * short, any text or bytes, the right certificate with a wrong root, a certificate signed by another
 * root, one for another key, or FAILED with any (also huge) error text. Never a right answer: each
 * must be refused.
 */
async function wrongAnswer(cr: CertificateRequest, i: number, root: RootCa, foreign: RootCa): Promise<WrongAnswer> {
  const csrPem = decodeBytes(cr.spec?.certificateSigningRequest) ?? "";
  const sign = (misbehave: "none" | "wrong-key", by: RootCa = root) =>
    signIntermediate({ csrPem, hosts: [ISTIOD_SPIFFE_ID], ttlDays: 31, root: by, now: new Date(), misbehave });
  const rootCa = encodeBytes(root.certPem);
  const [choice] = fc.sample(fc.record({
    kind: fc.constantFrom("flip", "truncate", "text", "bytes", "wrong-root", "foreign-signed", "wrong-key", "failed", "failed-huge", "empty"),
    at: fc.nat(),
    xor: fc.integer({ min: 1, max: 255 }),
    text: anyText,
    bytes: fc.uint8Array({ maxLength: 4_096 }),
    hugeBytes: fc.integer({ min: 100_000, max: 300_000 }),
  }), { seed: PROPERTY_SEED + 100_000 + i, numRuns: 1 });
  switch (choice.kind) {
    case "flip": {
      const bytes = Buffer.from((await sign("none")).replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, ""), "base64");
      bytes[choice.at % bytes.length] ^= choice.xor;
      return { kind: "flip", status: { state: "FINISHED", signedCertificate: encodeBytes(toPem(bytes)), signingRootCa: rootCa } };
    }
    case "truncate": {
      const pem = await sign("none");
      return { kind: "truncate", status: { state: "FINISHED", signedCertificate: encodeBytes(pem.slice(0, choice.at % (pem.length - 30))), signingRootCa: rootCa } };
    }
    case "text":
      return { kind: "text", status: { state: "FINISHED", signedCertificate: encodeBytes(choice.text || "x"), signingRootCa: rootCa } };
    case "bytes":
      return { kind: "bytes", status: { state: "FINISHED", signedCertificate: Buffer.from(choice.bytes.length ? choice.bytes : [0]).toString("base64"), signingRootCa: rootCa } };
    case "wrong-root": {
      const pem = await sign("none");
      const roots = [foreign.certPem, choice.text || "y", pem];
      return { kind: "wrong-root", status: { state: "FINISHED", signedCertificate: encodeBytes(pem), signingRootCa: encodeBytes(roots[choice.at % roots.length]) } };
    }
    case "foreign-signed":
      return { kind: "foreign-signed", status: { state: "FINISHED", signedCertificate: encodeBytes(await sign("none", foreign)), signingRootCa: rootCa } };
    case "wrong-key":
      return { kind: "wrong-key", status: { state: "FINISHED", signedCertificate: encodeBytes(await sign("wrong-key")), signingRootCa: rootCa } };
    case "failed":
      return { kind: "failed", status: { state: "FAILED", error: choice.text || "z" } };
    case "failed-huge":
      return { kind: "failed-huge", status: { state: "FAILED", error: `\u0000\u001b[31m${"x\u0000\u001b".repeat(choice.hugeBytes / 3)}` } };
    default:
      return { kind: "empty", status: { state: "FINISHED", signingRootCa: rootCa } };
  }
}

function toPem(der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}
