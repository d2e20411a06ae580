// Issuer faults (issue 11), on the shared control plane: an issuer that answers with each hostile
// payload, answers twice, answers for an old generation of the request, is SIGKILLed while its
// requests are PENDING (a real process), or takes half an hour (the agent's and the issuer's clocks
// shifted by the test). What must hold each time: the target secret is only ever written with a
// verified certificate (else left byte-identical), a failure says exactly what went wrong in status,
// a Warning Event and the log, bounded and printable, the agent never makes a second key or request
// for one issuance, and no private-key material appears in anything it publishes.
import { V1Secret } from "@kubernetes/client-node";
import { randomBytes } from "node:crypto";
import { FAILURE_REASON_ANNOTATION, KEY_ALGORITHM_ANNOTATION, KEY_FINGERPRINT_ANNOTATION } from "../agent/constants";
import type { CertificateStatus } from "../agent/certificate-status";
import { IssuedCertificate } from "../shared/api/types";
import { Clock, systemClock } from "../shared/controller/clock";
import { ObjectClient } from "../shared/kube/api";
import { importPrivateKeyPem, publicKeyFingerprint } from "../shared/pki";
import { hasControlCharacters, MAX_FOREIGN_TEXT } from "../shared/text/bounded";
import { describeWithControlPlane, sharedKubeConfig, sharedKubeconfigPath, sharedKubectl } from "./controlplane/testenv";
import {
  answerRequest,
  Clients,
  clients,
  createNamespace,
  createSigningSecret,
  decodeSecret,
  fetchText,
  getSecretOrUndefined,
  InProcessAgent,
  newIssuedCertificate,
  opensslCheckBundle,
  publishedTexts,
  RootCa,
  spawnIssuer,
  startInProcessAgent,
  startIssuer,
  SecretVersions,
  waitFor,
  waitForEvent,
  waitForState,
} from "./harness";
import { findKeyMaterial, KeyRecorder } from "./key-hygiene";
import { MISBEHAVIOURS, Misbehaviour } from "./issuer/sign";

jest.setTimeout(180_000);

const P256 = { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" };
const OK = { verify: "ca-cert.pem: OK", keyMatches: true };
/** A failure message is the agent's own words plus at most MAX_FOREIGN_TEXT of the issuer's. */
const MAX_MESSAGE = MAX_FOREIGN_TEXT + 200;

type LogLine = Record<string, unknown> & { message: string };
const logLines = (agent: InProcessAgent): LogLine[] => agent.logs().split("\n").filter(Boolean).map((l) => JSON.parse(l) as LogLine);
/** The agent's reconcile passes over one object (one debug line each). */
const passes = (agent: InProcessAgent, name: string) => logLines(agent).filter((l) => l.message === "reconciled" && l.name === name).length;

async function eventsOf(c: Clients, namespace: string, name: string) {
  const list = await c.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
  return list.items.map((e) => ({ type: e.type ?? "", reason: e.reason ?? "", message: e.message ?? "", count: e.count ?? 1 }));
}

async function fingerprintOfKeyPem(pem: string): Promise<string> {
  return publicKeyFingerprint((await importPrivateKeyPem(pem)).publicKey);
}

/** The CertificateRequests that belong to the IssuedCertificate (by owner uid): there must be one. */
async function requestsOf(c: Clients, namespace: string, name: string) {
  const ic = (await c.issued.get(namespace, name))!;
  return (await c.requests.list(namespace)).items.filter((r) => r.metadata.ownerReferences?.some((o) => o.uid === ic.metadata.uid));
}

async function expectNoKeyMaterial(c: Clients, namespace: string, agent: InProcessAgent, keys: KeyRecorder): Promise<void> {
  // Keys still present at the end count too (the watch saw them written, this is a second look).
  for (const s of (await c.core.listNamespacedSecret({ namespace })).items) keys.add(s);
  expect(keys.keys.size).toBeGreaterThan(0);
  expect(await findKeyMaterial(await publishedTexts(c, namespace, agent.logs()), keys.keys)).toEqual([]);
}

// --------------------------------------------------------------------------------------------------
// Hostile answers. e2e/agent.e2e.test.ts ("refuses every bad answer of the issuer and keeps the good
// secret") already proves each Misbehaviour is refused with its reason and the target's data kept;
// here each answer is also followed to the Warning Event and the log line, the target must not even
// have been rewritten (same resourceVersion), and two payloads are added that no signer produces: a
// FAILED whose error is 500 KB with NUL and ESC, and a signedCertificate of 600 KB of random bytes.
// The test plays the issuer, so any status can be written.
// --------------------------------------------------------------------------------------------------

const NUL = String.fromCharCode(0);
const ESC = String.fromCharCode(27);
/** 500 KB: an issuer dumping a stack trace with terminal colours and binary junk into status.error. */
const HUGE_ERROR = `signer crashed: ${ESC}[31mpanic${ESC}[0m ${NUL}${NUL}` + `${ESC}[2J${NUL}garbage `.repeat(Math.ceil(500 * 1024 / 13));

interface HostileCase {
  /** How the issuer answers the request of the second issuance. */
  answer: (c: Clients, ns: string, name: string, root: RootCa) => Promise<unknown>;
  reason: "CertificateRejected" | "IssuerFailed";
  error: RegExp;
}

const MISBEHAVIOUR_ERRORS: Record<Exclude<Misbehaviour, "none">, RegExp> = {
  "wrong-key": /PublicKeyMismatch/,
  "foreign-root": /UntrustedChain/,
  "not-a-ca": /NotACA/,
  expired: /Expired/,
  "not-yet-valid": /NotYetValid/,
  "wrong-sans": /SANMismatch/,
  garbage: /Malformed/,
  empty: /Malformed/,
};

const rejected = (what: RegExp) => new RegExp(`^certificate from CertificateRequest \\S+ rejected, target secret left unchanged: .*${what.source}`);

const HOSTILE: Record<string, HostileCase> = {
  ...Object.fromEntries(MISBEHAVIOURS.filter((m): m is Exclude<Misbehaviour, "none"> => m !== "none").map((m) => [m, {
    answer: (c: Clients, ns: string, name: string, root: RootCa) => answerRequest(c, ns, name, root, { misbehave: m }),
    reason: "CertificateRejected",
    error: rejected(MISBEHAVIOUR_ERRORS[m]),
  } satisfies HostileCase])),
  "failed-500kb-nul-esc": {
    answer: async (c, ns, name) => {
      const cr = (await c.requests.get(ns, name))!;
      await c.requests.replaceStatus({ ...cr, status: { observedGeneration: cr.metadata.generation, state: "FAILED", error: HUGE_ERROR } });
    },
    reason: "IssuerFailed",
    // The issuer's text, escaped (\u001b, \u0000) and cut with a note of how much was left out.
    error: /^certificate request \S+ failed to be signed by Issuer: signer crashed: \\u001b\[31mpanic\\u001b\[0m \\u0000\\u0000.* \.\.\. \(\d+ more characters\)$/,
  },
  "huge-random-certificate": {
    answer: async (c, ns, name, root) => {
      await answerRequest(c, ns, name, root, { status: { signedCertificate: randomBytes(600 * 1024).toString("base64") } });
    },
    reason: "CertificateRejected",
    error: rejected(/Malformed/),
  },
};

describeWithControlPlane("issuer faults: hostile answers, twice, for an old generation", () => {
  let c: Clients;
  let ns: string;
  let root: RootCa;
  let agent: InProcessAgent;
  const keys: { recorder?: KeyRecorder } = {};
  let versions: SecretVersions;
  /** The target secrets as they were before each hostile answer, by case. */
  const before = new Map<string, V1Secret>();
  /** Set by the "twice-window" case: what the concurrent writer does right before the agent records ISSUED for `name`. */
  let beforeIssued: { name: string; run: () => Promise<void> } | undefined;

  beforeAll(async () => {
    c = clients(sharedKubeConfig());
    ns = await createNamespace(c, "issuer-faults");
    root = await createSigningSecret(c, ns);
    keys.recorder = new KeyRecorder(c.kc, ns);
    await keys.recorder.start();
    versions = new SecretVersions(c.kc, ns, keys.recorder);
    await versions.start();
    const wrap = (inner: ObjectClient<IssuedCertificate>) => {
      const wrapped = Object.create(inner) as ObjectClient<IssuedCertificate>;
      wrapped.replaceStatus = async (body: IssuedCertificate) => {
        const hook = beforeIssued;
        if (hook && body.metadata.name === hook.name && body.status?.state === "ISSUED") {
          beforeIssued = undefined;
          await hook.run();
        }
        return inner.replaceStatus(body);
      };
      return wrapped;
    };
    // No retry during the test: a FAILED object stays as the hostile answer left it.
    agent = await startInProcessAgent(c.kc, ["--namespace", ns, "--retry-base-delay", "10m", "--retry-max-delay", "10m"], { wrapIssuedCertificates: wrap });

    // Every hostile case at once: FINISHED with a good answer, then a spec change answered badly.
    await Promise.all(Object.entries(HOSTILE).map(async ([label, hostile]) => {
      const name = `h-${label}`;
      await c.issued.create(ns, newIssuedCertificate(ns, name, { annotations: P256, ttlDays: 30, target: { name: `t-${label}`, namespace: ns } }));
      await waitForState(c, ns, name, "REQUESTED");
      await answerRequest(c, ns, name, root);
      await waitForState(c, ns, name, "FINISHED");
      before.set(label, (await getSecretOrUndefined(c, ns, `t-${label}`))!);
      const ic = (await c.issued.get(ns, name))!;
      ic.spec!.certOptions!.ttlDays = 31;
      await c.issued.replace(ic);
      await waitForState(c, ns, name, "REQUESTED"); // of generation 2: the request was rewritten first
      await hostile.answer(c, ns, name, root);
    }));
  });

  afterAll(async () => {
    await agent?.stop();
    keys.recorder?.stop();
    versions?.stop();
  });

  it.each(Object.keys(HOSTILE))("%s: FAILED with its reason in status, a Warning Event and the log, bounded and printable; the target not even rewritten", async (label) => {
    const name = `h-${label}`;
    const { reason, error } = HOSTILE[label]!;
    const failed = await waitForState(c, ns, name, "FAILED");
    const message = failed.status!.error!;
    expect(message).toMatch(error);
    expect(failed.metadata.annotations?.[FAILURE_REASON_ANNOTATION]).toBe(reason);
    expect(message.length).toBeLessThanOrEqual(MAX_MESSAGE);
    expect(hasControlCharacters(message)).toBe(false);

    // Byte-identical: the same resourceVersion, so not rewritten either.
    const after = (await getSecretOrUndefined(c, ns, `t-${label}`))!;
    expect(after.metadata!.resourceVersion).toBe(before.get(label)!.metadata!.resourceVersion);
    expect(after.data).toEqual(before.get(label)!.data);
    expect(versions.contents(`t-${label}`)).toHaveLength(1);
    expect(opensslCheckBundle(decodeSecret(after))).toEqual(OK);

    // The Event: Warning, the reason, the message (Event notes are cut to 1 KB).
    await waitForEvent(c, ns, name, reason, "Warning");
    const warnings = (await eventsOf(c, ns, name)).filter((e) => e.type === "Warning");
    expect(warnings).toEqual([expect.objectContaining({ reason, count: 1 })]);
    expect(message.startsWith(warnings[0]!.message)).toBe(true);
    expect(warnings[0]!.message.length).toBeGreaterThanOrEqual(Math.min(message.length, 1024));
    expect(hasControlCharacters(warnings[0]!.message)).toBe(false);

    // The log: one transition line to FAILED at warn, with the reason and the same message.
    const lines = agent.logs().split("\n").filter((l) => l.includes('"message":"transition"') && l.includes(`"name":"${name}"`) && l.includes('"to":"FAILED"'));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: "warn", from: "REQUESTED", reason, detail: message, generation: 2 });
    expect(lines[0]!.length).toBeLessThanOrEqual(MAX_MESSAGE + 500);

    // One request, the one the agent rewrote for this issuance (generation 2), and no key beyond the two issuances'.
    const requests = await requestsOf(c, ns, name);
    expect(requests.map((r) => r.metadata.generation)).toEqual([2]);
  });

  it("keeps `kubectl get events -o yaml` of the namespace working after the 500 KB error", async () => {
    const yaml = await sharedKubectl(["get", "events", "-n", ns, "-o", "yaml"]);
    expect(yaml).toContain("reason: IssuerFailed");
    expect(yaml.length).toBeLessThan(400 * 1024); // the listing holds ~1 KB of the 500 KB, not the whole
    expect(hasControlCharacters(yaml.replace(/\n/g, ""))).toBe(false);
    const described = await sharedKubectl(["describe", "issuedcertificate", "-n", ns, "h-failed-500kb-nul-esc"]);
    expect(described).toContain("IssuerFailed");
  });

  it("an answer written twice after the target was written: the second is ignored, the target not rewritten", async () => {
    const name = "twice-after";
    await c.issued.create(ns, newIssuedCertificate(ns, name, { annotations: P256, target: { name: `t-${name}`, namespace: ns } }));
    await waitForState(c, ns, name, "REQUESTED");
    const first = await answerRequest(c, ns, name, root);
    await waitForState(c, ns, name, "FINISHED");
    const target = (await getSecretOrUndefined(c, ns, `t-${name}`))!;
    expect(decodeSecret(target)["ca-cert.pem"]).toBe(first);

    // The issuer answers the same generation again, with another (valid) certificate for the same key.
    const seen = passes(agent, name);
    const second = await answerRequest(c, ns, name, root);
    expect(second).not.toBe(first);
    await waitFor("the agent to look at the second answer", async () => passes(agent, name) > seen || undefined);
    expect((await c.issued.get(ns, name))!.status).toMatchObject({ state: "FINISHED", observedGeneration: 1 });
    const after = (await getSecretOrUndefined(c, ns, `t-${name}`))!;
    expect(after.metadata!.resourceVersion).toBe(target.metadata!.resourceVersion);
    expect(versions.contents(`t-${name}`)).toHaveLength(1);
    expect((await eventsOf(c, ns, name)).filter((e) => e.reason === "Issued")).toHaveLength(1);
  });

  it("an answer written twice before the agent looked: one target write, with a verified certificate of the two", async () => {
    const name = "twice-race";
    await c.issued.create(ns, newIssuedCertificate(ns, name, { annotations: P256, target: { name: `t-${name}`, namespace: ns } }));
    await waitForState(c, ns, name, "REQUESTED");
    const answers = [await answerRequest(c, ns, name, root), await answerRequest(c, ns, name, root)];
    await waitForState(c, ns, name, "FINISHED");
    const written = versions.contents(`t-${name}`);
    expect(written).toHaveLength(1);
    const data = decodeSecret((await getSecretOrUndefined(c, ns, `t-${name}`))!);
    expect(answers).toContain(data["ca-cert.pem"]);
    expect(opensslCheckBundle(data)).toEqual(OK);
  });

  it("a second answer between the target write and ISSUED (a conflict makes the agent look again): the target holding this issuance's certificate is kept, not written again", async () => {
    // docs/state-machine.md, order of writes: "after a crash between them, the next pass finds the target
    // holding this issuance's certificate and records ISSUED (adopt) without writing again". A 409 on
    // the ISSUED write is that same next pass; the issuer answering again meanwhile must not change it.
    const name = "twice-window";
    let second: string | undefined;
    beforeIssued = { name, run: async () => {
      second = await answerRequest(c, ns, name, root);
      // A concurrent writer: the agent's ISSUED write now carries a stale resourceVersion (a real 409).
      await c.issued.patchAnnotations(ns, name, { "test/touched": "1" });
    } };
    await c.issued.create(ns, newIssuedCertificate(ns, name, { annotations: P256, target: { name: `t-${name}`, namespace: ns } }));
    await waitForState(c, ns, name, "REQUESTED");
    const first = await answerRequest(c, ns, name, root);
    await waitForState(c, ns, name, "FINISHED");
    expect(second).toBeDefined();
    expect(logLines(agent).some((l) => l.message === "write conflict, requeueing" && l.name === name)).toBe(true);
    const written = versions.contents(`t-${name}`);
    expect(written).toHaveLength(1);
    const data = decodeSecret((await getSecretOrUndefined(c, ns, `t-${name}`))!);
    expect(data["ca-cert.pem"]).toBe(first);
    expect(opensslCheckBundle(data)).toEqual(OK);
  });

  it("a FINISHED answer for an older generation of the request is not taken for the new issuance, even when it would verify", async () => {
    // e2e/agent.e2e.test.ts ("never pairs a new key with the stale FINISHED status") covers the status
    // left over from generation 1; here the issuer writes one for generation 1 after the rewrite, with a
    // certificate for the NEW key: still an answer to the old CSR by what it says.
    const name = "old-generation";
    await c.issued.create(ns, newIssuedCertificate(ns, name, { annotations: P256, target: { name: `t-${name}`, namespace: ns } }));
    await waitForState(c, ns, name, "REQUESTED");
    await answerRequest(c, ns, name, root);
    await waitForState(c, ns, name, "FINISHED");
    const target = (await getSecretOrUndefined(c, ns, `t-${name}`))!;
    const ic = (await c.issued.get(ns, name))!;
    ic.spec!.certOptions!.ttlDays = 90;
    await c.issued.replace(ic);
    await waitForState(c, ns, name, "REQUESTED");
    expect((await c.requests.get(ns, name))!.metadata.generation).toBe(2);

    const seen = passes(agent, name);
    await answerRequest(c, ns, name, root, { status: { observedGeneration: 1 } });
    await waitFor("the agent to look at the old-generation answer", async () => passes(agent, name) > seen || undefined);
    expect((await c.issued.get(ns, name))!.status).toMatchObject({ state: "REQUESTED", observedGeneration: 2, error: "" });
    expect((await getSecretOrUndefined(c, ns, `t-${name}`))!.metadata!.resourceVersion).toBe(target.metadata!.resourceVersion);
    const events = await eventsOf(c, ns, name);
    expect(events.filter((e) => e.reason === "Issued")).toHaveLength(1);
    expect(events.filter((e) => e.type === "Warning")).toEqual([]);

    // The answer for generation 2 is taken: the new key, verified.
    await answerRequest(c, ns, name, root);
    await waitForState(c, ns, name, "FINISHED");
    const data = decodeSecret((await getSecretOrUndefined(c, ns, `t-${name}`))!);
    expect(opensslCheckBundle(data)).toEqual(OK);
    expect(await fingerprintOfKeyPem(data["ca-key.pem"])).toBe((await c.requests.get(ns, name))!.metadata.annotations![KEY_FINGERPRINT_ANNOTATION]);
    expect(versions.contents(`t-${name}`)).toHaveLength(2);
  });

  it("publishes no private-key material (logs, Events, statuses, CertificateRequests), and no log line copies a hostile payload", async () => {
    await expectNoKeyMaterial(c, ns, agent, keys.recorder!);
    // Neither the 500 KB error nor the 800 KB certificate went anywhere else in the log, and every text
    // in it is printable (escaped by the agent, not merely by JSON).
    const strings = (v: unknown): string[] => typeof v === "string" ? [v] : v && typeof v === "object" ? Object.values(v).flatMap(strings) : [];
    for (const line of agent.logs().split("\n").filter(Boolean)) {
      expect(line.length).toBeLessThan(4096);
      for (const text of strings(JSON.parse(line))) expect(hasControlCharacters(text)).toBe(false);
    }
  });
});

// --------------------------------------------------------------------------------------------------
// The issuer killed mid-flight: a real issuer process (dist/e2e/issuer/main.js) holds the requests
// PENDING (--answer-delay) and is SIGKILLed; a new process finishes them. The agent waits throughout
// with the key and request it made: never a second of either.
// --------------------------------------------------------------------------------------------------

describeWithControlPlane("issuer faults: the issuer process SIGKILLed while requests are PENDING", () => {
  it("a new issuer process finishes them; each IssuedCertificate keeps its one key and one request", async () => {
    const c = clients(sharedKubeConfig());
    const ns = await createNamespace(c, "issuer-killed");
    const root = await createSigningSecret(c, ns);
    const keys = new KeyRecorder(c.kc, ns);
    await keys.start();
    const versions = new SecretVersions(c.kc, ns, keys);
    await versions.start();
    const agent = await startInProcessAgent(c.kc, ["--namespace", ns]);
    const first = spawnIssuer(sharedKubeconfigPath(), ["--namespace", ns, "--answer-delay", "1h"]);
    let second: ReturnType<typeof spawnIssuer> | undefined;
    const names = ["k-p256", "k-rsa2048", "k-p256b"];
    try {
      await waitFor("the first issuer to start", async () => first.output().includes("reference issuer started") || undefined, 30_000);
      for (const name of names) {
        await c.issued.create(ns, newIssuedCertificate(ns, name, {
          ...(name === "k-rsa2048" ? { rsaKeySizeBits: 2048 } : { annotations: P256 }), target: { name: `t-${name}`, namespace: ns },
        }));
      }
      const before = new Map<string, { fingerprint: string; uid: string }>();
      for (const name of names) {
        await waitForState(c, ns, name, "REQUESTED");
        // Marked PENDING by the issuer, for the request's generation: it has taken the request.
        const cr = await waitFor(`${name}'s request PENDING`, async () => {
          const r = await c.requests.get(ns, name);
          return r?.status?.state === "PENDING" && r.status.observedGeneration === r.metadata.generation ? r : undefined;
        });
        before.set(name, { fingerprint: cr.metadata.annotations![KEY_FINGERPRINT_ANNOTATION]!, uid: cr.metadata.uid! });
      }

      first.child.kill("SIGKILL");
      await first.stop();
      expect(first.child.signalCode).toBe("SIGKILL");
      second = spawnIssuer(sharedKubeconfigPath(), ["--namespace", ns]);
      for (const name of names) await waitForState(c, ns, name, "FINISHED", 90_000);

      for (const name of names) {
        const data = decodeSecret((await getSecretOrUndefined(c, ns, `t-${name}`))!);
        expect(opensslCheckBundle(data)).toEqual(OK);
        // The key that was staged before the kill is the one certified: no second key.
        expect(await fingerprintOfKeyPem(data["ca-key.pem"])).toBe(before.get(name)!.fingerprint);
        const requests = await requestsOf(c, ns, name);
        expect(requests.map((r) => [r.metadata.uid, r.metadata.generation])).toEqual([[before.get(name)!.uid, 1]]);
        expect(logLines(agent).filter((l) => l.message === "transition" && l.name === name).map((l) => `${l.from}->${l.to}`))
          .toEqual(["->PENDING", "PENDING->REQUESTED", "REQUESTED->ISSUED", "ISSUED->FINISHED"]);
      }
      const keygens = (await agent.metrics.keygenSeconds.get()).values.filter((v) => v.metricName?.endsWith("_count")).reduce((n, v) => n + v.value, 0);
      expect(keygens).toBe(names.length);
      // The keys written to the namespace: one per IssuedCertificate, and the issuer's root key (root-ca).
      expect(keys.keys.size).toBe(names.length + 1);
      expect([...keys.keys].some((k) => root.keyPem.includes(k))).toBe(true);
      expect(await second.stop("SIGTERM")).toBe(0);
      await expectNoKeyMaterial(c, ns, agent, keys);
    } finally {
      await first.stop("SIGKILL");
      await second?.stop("SIGKILL");
      await agent.stop();
      keys.stop();
      versions.stop();
    }
  });
});

// --------------------------------------------------------------------------------------------------
// A slow issuer: it marks the request PENDING and answers 30 minutes later by its clock. The agent's
// and the issuer's clocks are shifted forward by the test (as in e2e/renewal.e2e.test.ts), so half an
// hour passes for both in a few seconds, while the agent looks again every second (--resync-period 1s).
// --------------------------------------------------------------------------------------------------

/** The wall clock plus an offset the test moves (timers still run on real time). */
class ShiftedClock implements Clock {
  offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
  setTimeout(fn: () => void, ms: number) {
    return systemClock.setTimeout(fn, ms);
  }
}

describeWithControlPlane("issuer faults: an issuer that answers after 30 minutes", () => {
  it("the agent waits in REQUESTED with its one key and request, without a hot loop, healthy, and says so; then finishes with that key", async () => {
    const c = clients(sharedKubeConfig());
    const ns = await createNamespace(c, "issuer-slow");
    await createSigningSecret(c, ns);
    const keys = new KeyRecorder(c.kc, ns);
    await keys.start();
    const versions = new SecretVersions(c.kc, ns, keys);
    await versions.start();
    const clock = new ShiftedClock();
    const issuer = await startIssuer(c.kc, ns, { clock, answerDelayMs: 30 * 60_000 });
    // The stall threshold is above the clock jumps: a reconcile running across a jump is not a stall.
    const agent = await startInProcessAgent(c.kc, ["--namespace", ns, "--resync-period", "1s", "--health-probe-bind-address", "127.0.0.1:0",
      "--stall-threshold", "2h"], { clock });
    const name = "slow";
    try {
      await c.issued.create(ns, newIssuedCertificate(ns, name, { annotations: P256 }));
      await waitForState(c, ns, name, "REQUESTED");
      const cr = await waitFor("the request PENDING", async () => {
        const r = await c.requests.get(ns, name);
        return r?.status?.state === "PENDING" && r.status.observedGeneration === 1 ? r : undefined;
      });
      const staged = (await getSecretOrUndefined(c, ns, name))!;
      const fingerprint = staged.metadata!.annotations![KEY_FINGERPRINT_ANNOTATION]!;

      const started = Date.now();
      const passesBefore = passes(agent, name);
      for (let step = 1; step <= 5; step++) {
        clock.offsetMs += 5 * 60_000; // 25 minutes in all: still short of the issuer's 30
        const seen = passes(agent, name);
        await waitFor("two more passes", async () => passes(agent, name) >= seen + 2 || undefined);
        // Waiting, and saying so: REQUESTED in status and /statusz, healthy (waiting is not a stall).
        expect((await c.issued.get(ns, name))!.status).toMatchObject({ state: "REQUESTED", error: "" });
        const statusz = JSON.parse((await fetchText(agent.healthPort!, "/statusz")).body) as { healthy: boolean; certificates: CertificateStatus[] };
        expect(statusz.healthy).toBe(true);
        expect(statusz.certificates).toEqual([expect.objectContaining({ name, state: "REQUESTED", error: "", notAfter: null })]);
        expect(await fetchText(agent.healthPort!, "/healthz")).toEqual({ status: 200, body: "ok\n" });
        // The same key and the same request all along.
        expect((await getSecretOrUndefined(c, ns, name))!.metadata!.annotations![KEY_FINGERPRINT_ANNOTATION]).toBe(fingerprint);
        const now = (await c.requests.get(ns, name))!;
        expect([now.metadata.uid, now.metadata.generation]).toEqual([cr.metadata.uid, 1]);
      }
      // No hot loop: about one pass per resync (the resync and the pass's own requeue may both fire).
      const seconds = (Date.now() - started) / 1000;
      const waited = passes(agent, name) - passesBefore;
      expect(waited).toBeLessThanOrEqual(2 * Math.ceil(seconds) + 4);
      const actions = logLines(agent).filter((l) => l.message === "reconciled" && l.name === name && l.state === "REQUESTED").map((l) => l.action);
      expect(new Set(actions)).toEqual(new Set(["none"]));

      clock.offsetMs += 6 * 60_000; // past 30 minutes: the issuer answers within a second
      await waitForState(c, ns, name, "FINISHED");
      const data = decodeSecret((await getSecretOrUndefined(c, ns, "cacerts"))!);
      expect(opensslCheckBundle(data, clock.now())).toEqual(OK);
      expect(await fingerprintOfKeyPem(data["ca-key.pem"])).toBe(fingerprint);
      const keygens = (await agent.metrics.keygenSeconds.get()).values.find((v) => v.metricName?.endsWith("_count"));
      expect(keygens?.value).toBe(1);
      expect((await requestsOf(c, ns, name)).map((r) => r.metadata.generation)).toEqual([1]);
      process.stderr.write(`[figure] slow issuer: ${waited} passes in ${seconds.toFixed(1)} s of waiting (35 min by the shifted clocks)\n`);
      await expectNoKeyMaterial(c, ns, agent, keys);
    } finally {
      await agent.stop();
      await issuer.stop();
      keys.stop();
      versions.stop();
    }
  });
});
