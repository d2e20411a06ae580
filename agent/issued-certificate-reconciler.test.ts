// The IssuedCertificate reconciler with its I/O: gather -> decide -> act against the in-memory API,
// with the reference issuer's signing step playing the management plane and a fake clock. decide()'s
// branches are table rows in decide.test.ts; here each case checks what was WRITTEN (objects, order),
// what an operator sees (state, reason, Events, log) and what the reconciler asks for next (requeue).
import {
  CA_CERT,
  CA_KEY,
  CERT_CHAIN,
  FAILURE_REASON_ANNOTATION,
  FAILURES_ANNOTATION,
  BOUNCE_PROGRESS_ANNOTATION,
  BOUNCE_REQUEST_ANNOTATION,
  ISSUED_SECRET_TYPE,
  KEY_ALGORITHM_ANNOTATION,
  KEY_FINGERPRINT_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  ORIGINAL_AGENT_LABEL,
  OWNER_ANNOTATION,
  PRIVATE_KEY_SECRET_KEY,
  PRIVATE_KEY_SECRET_TYPE,
  Reason,
  RETRY_AFTER_ANNOTATION,
  REVISION_ANNOTATION,
  ROOT_CERT,
} from "./constants";
import { issuedCertificate, podBounceDirective } from "../shared/api/builders";
import { jitterShare } from "./renewal";
import type { IssuedCertificate, IssuedCertificateState, PodBounceDirective } from "../shared/api/types";
import { Fault, FakeApiError, WriteRecord } from "../shared/kube/fake";
import { API_FAILURES_BEFORE_FAILED } from "./api-failures";
import type { Secret } from "../shared/kube/secrets";
import { importPrivateKeyPem } from "../shared/pki";
import { ORIGINAL_CLUSTER_LABEL, ORIGINAL_EMPTY_KEY, originalAgentTarget, originalFinishedStatus } from "./testing/original-agent";
import { fingerprintOf, KEY, NAME, newEnv, NS, ReconcilerEnv, rootCa, secretText, SETTINGS, T0, TARGET } from "./testing/reconciler-env";

// ---- write records, by name --------------------------------------------------------------------

const w = (kind: string, verb: WriteRecord["verb"], namespace: string, name: string): WriteRecord => ({ kind, verb, namespace, name });
const IC_PATCH = w("IssuedCertificate", "patchAnnotations", NS, NAME);
const IC_STATUS = w("IssuedCertificate", "replaceStatus", NS, NAME);
const STAGED_CREATE = w("Secret", "create", NS, NAME);
const STAGED_REPLACE = w("Secret", "replace", NS, NAME);
const STAGED_DELETE = w("Secret", "delete", NS, NAME);
const CR_CREATE = w("CertificateRequest", "create", NS, NAME);
const CR_REPLACE = w("CertificateRequest", "replace", NS, NAME);
const TARGET_CREATE = w("Secret", "create", TARGET.namespace, TARGET.name);
const TARGET_REPLACE = w("Secret", "replace", TARGET.namespace, TARGET.name);

const REQUEUE_NOW = { requeueNow: true };
const DAY_MS = 86_400_000;
/** retryBackoff {10 s, 600 s, random 0.5}: failure n waits 0.75 * min(600 s, 10 s * 2^(n-1)). */
const FIRST_RETRY_MS = 7_500;
const SECOND_RETRY_MS = 15_000;
const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");
const GARBAGE_KEY_PEM = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n";

/** The writes the reconciler makes during fn. */
async function writesOf(env: ReconcilerEnv, fn: () => Promise<unknown>): Promise<WriteRecord[]> {
  const from = env.writes.length;
  await fn();
  return env.writes.slice(from);
}

/** [type, reason] of the Events recorded during fn. */
async function eventsOf(env: ReconcilerEnv, fn: () => Promise<unknown>): Promise<[string, string][]> {
  const from = env.events.events.length;
  await fn();
  return env.eventReasons().slice(from);
}

const stamp = (s: Secret | { metadata: { annotations?: Record<string, string> } } | undefined) => {
  const a = s?.metadata.annotations ?? {};
  return { owner: a[OWNER_ANNOTATION], revision: a[REVISION_ANNOTATION], fingerprint: a[KEY_FINGERPRINT_ANNOTATION] };
};

// Every env made in a test is checked afterwards: no key material where operators can read it, and
// exactly one Event (and one log line) per state transition and per bounce request.
const envs: ReconcilerEnv[] = [];
function env(o?: Parameters<typeof newEnv>[0]): ReconcilerEnv {
  const e = newEnv(o);
  envs.push(e);
  return e;
}

beforeAll(async () => {
  await rootCa();
});

afterEach(async () => {
  for (const e of envs.splice(0)) {
    expect(await e.keyMaterialLeaks()).toEqual([]);
    // A transition, a bounce request or an adoption: each is one log line and one Event.
    const reported = (await e.logRecords()).filter((r) => r.message === "transition" || r.message === "bounce" || r.message === "adopted");
    expect(reported.map((t) => t.reason)).toEqual(e.events.events.map((ev) => ev.reason));
  }
});

describe("IssuedCertificateReconciler: happy path", () => {
  it("goes PENDING -> REQUESTED -> ISSUED -> FINISHED with the exact writes, one revision stamp and one Event per transition", async () => {
    const e = env();
    const results: unknown[] = [];
    const states: (IssuedCertificateState | undefined)[] = [];
    const step = async () => {
      results.push(await e.reconcile());
      states.push(e.state());
    };

    await step(); // new -> PENDING
    await step(); // PENDING -> REQUESTED
    const staged = e.stagedKey()!;
    const request = e.request()!;
    await step(); // REQUESTED, not answered yet: wait
    await e.sign();
    await step(); // REQUESTED -> ISSUED
    await step(); // ISSUED -> FINISHED
    await step(); // FINISHED: nothing to do

    expect(states).toEqual(["PENDING", "REQUESTED", "REQUESTED", "ISSUED", "FINISHED", "FINISHED"]);
    // FINISHED wakes up at the renewal time: 2/3 of the 365-day lifetime, up to 24 h earlier (jitter).
    const renewsInMs = 365 * DAY_MS * (2 / 3) - jitterShare(secretText(e.target(), CA_CERT)!) * DAY_MS;
    expect(results).toEqual([REQUEUE_NOW, REQUEUE_NOW, { requeueAfterMs: SETTINGS.resyncMs }, REQUEUE_NOW, undefined, { requeueAfterMs: expect.any(Number) }]);
    expect(Math.abs((results[5] as { requeueAfterMs: number }).requeueAfterMs - renewsInMs)).toBeLessThan(2);
    expect(e.writes).toEqual([
      IC_PATCH, IC_STATUS, // revision 1, PENDING
      STAGED_CREATE, CR_CREATE, IC_STATUS, // key staged before it is requested; REQUESTED
      TARGET_CREATE, IC_STATUS, // the whole bundle in one write; ISSUED
      STAGED_DELETE, IC_STATUS, // the key now lives only in the target; FINISHED
    ]);

    // One revision stamp on the staged key, the request and the target; the key is the one written.
    const target = e.target()!;
    const fingerprint = await fingerprintOf(secretText(staged, PRIVATE_KEY_SECRET_KEY)!);
    const expected = { owner: KEY, revision: "1", fingerprint };
    expect(stamp(staged)).toEqual(expected);
    expect(stamp(request)).toEqual(expected);
    expect(stamp(target)).toEqual(expected);
    expect(await fingerprintOf(secretText(target, CA_KEY)!)).toBe(fingerprint);
    expect(e.annotations()[REVISION_ANNOTATION]).toBe("1");
    expect(e.annotations()[FAILURES_ANNOTATION]).toBeUndefined();

    // Ownership: staged key and request are owned (GC), the target is not (it outlives the IssuedCertificate).
    const uid = e.ic()!.metadata.uid;
    expect(staged.type).toBe(PRIVATE_KEY_SECRET_TYPE);
    expect(staged.metadata.ownerReferences?.map((r) => r.uid)).toEqual([uid]);
    expect(request.metadata.ownerReferences?.map((r) => r.uid)).toEqual([uid]);
    expect(target.type).toBe(ISSUED_SECRET_TYPE);
    expect(target.metadata.labels?.[MANAGED_BY_LABEL]).toBe(MANAGED_BY_VALUE);
    expect(target.metadata.ownerReferences).toBeUndefined();
    expect(Object.keys(target.data ?? {}).sort()).toEqual(["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]);
    expect(e.stagedKey()).toBeUndefined();

    expect(e.eventReasons()).toEqual([
      ["Normal", Reason.SpecChanged],
      ["Normal", Reason.CertificateRequested],
      ["Normal", Reason.Issued],
      ["Normal", Reason.Finished],
    ]);
    const transitions = (await e.logRecords()).filter((r) => r.message === "transition").map((r) => [r.from, r.to]);
    expect(transitions).toEqual([["", "PENDING"], ["PENDING", "REQUESTED"], ["REQUESTED", "ISSUED"], ["ISSUED", "FINISHED"]]);
    expect(e.ic()!.status).toEqual({ observedGeneration: 1, state: "FINISHED", error: "" });
    expect(await e.keygenCount()).toBe(1);
  });
});

describe("IssuedCertificateReconciler: write conflicts", () => {
  it("a 409 on the status write only requeues and never makes a new key", async () => {
    const e = env();
    await e.reconcile(); // PENDING
    e.api.failNext({ kind: "IssuedCertificate", verb: "replaceStatus", error: 409 });

    let result: unknown;
    const first = await writesOf(e, async () => {
      result = await e.reconcile();
    });
    expect(result).toEqual({ requeueAfterMs: 200 });
    expect(first).toEqual([STAGED_CREATE, CR_CREATE]); // the REQUESTED status write was refused
    expect(e.state()).toBe("PENDING");
    const fingerprint = await e.stagedFingerprint();

    const second = await writesOf(e, async () => {
      result = await e.reconcile();
    });
    expect(result).toEqual(REQUEUE_NOW);
    expect(second).toEqual([IC_STATUS]); // same key, same request: only the status
    expect(e.state()).toBe("REQUESTED");
    expect(await e.stagedFingerprint()).toBe(fingerprint);
    expect(stamp(e.request()).fingerprint).toBe(fingerprint);
    expect(await e.keygenCount()).toBe(1);

    await e.runUntil("FINISHED");
    expect(stamp(e.target()).fingerprint).toBe(fingerprint);
    expect(await e.keygenCount()).toBe(1);
  });

  // The same for every other write whose failure leaves a stored key behind.
  const rows: [string, IssuedCertificateState | "new", Partial<WriteRecord> & { verb: WriteRecord["verb"]; kind: string }][] = [
    ["the bookkeeping patch of a new issuance", "new", { kind: "IssuedCertificate", verb: "patchAnnotations" }],
    ["the CertificateRequest create", "PENDING", { kind: "CertificateRequest", verb: "create" }],
    ["the target secret create", "REQUESTED", { kind: "Secret", verb: "create", namespace: TARGET.namespace }],
    ["the ISSUED status write", "REQUESTED", { kind: "IssuedCertificate", verb: "replaceStatus" }],
    ["the staged key delete", "ISSUED", { kind: "Secret", verb: "delete" }],
  ];
  it.each(rows)("a 409 on %s requeues after 200 ms and the issuance completes with one key", async (_name, at, fault) => {
    const e = env();
    if (at !== "new") await e.runUntil(at);
    if (at === "REQUESTED") await e.sign();
    e.api.failNext({ ...fault, error: 409 });
    const before = e.state();
    expect(await e.reconcile()).toEqual({ requeueAfterMs: 200 });
    expect(e.state()).toBe(before);
    await e.runUntil("FINISHED");
    expect(await e.keygenCount()).toBe(1);
    expect(await fingerprintOf(secretText(e.target(), CA_KEY)!)).toBe(stamp(e.target()).fingerprint);
  });
});

describe("IssuedCertificateReconciler: a Secret in the way is refused before any key is made", () => {
  const foreignStaged: Secret = {
    apiVersion: "v1", kind: "Secret", type: "Opaque",
    metadata: { name: NAME, namespace: NS, labels: { app: "someone-else" } },
    data: { password: b64("hunter2") },
  };
  const foreignTarget: Secret = {
    apiVersion: "v1", kind: "Secret", type: "Opaque",
    metadata: { name: TARGET.name, namespace: TARGET.namespace },
    data: { [CA_CERT]: b64("hand-plugged CA"), [CA_KEY]: b64("hand-plugged key") },
  };
  const otherOwnersTarget: Secret = {
    apiVersion: "v1", kind: "Secret", type: ISSUED_SECRET_TYPE,
    metadata: {
      name: TARGET.name, namespace: TARGET.namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
      annotations: { [OWNER_ANNOTATION]: "other/ic", [REVISION_ANNOTATION]: "3", [KEY_FINGERPRINT_ANNOTATION]: "ab".repeat(32) },
    },
    data: { [CA_CERT]: b64("other cert"), [CA_KEY]: b64("other key") },
  };

  const rows: [string, Secret, Reason][] = [
    ["a foreign staged-key Secret (Opaque at the IssuedCertificate's name) -> FAILED StagedKeySecretConflict", foreignStaged, Reason.StagedKeySecretConflict],
    ["a foreign target (Opaque Secret) -> FAILED TargetSecretConflict", foreignTarget, Reason.TargetSecretConflict],
    ["a managed target owned by another IssuedCertificate (other/ic) -> FAILED TargetSecretConflict", otherOwnersTarget, Reason.TargetSecretConflict],
  ];
  it.each(rows)("%s, untouched; once it is deleted, issues", async (_name, inTheWay, reason) => {
    const e = env({ secrets: [inTheWay] });
    const ref = [inTheWay.metadata.namespace!, inTheWay.metadata.name!] as const;
    const original = e.api.peek<Secret>("Secret", ...ref);

    const results = [await e.reconcile(), await e.reconcile()];
    expect(results).toEqual([REQUEUE_NOW, { requeueAfterMs: SETTINGS.conflictRecheckMs }]);
    expect(e.writes).toEqual([IC_PATCH, IC_STATUS, IC_PATCH, IC_STATUS]); // PENDING, then FAILED: nothing else
    expect(e.state()).toBe("FAILED");
    expect(e.ic()!.status!.error).toMatch(/left untouched/);
    expect(e.annotations()).toMatchObject({ [FAILURES_ANNOTATION]: "1", [FAILURE_REASON_ANNOTATION]: reason });
    expect(e.annotations()[RETRY_AFTER_ANNOTATION]).toBeUndefined(); // waits for the Secret, not for a timer
    expect(e.eventReasons()).toEqual([["Normal", Reason.SpecChanged], ["Warning", reason]]);
    expect(e.api.peek<Secret>("Secret", ...ref)).toEqual(original); // byte-identical, same resourceVersion
    expect(await e.keygenCount()).toBe(0);
    expect(e.request()).toBeUndefined();
    if (reason === Reason.TargetSecretConflict) expect(e.stagedKey()).toBeUndefined();

    // Still there: look again later, write nothing.
    e.clock.advance(SETTINGS.conflictRecheckMs);
    expect(await writesOf(e, async () => expect(await e.reconcile()).toEqual({ requeueAfterMs: SETTINGS.conflictRecheckMs }))).toEqual([]);

    await e.secrets.delete(...ref);
    e.clock.advance(SETTINGS.conflictRecheckMs);
    expect(await eventsOf(e, async () => expect(await e.reconcile()).toEqual(REQUEUE_NOW))).toEqual([["Normal", Reason.Retrying]]);
    expect(e.state()).toBe("PENDING");
    expect(e.annotations()[REVISION_ANNOTATION]).toBe("2");
    await e.runUntil("FINISHED");
    expect(stamp(e.target())).toMatchObject({ owner: KEY, revision: "2" });
    expect(e.annotations()[FAILURES_ANNOTATION]).toBeUndefined();
    expect(e.annotations()[FAILURE_REASON_ANNOTATION]).toBeUndefined();
    expect(await e.keygenCount()).toBe(1);
  });
});

describe("IssuedCertificateReconciler: recovering from lost or broken objects", () => {
  /** Our staged key Secret, stamped for revision 1, whose PEM does not parse. */
  const unreadable = (e: ReconcilerEnv): Secret => {
    const existing = e.stagedKey();
    return {
      apiVersion: "v1", kind: "Secret", type: PRIVATE_KEY_SECRET_TYPE,
      metadata: {
        ...(existing?.metadata ?? {}),
        name: NAME, namespace: NS,
        labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
        annotations: { [OWNER_ANNOTATION]: KEY, [REVISION_ANNOTATION]: "1", [KEY_FINGERPRINT_ANNOTATION]: "cd".repeat(32) },
      },
      data: { [PRIVATE_KEY_SECRET_KEY]: b64(GARBAGE_KEY_PEM) },
    };
  };

  it("an unreadable staged key in PENDING is replaced by a new key", async () => {
    const e = env();
    await e.reconcile(); // PENDING, revision 1
    e.api.seed("Secret", unreadable(e));

    expect(await writesOf(e, async () => expect(await e.reconcile()).toEqual(REQUEUE_NOW))).toEqual([STAGED_REPLACE, CR_CREATE, IC_STATUS]);
    expect(e.state()).toBe("REQUESTED");
    const fingerprint = await e.stagedFingerprint();
    expect(stamp(e.stagedKey())).toEqual({ owner: KEY, revision: "1", fingerprint });
    expect(stamp(e.request())).toEqual({ owner: KEY, revision: "1", fingerprint });
    expect(await e.keygenCount()).toBe(1);
    await e.runUntil("FINISHED");
    expect(stamp(e.target()).fingerprint).toBe(fingerprint);
  });

  it("an unreadable staged key in REQUESTED starts a new issuance (revision 2), never an exception", async () => {
    const e = env();
    await e.runUntil("REQUESTED");
    const first = await e.stagedFingerprint();
    e.api.seed("Secret", unreadable(e));
    await e.sign(); // even a signed answer for it cannot be used without the key

    expect(await eventsOf(e, async () => expect(await e.reconcile()).toEqual(REQUEUE_NOW))).toEqual([["Warning", Reason.StagedKeyUnreadable]]);
    expect(e.state()).toBe("PENDING");
    expect(e.annotations()[REVISION_ANNOTATION]).toBe("2");
    expect(e.target()).toBeUndefined();

    expect(await writesOf(e, () => e.reconcile())).toEqual([STAGED_REPLACE, CR_REPLACE, IC_STATUS]);
    const second = await e.stagedFingerprint();
    expect(second).not.toBe(first);
    expect(e.request()!.metadata.generation).toBe(2); // the issuer is asked again
    await e.runUntil("FINISHED");
    expect(stamp(e.target())).toEqual({ owner: KEY, revision: "2", fingerprint: second });
    expect(await e.keygenCount()).toBe(2);
  });

  it("a CertificateRequest deleted mid-flight (REQUESTED) is requested again with the same key", async () => {
    const e = env();
    await e.runUntil("REQUESTED");
    const fingerprint = await e.stagedFingerprint();
    await e.certificateRequests.delete(NS, NAME);

    let writes = await writesOf(e, async () => expect(await e.reconcile()).toEqual(REQUEUE_NOW));
    expect(writes).toEqual([IC_STATUS]);
    expect(e.state()).toBe("PENDING");
    expect(e.events.events.at(-1)).toMatchObject({ type: "Normal", reason: Reason.CertificateRequestMissing });
    writes = await writesOf(e, () => e.reconcile());
    expect(writes).toEqual([CR_CREATE, IC_STATUS]); // no key written: the staged one is reused
    expect(stamp(e.request())).toEqual({ owner: KEY, revision: "1", fingerprint });
    expect(await e.stagedFingerprint()).toBe(fingerprint);

    await e.runUntil("FINISHED");
    expect(stamp(e.target())).toEqual({ owner: KEY, revision: "1", fingerprint });
    expect(await e.keygenCount()).toBe(1);
  });

  it("a crash after writing the target (staged key gone, status still REQUESTED) adopts the target: ISSUED without a new key or write", async () => {
    const e = env();
    await e.runUntil("REQUESTED");
    await e.sign();
    // The target is written, then the process dies before ISSUED is recorded.
    e.api.failNext({ kind: "IssuedCertificate", verb: "replaceStatus", error: new Error("agent killed") });
    await expect(e.reconcile()).rejects.toThrow("agent killed");
    expect(e.state()).toBe("REQUESTED");
    const target = e.target()!;
    await e.secrets.delete(NS, NAME);

    expect(await writesOf(e, async () => expect(await e.reconcile()).toEqual(REQUEUE_NOW))).toEqual([IC_STATUS]);
    expect(e.state()).toBe("ISSUED");
    expect(e.events.events.at(-1)).toMatchObject({ reason: Reason.Issued, message: expect.stringMatching(/already holds the certificate/) });
    await e.runUntil("FINISHED");
    expect(e.target()).toEqual(target); // never rewritten
    expect(e.writes.filter((x) => x.namespace === TARGET.namespace)).toEqual([TARGET_CREATE]);
    expect(await e.keygenCount()).toBe(1);
  });

  it("a crash after writing the target (staged key still there) does not write the target again", async () => {
    const e = env();
    await e.runUntil("REQUESTED");
    await e.sign();
    e.api.failNext({ kind: "IssuedCertificate", verb: "replaceStatus", error: new Error("agent killed") });
    await expect(e.reconcile()).rejects.toThrow("agent killed");
    const target = e.target()!;

    expect(await writesOf(e, () => e.reconcile())).toEqual([IC_STATUS]);
    expect(e.state()).toBe("ISSUED");
    expect(e.target()).toEqual(target);
  });

  it("a crash after writing the target, then the issuer answers again (another certificate for the same key): ISSUED with the target as written, not a second write", async () => {
    const e = env();
    await e.runUntil("REQUESTED");
    await e.sign();
    e.api.failNext({ kind: "IssuedCertificate", verb: "replaceStatus", error: new Error("agent killed") });
    await expect(e.reconcile()).rejects.toThrow("agent killed");
    const target = e.target()!;
    await e.sign();
    expect(secretText(target, CA_CERT)).not.toBe(Buffer.from(e.request()!.status!.signedCertificate!, "base64").toString("utf8"));

    expect(await writesOf(e, () => e.reconcile())).toEqual([IC_STATUS]);
    expect(e.state()).toBe("ISSUED");
    expect(e.events.events.at(-1)).toMatchObject({ reason: Reason.Issued, message: expect.stringMatching(/already holds the certificate/) });
    await e.runUntil("FINISHED");
    expect(e.target()).toEqual(target);
    expect(e.writes.filter((x) => x.namespace === TARGET.namespace)).toEqual([TARGET_CREATE]);
  });

  it("a target made incomplete after FINISHED (ca-key.pem removed) is re-issued; the old data stays until the new is written", async () => {
    const e = env();
    await e.runUntil("FINISHED");
    const old = e.target()!;
    const rest = { ...old.data };
    delete rest[CA_KEY];
    e.api.seed("Secret", { ...old, data: rest });
    const broken = e.target()!;

    expect(await eventsOf(e, () => e.reconcile())).toEqual([["Warning", Reason.TargetSecretIncomplete]]);
    expect(e.state()).toBe("PENDING");
    expect(e.annotations()[REVISION_ANNOTATION]).toBe("2");
    await e.runUntil("REQUESTED");
    expect(e.target()).toEqual(broken);
    await e.sign();
    expect(await writesOf(e, () => e.reconcile())).toEqual([TARGET_REPLACE, IC_STATUS]);
    expect(e.state()).toBe("ISSUED");
    const renewed = e.target()!;
    expect(Object.keys(renewed.data!).sort()).toEqual(["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]);
    expect(renewed.data![CA_CERT]).not.toBe(old.data![CA_CERT]);
    expect(stamp(renewed)).toMatchObject({ owner: KEY, revision: "2" });
    expect(stamp(renewed).fingerprint).not.toBe(stamp(old).fingerprint);
    await e.runUntil("FINISHED");
  });

  it("defect 4: a key-algorithm annotation changed on a FINISHED object (P-256 -> P-384) re-issues with a P-384 key, without a spec change", async () => {
    const e = env();
    await e.runUntil("FINISHED");
    expect((await importPrivateKeyPem(secretText(e.target(), CA_KEY)!)).spec).toEqual({ algorithm: "ECDSA", curve: "P-256" });
    await e.issuedCertificates.patchAnnotations(NS, NAME, { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P384" });
    expect(e.ic()!.metadata.generation).toBe(1);

    expect(await eventsOf(e, () => e.reconcile())).toEqual([["Normal", Reason.KeyAlgorithmChanged]]);
    expect(e.state()).toBe("PENDING");
    await e.runUntil("FINISHED");
    expect((await importPrivateKeyPem(secretText(e.target(), CA_KEY)!)).spec).toEqual({ algorithm: "ECDSA", curve: "P-384" });
    expect(stamp(e.target())).toMatchObject({ owner: KEY, revision: "2" });
    expect(e.ic()!.metadata.generation).toBe(1);
    expect(e.ic()!.status).toEqual({ observedGeneration: 1, state: "FINISHED", error: "" });
    const keygens = (await e.metrics.keygenSeconds.get()).values.filter((v) => v.metricName?.endsWith("_count"));
    expect(keygens.map((v) => [v.labels.algorithm, v.value]).sort()).toEqual([["ECDSA-P256", 1], ["ECDSA-P384", 1]]);
  });
});

describe("IssuedCertificateReconciler: migrating from Gloo Mesh's agent", () => {
  const ISTIOD = "spiffe://cluster.local/ns/istio-system/sa/istiod";
  /** mesh/ic as Gloo Mesh's management plane writes it (RSA, rsaKeySizeBytes 2048 read as bits, no cert-agent annotation), left FINISHED by the original. */
  function migratedEnv(target: Secret, o: { annotations?: Record<string, string> } = {}): ReconcilerEnv {
    const e = env({ issuedCertificate: false, secrets: [target] });
    const ic = issuedCertificate({ name: NAME, namespace: NS, target: TARGET, hosts: [ISTIOD], rsaKeySizeBits: 2048, org: "istio", ...o });
    ic.metadata.generation = 1;
    e.api.seed("IssuedCertificate", { ...ic, status: originalFinishedStatus(ic) });
    return e;
  }
  /** The original's cacerts for mesh/ic, signed 30 days before T0 (a 365-day certificate, far from its renewal). */
  const original = async (agentNamespace = NS) =>
    originalAgentTarget({ target: TARGET, agentNamespace, root: await rootCa(), hosts: [ISTIOD], bits: 2048, now: new Date(T0.getTime() - 30 * DAY_MS) });

  it("adopts the original's cacerts in one write (labels and stamp added, data untouched), says so, stays FINISHED; a spec change re-issues and replaces it", async () => {
    const o = await original();
    expect(o.caKeyPem).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    const e = migratedEnv(o.secret);
    const seeded = e.target()!;

    // First pass: the adoption, nothing else (no status write, no key).
    let result: unknown;
    expect(await writesOf(e, async () => { result = await e.reconcile(); })).toEqual([TARGET_REPLACE]);
    expect(result).toEqual(REQUEUE_NOW);
    const adopted = e.target()!;
    expect(adopted.type).toBe(ISSUED_SECRET_TYPE);
    expect(adopted.data).toEqual(seeded.data); // the PKCS#1 key and the empty key.pem included
    expect(adopted.data![ORIGINAL_EMPTY_KEY]).toBe("");
    expect(adopted.metadata.labels).toEqual({ [ORIGINAL_AGENT_LABEL]: NS, [ORIGINAL_CLUSTER_LABEL]: "", [MANAGED_BY_LABEL]: MANAGED_BY_VALUE });
    expect(stamp(adopted)).toEqual({ owner: KEY, revision: "0", fingerprint: await fingerprintOf(o.caKeyPem) });
    expect(adopted.metadata.resourceVersion).not.toBe(seeded.metadata.resourceVersion);
    expect(e.ic()!.status).toEqual({ observedGeneration: 1, state: "FINISHED" }); // as the original left it
    expect(e.events.events).toEqual([expect.objectContaining({ type: "Normal", reason: Reason.AdoptedOriginalSecret,
      message: "target secret istio-system/cacerts was written by Gloo Mesh's certificate agent for this IssuedCertificate " +
        "(label agent.certificates.mesh.gloo.solo.io=mesh); cert-agent manages it from now on, its data unchanged" })]);
    const line = (await e.logRecords()).find((r) => r.message === "adopted");
    expect(line).toMatchObject({ level: "info", namespace: NS, name: NAME, reason: Reason.AdoptedOriginalSecret, detail: expect.stringMatching(/written by Gloo Mesh's certificate agent/) });

    // Then it is our own: the policy chain reads the PKCS#1 RSA-2048 key, the SANs and the validity, and
    // FINISHED sleeps until the renewal time of the original's certificate.
    expect(await writesOf(e, async () => { result = await e.reconcile(); })).toEqual([]);
    expect(e.state()).toBe("FINISHED");
    const renewsInMs = (result as { requeueAfterMs: number }).requeueAfterMs;
    expect(renewsInMs).toBeGreaterThan((365 * (2 / 3) - 30 - 1) * DAY_MS);
    expect(renewsInMs).toBeLessThanOrEqual((365 * (2 / 3) - 30) * DAY_MS);
    expect((await e.metrics.ready.get()).values.find((v) => v.labels.name === NAME)?.value).toBe(1);
    expect(await e.keygenCount()).toBe(0);
    // A restart changes nothing: adopted once.
    e.restart();
    expect(await writesOf(e, () => e.reconcile())).toEqual([]);

    // A spec change is issued like any other and replaces the secret in one write: our four keys only.
    const ic = e.ic()!;
    await e.issuedCertificates.replace({ ...ic, spec: { ...ic.spec, hosts: [ISTIOD, "istiod.istio-system.svc"] } });
    expect(e.ic()!.metadata.generation).toBe(2);
    expect(await eventsOf(e, () => e.reconcile())).toEqual([["Normal", Reason.SpecChanged]]);
    expect(e.annotations()[REVISION_ANNOTATION]).toBe("1");
    await e.runUntil("REQUESTED");
    expect(e.target()).toEqual(adopted); // the original's certificate serves until ours is verified
    await e.sign();
    expect(await writesOf(e, () => e.reconcile())).toEqual([TARGET_REPLACE, IC_STATUS]);
    await e.runUntil("FINISHED");
    const replaced = e.target()!;
    expect(Object.keys(replaced.data!).sort()).toEqual(["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]);
    expect(secretText(replaced, CA_KEY)).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect((await importPrivateKeyPem(secretText(replaced, CA_KEY)!)).spec).toEqual({ algorithm: "RSA", bits: 2048 });
    expect(stamp(replaced)).toEqual({ owner: KEY, revision: "1", fingerprint: await fingerprintOf(secretText(replaced, CA_KEY)!) });
    expect(replaced.metadata.labels).toEqual(adopted.metadata.labels); // the original's labels stay
    expect(e.ic()!.status).toEqual({ observedGeneration: 2, state: "FINISHED", error: "" });
    expect(e.eventReasons()).toEqual([
      ["Normal", Reason.AdoptedOriginalSecret],
      ["Normal", Reason.SpecChanged],
      ["Normal", Reason.CertificateRequested],
      ["Normal", Reason.Issued],
      ["Normal", Reason.Finished],
    ]);
    expect(await e.keygenCount()).toBe(1);
  });

  it("a 409 on the adoption (the secret changed since it was read) only requeues, untouched; the next pass adopts", async () => {
    const e = migratedEnv((await original()).secret);
    const seeded = e.target()!;
    e.api.failNext({ kind: "Secret", verb: "replace", error: 409 });
    expect(await e.reconcile()).toEqual({ requeueAfterMs: 200 });
    expect(e.target()).toEqual(seeded);
    expect(e.events.events).toEqual([]);
    expect(await eventsOf(e, () => e.reconcile())).toEqual([["Normal", Reason.AdoptedOriginalSecret]]);
    expect(e.target()!.metadata.labels?.[MANAGED_BY_LABEL]).toBe(MANAGED_BY_VALUE);
  });

  it("once adopted, the policy chain applies: an ECDSA-P256 annotation re-issues the original's RSA certificate", async () => {
    const e = migratedEnv((await original()).secret, { annotations: { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" } });
    expect(await eventsOf(e, () => e.reconcile())).toEqual([["Normal", Reason.AdoptedOriginalSecret]]);
    expect(await eventsOf(e, () => e.reconcile())).toEqual([["Normal", Reason.KeyAlgorithmChanged]]);
    expect(e.events.events.at(-1)!.message).toBe("issuance revision 1: target secret istio-system/cacerts holds a RSA-2048 key, ECDSA-P256 is asked for; issuing with a new key");
    await e.runUntil("FINISHED");
    expect((await importPrivateKeyPem(secretText(e.target(), CA_KEY)!)).spec).toEqual({ algorithm: "ECDSA", curve: "P-256" });
    expect(e.target()!.data![ORIGINAL_EMPTY_KEY]).toBeUndefined();
  });

  // Look-alikes stay refused exactly as today: FAILED TargetSecretConflict, untouched, no key.
  const lookAlikes: [string, (s: Secret) => Secret][] = [
    ["labelled for another namespace (gloo-mesh, not the IssuedCertificate's mesh)", (s) => ({ ...s, metadata: { ...s.metadata, labels: { ...s.metadata.labels, [ORIGINAL_AGENT_LABEL]: "gloo-mesh" } } })],
    ["of another type (Opaque)", (s) => ({ ...s, type: "Opaque" })],
    ["without the agent label", (s) => ({ ...s, metadata: { ...s.metadata, labels: { [ORIGINAL_CLUSTER_LABEL]: "" } } })],
  ];
  it.each(lookAlikes)("a look-alike %s stays refused: FAILED TargetSecretConflict, untouched, no key", async (_name, edit) => {
    const e = migratedEnv(edit((await original()).secret));
    const seeded = e.target()!;
    expect(await writesOf(e, () => e.reconcile())).toEqual([IC_PATCH, IC_STATUS]);
    expect(e.state()).toBe("FAILED");
    expect(e.ic()!.status!.error).toBe("target secret istio-system/cacerts exists and is not managed by cert-agent; it was left untouched. " +
      "Delete it, or label it app.kubernetes.io/managed-by=cert-agent and give it type certificates.mesh.gloo.solo.io/issued_certificate to hand it over");
    expect(e.annotations()[FAILURE_REASON_ANNOTATION]).toBe(Reason.TargetSecretConflict);
    expect(e.eventReasons()).toEqual([["Warning", Reason.TargetSecretConflict]]);
    e.clock.advance(SETTINGS.conflictRecheckMs);
    expect(await writesOf(e, () => e.reconcile())).toEqual([]);
    expect(e.target()).toEqual(seeded);
    expect(await e.keygenCount()).toBe(0);
  });
});

describe("IssuedCertificateReconciler: clock skew (defect 1)", () => {
  it("waits for a certificate from an issuer whose clock is 2 s ahead, then writes it", async () => {
    const e = env();
    await e.runUntil("REQUESTED");
    await e.sign(NS, NAME, { clockOffsetMs: 2_000 });

    let result: unknown;
    expect(await writesOf(e, async () => {
      result = await e.reconcile();
    })).toEqual([]);
    expect(result).toEqual({ requeueAfterMs: 2_000 });
    expect(e.state()).toBe("REQUESTED");
    expect(e.target()).toBeUndefined();
    expect(e.events.events.at(-1)?.reason).toBe(Reason.CertificateRequested); // a wait is no transition
    const waiting = (await e.logRecords()).filter((r) => r.message === "waiting");
    expect(waiting).toEqual([expect.objectContaining({ namespace: NS, name: NAME, reason: Reason.WaitingForValidity })]);

    e.clock.advance(2_000);
    expect(await writesOf(e, () => e.reconcile())).toEqual([TARGET_CREATE, IC_STATUS]);
    expect(e.state()).toBe("ISSUED");
  });

  it("refuses a certificate from an issuer 10 minutes ahead (beyond the 5-minute tolerance): FAILED CertificateRejected NotYetValid", async () => {
    const e = env();
    await e.runUntil("REQUESTED");
    await e.sign(NS, NAME, { clockOffsetMs: 10 * 60_000 });

    let result: unknown;
    expect(await writesOf(e, async () => {
      result = await e.reconcile();
    })).toEqual([IC_PATCH, IC_STATUS]);
    expect(result).toEqual({ requeueAfterMs: FIRST_RETRY_MS });
    expect(e.state()).toBe("FAILED");
    expect(e.ic()!.status!.error).toMatch(/target secret left unchanged: NotYetValid: certificate is valid from/);
    expect(e.annotations()[FAILURE_REASON_ANNOTATION]).toBe(Reason.CertificateRejected);
    expect(e.eventReasons().at(-1)).toEqual(["Warning", Reason.CertificateRejected]);
    expect(e.target()).toBeUndefined();
  });
});

describe("IssuedCertificateReconciler: FAILED bookkeeping", () => {
  it("survives a restart: no retry before retry-after, a retry after it, a doubled delay on the second failure, a reset on a spec change", async () => {
    const e = env();
    await e.runUntil("REQUESTED");
    await e.sign(NS, NAME, { fail: "signing secret mesh/root-ca not found" });

    expect(await e.reconcile()).toEqual({ requeueAfterMs: FIRST_RETRY_MS });
    expect(e.state()).toBe("FAILED");
    expect(e.ic()!.status!.error).toBe("certificate request mesh.ic failed to be signed by Issuer: signing secret mesh/root-ca not found");
    expect(e.annotations()).toMatchObject({
      [FAILURES_ANNOTATION]: "1",
      [FAILURE_REASON_ANNOTATION]: Reason.IssuerFailed,
      [RETRY_AFTER_ANNOTATION]: new Date(T0.getTime() + FIRST_RETRY_MS).toISOString(),
      [REVISION_ANNOTATION]: "1",
    });
    expect(e.eventReasons().at(-1)).toEqual(["Warning", Reason.IssuerFailed]);

    // A new agent process: only what is stored tells it when to retry.
    e.restart();
    e.clock.advance(FIRST_RETRY_MS - 1);
    let result: unknown;
    expect(await writesOf(e, async () => {
      result = await e.reconcile();
    })).toEqual([]);
    expect(result).toEqual({ requeueAfterMs: 1 });
    expect(e.state()).toBe("FAILED");

    e.clock.advance(1);
    expect(await eventsOf(e, async () => expect(await e.reconcile()).toEqual(REQUEUE_NOW))).toEqual([["Normal", Reason.Retrying]]);
    expect(e.state()).toBe("PENDING");
    expect(e.annotations()).toMatchObject({ [REVISION_ANNOTATION]: "2", [FAILURES_ANNOTATION]: "1" });
    expect(e.annotations()[RETRY_AFTER_ANNOTATION]).toBeUndefined();

    // Second failure: twice the delay.
    await e.runUntil("REQUESTED");
    await e.sign(NS, NAME, { fail: "signing secret mesh/root-ca not found" });
    const failedAt = e.clock.now().getTime();
    expect(await e.reconcile()).toEqual({ requeueAfterMs: SECOND_RETRY_MS });
    expect(SECOND_RETRY_MS).toBe(2 * FIRST_RETRY_MS);
    expect(e.annotations()).toMatchObject({
      [FAILURES_ANNOTATION]: "2",
      [RETRY_AFTER_ANNOTATION]: new Date(failedAt + SECOND_RETRY_MS).toISOString(),
    });

    // A spec change starts over: no failures, no reason, no retry time; at once, not after the backoff.
    const ic = e.ic()!;
    await e.issuedCertificates.replace({ ...ic, spec: { ...ic.spec, certOptions: { ...ic.spec!.certOptions, ttlDays: 30 } } });
    expect(e.ic()!.metadata.generation).toBe(2);
    expect(await eventsOf(e, () => e.reconcile())).toEqual([["Normal", Reason.SpecChanged]]);
    expect(e.state()).toBe("PENDING");
    const annotations = e.annotations();
    expect(annotations[FAILURES_ANNOTATION]).toBeUndefined();
    expect(annotations[FAILURE_REASON_ANNOTATION]).toBeUndefined();
    expect(annotations[RETRY_AFTER_ANNOTATION]).toBeUndefined();
    expect(annotations[REVISION_ANNOTATION]).toBe("3");
    await e.runUntil("FINISHED");
    expect(e.ic()!.status).toEqual({ observedGeneration: 2, state: "FINISHED", error: "" });
  });
});

describe("IssuedCertificateReconciler: metrics", () => {
  it("defect 6: the expiry metric of a deleted IssuedCertificate is removed", async () => {
    const e = env();
    await e.runUntil("FINISHED");
    const series = async () => (await e.metrics.expiration.get()).values.filter((v) => v.labels.namespace === NS && v.labels.name === NAME);
    const notAfter = new Date(T0.getTime() + 365 * 24 * 3600_000);
    expect((await series()).map((v) => v.value)).toEqual([notAfter.getTime() / 1000]);

    await e.issuedCertificates.delete(NS, NAME);
    expect(await writesOf(e, async () => expect(await e.reconcile()).toBeUndefined())).toEqual([]);
    expect(await series()).toEqual([]);
    expect(e.request()).toBeUndefined(); // owned: collected
    expect(e.target()).toBeDefined(); // not owned: Istio still uses it
  });

  it("counts each transition by from (NONE for the first), to and reason, and logs Warnings at warn", async () => {
    const e = env();
    await e.reconcile(); // -> PENDING
    await e.reconcile(); // -> REQUESTED
    await e.sign(NS, NAME, { fail: "issuer down" });
    await e.reconcile(); // -> FAILED (Warning)
    const counts = (await e.metrics.transitions.get()).values.map((v) => [v.labels.from, v.labels.to, v.labels.reason, v.value]);
    expect(counts).toEqual([
      ["NONE", "PENDING", Reason.SpecChanged, 1],
      ["PENDING", "REQUESTED", Reason.CertificateRequested, 1],
      ["REQUESTED", "FAILED", Reason.IssuerFailed, 1],
    ]);
    const levels = (await e.logRecords()).filter((r) => r.message === "transition").map((r) => [r.reason, r.level]);
    expect(levels).toEqual([[Reason.SpecChanged, "info"], [Reason.CertificateRequested, "info"], [Reason.IssuerFailed, "warn"]]);
  });
});

describe("IssuedCertificateReconciler: objects that are not ours to process", () => {
  it("an IssuedCertificate without issuedCertificateSecret is skipped: no write, no Event, no requeue (Gloo Mesh skips it too)", async () => {
    const e = env();
    const ic = e.api.peek<IssuedCertificate>("IssuedCertificate", NS, NAME)!;
    delete ic.spec!.issuedCertificateSecret;
    e.api.seed("IssuedCertificate", ic);
    expect(await writesOf(e, async () => expect(await e.reconcile()).toBeUndefined())).toEqual([]);
    expect(e.events.events).toEqual([]);
    expect(e.ic()!.status).toBeUndefined();
  });

  it("one whose issuedCertificateSecret names nothing (an empty name) is not skipped in silence: FAILED InvalidSpec with a Warning, no key", async () => {
    const e = env({ issuedCertificate: { target: { name: "", namespace: "" } } });
    await e.reconcile(); // PENDING
    await e.reconcile();
    expect(e.ic()!.status).toMatchObject({ state: "FAILED", error: expect.stringMatching(/^invalid spec: spec.issuedCertificateSecret \(name "", namespace ""\) needs a valid name and namespace/) });
    expect(e.eventReasons()).toEqual([["Normal", Reason.SpecChanged], ["Warning", Reason.InvalidSpec]]);
    expect(e.api.peek<Secret>("Secret", NS, NAME)).toBeUndefined();
  });
});

describe("IssuedCertificateReconciler: cancellation", () => {
  const rows: [string, (e: ReconcilerEnv) => Promise<unknown>][] = [
    ["a new IssuedCertificate (bookkeeping patch)", async () => undefined],
    ["PENDING (staged key create)", (e) => e.reconcile()],
    ["REQUESTED with a signed answer (target write)", async (e) => {
      await e.runUntil("REQUESTED");
      await e.sign();
    }],
    ["ISSUED (staged key delete)", (e) => e.runUntil("ISSUED")],
    ["REQUESTED with an issuer failure (FAILED bookkeeping)", async (e) => {
      await e.runUntil("REQUESTED");
      await e.sign(NS, NAME, { fail: "no" });
    }],
  ];
  it.each(rows)("an already-aborted signal in %s performs no write and rejects", async (_name, given) => {
    const e = env();
    await given(e);
    const before = { writes: e.api.writes.length, state: e.state(), annotations: e.annotations() };
    const abort = new AbortController();
    abort.abort();
    await expect(e.reconcile(KEY, abort.signal)).rejects.toMatchObject({ name: "AbortError" });
    expect(e.api.writes.slice(before.writes)).toEqual([]);
    expect(e.state()).toBe(before.state);
    expect(e.annotations()).toEqual(before.annotations);
  });

  it("a new IssuedCertificate reconciled with an aborted signal leaves the write log empty", async () => {
    const e = env();
    const abort = new AbortController();
    abort.abort();
    await expect(e.reconcile(KEY, abort.signal)).rejects.toMatchObject({ name: "AbortError" });
    expect(e.api.writes).toEqual([]);
    expect(e.events.events).toEqual([]);
  });
});

describe("IssuedCertificateReconciler: the hand-off to the pod bouncer", () => {
  const DIRECTIVE = { namespace: NS, name: "istio-pods" };
  const WHERE = `PodBounceDirective ${NS}/istio-pods`;
  const playBouncer = async (e: ReconcilerEnv, outcome: string, message: string) => {
    await e.directives.patchAnnotations(NS, "istio-pods", { [BOUNCE_PROGRESS_ANNOTATION]: JSON.stringify({ cycle: `${KEY}#1`, outcome, message }) });
  };

  it("ISSUED asks for a bounce, shows what the bouncer waits for in status (once per message), and FINISHED clears it", async () => {
    const e = env({ issuedCertificate: { podBounceDirective: DIRECTIVE } });
    e.api.seed("PodBounceDirective", podBounceDirective("istio-pods", NS, [{ namespace: "istio-system", labels: { app: "istiod" }, waitForReplicas: 1 }]));
    await e.runUntil("ISSUED");

    expect(await e.reconcile()).toEqual({ requeueAfterMs: SETTINGS.resyncMs });
    const request = JSON.parse(e.api.peek<PodBounceDirective>("PodBounceDirective", NS, "istio-pods")!.metadata.annotations![BOUNCE_REQUEST_ANNOTATION]);
    expect(request).toEqual({ cycle: `${KEY}#1`, requestedAt: T0.toISOString() });

    // The bouncer has not written any progress yet.
    expect(await writesOf(e, () => e.reconcile())).toEqual([IC_STATUS]);
    expect(e.ic()!.status).toMatchObject({ state: "ISSUED", error: `pods of ${WHERE} being restarted: the bouncer has not started` });

    await playBouncer(e, "waiting", "pods in istio-system with app=istiod: 0 of 1 replacement pods Ready");
    expect(await writesOf(e, () => e.reconcile())).toEqual([IC_STATUS]);
    expect(e.ic()!.status).toMatchObject({ state: "ISSUED", error: `pods of ${WHERE} being restarted: pods in istio-system with app=istiod: 0 of 1 replacement pods Ready` });
    // The same wait again: no status write (a status write wakes the watch; that must not loop).
    expect(await writesOf(e, () => e.reconcile())).toEqual([]);

    await playBouncer(e, "done", "every selector bounced");
    await e.reconcile();
    expect(e.ic()!.status).toEqual({ observedGeneration: 1, state: "FINISHED", error: "" });
    expect(e.events.events.at(-1)).toMatchObject({ reason: Reason.Finished, message: `certificate issued; the pods of ${WHERE} were restarted` });
  });
});

describe("IssuedCertificateReconciler: renewal before expiry", () => {
  const gauge = async (e: ReconcilerEnv, metric: "ready" | "renewal") =>
    (await e.metrics[metric].get()).values.find((v) => v.labels.namespace === NS && v.labels.name === NAME)?.value;
  /** Issues, then returns how long FINISHED asked to sleep (until the renewal time). */
  async function finished(e: ReconcilerEnv): Promise<number> {
    await e.runUntil("FINISHED");
    const result = await e.reconcile();
    return (result as { requeueAfterMs: number }).requeueAfterMs;
  }

  it("a 365-day certificate renews on its renewal day and not a millisecond before, with a new key; the old secret serves until the new one is verified", async () => {
    const e = env();
    const sleepMs = await finished(e);
    expect(sleepMs).toBeGreaterThan(242 * DAY_MS);
    expect(sleepMs).toBeLessThanOrEqual(365 * DAY_MS * (2 / 3));
    expect(await gauge(e, "renewal")).toBeCloseTo((T0.getTime() + sleepMs) / 1000, 2);
    expect(await gauge(e, "ready")).toBe(1);
    const before = e.target()!;

    e.clock.advance(sleepMs - 1);
    expect(await writesOf(e, () => e.reconcile())).toEqual([]);
    e.clock.advance(1);
    expect(await eventsOf(e, () => e.reconcile())).toEqual([["Normal", Reason.Renewing]]);
    expect(e.state()).toBe("PENDING");
    expect(e.annotations()[REVISION_ANNOTATION]).toBe("2");

    // Until the new certificate is verified and written, the target is untouched and still ready.
    await e.reconcile(); // PENDING -> REQUESTED
    expect(e.target()).toEqual(before);
    expect(await gauge(e, "ready")).toBe(1);
    await e.runUntil("FINISHED");
    const after = e.target()!;
    expect(stamp(after).revision).toBe("2");
    expect(await fingerprintOf(secretText(after, CA_KEY)!)).not.toBe(await fingerprintOf(secretText(before, CA_KEY)!));
    // The next renewal is a lifetime later (less its own jitter).
    const next = await e.reconcile();
    expect((next as { requeueAfterMs: number }).requeueAfterMs).toBeGreaterThan(242 * DAY_MS);
  });

  it("the renewal time is recorded with the write (ISSUED), the same the FINISHED pass then sleeps until", async () => {
    const e = env();
    await e.runUntil("ISSUED");
    const recorded = await gauge(e, "renewal");
    expect(recorded).toBeDefined();
    const sleepMs = await finished(e);
    expect(recorded).toBeCloseTo((T0.getTime() + sleepMs) / 1000, 2);
  });

  it("the renewal time survives a restart: a new reconciler derives the same time from the certificate", async () => {
    const e = env();
    const sleepMs = await finished(e);
    e.clock.advance(100 * DAY_MS);
    e.restart();
    expect(await e.reconcile()).toEqual({ requeueAfterMs: sleepMs - 100 * DAY_MS });
    e.clock.advance(sleepMs - 100 * DAY_MS);
    e.restart();
    await e.reconcile();
    expect(e.events.events.at(-1)!.reason).toBe(Reason.Renewing);
  });

  it("found past its renewal time (the agent was down, or the wall clock jumped) renews at once with a Warning", async () => {
    const e = env();
    const sleepMs = await finished(e);
    e.clock.advance(sleepMs + 3 * DAY_MS);
    await e.reconcile();
    const event = e.events.events.at(-1)!;
    expect([event.type, event.reason]).toEqual(["Warning", Reason.RenewalOverdue]);
    expect(event.message).toMatch(/^issuance revision 2: the certificate in target secret istio-system\/cacerts \(valid until \S+\) was due for renewal at \S+, 4320 min ago; renewing now$/);
  });

  it("found expired renews at once with a Warning, and is not ready until the new one is written", async () => {
    const e = env();
    await finished(e);
    e.clock.advance(366 * DAY_MS);
    await e.reconcile();
    expect(e.events.events.at(-1)!).toMatchObject({ type: "Warning", reason: Reason.CertificateExpired });
    expect(await gauge(e, "ready")).toBe(0);
    await e.runUntil("FINISHED");
    await e.reconcile();
    expect(await gauge(e, "ready")).toBe(1);
  });

  it("a renewal that keeps failing backs off like FAILED while the old certificate keeps serving", async () => {
    const e = env();
    const sleepMs = await finished(e);
    const before = e.target()!;
    e.clock.advance(sleepMs);
    await e.reconcile(); // Renewing -> PENDING
    await e.reconcile(); // REQUESTED
    await e.sign(NS, NAME, { fail: "issuer down" });
    expect(await e.reconcile()).toEqual({ requeueAfterMs: FIRST_RETRY_MS });
    expect(e.state()).toBe("FAILED");
    expect(e.target()).toEqual(before);
    expect(await gauge(e, "ready")).toBe(1);
    e.clock.advance(FIRST_RETRY_MS);
    await e.reconcile(); // retry: a new issuance
    await e.reconcile(); // REQUESTED
    await e.sign(NS, NAME, { fail: "issuer down" });
    expect(await e.reconcile()).toEqual({ requeueAfterMs: SECOND_RETRY_MS });
    expect(e.target()).toEqual(before);
  });
});

describe("IssuedCertificateReconciler: API errors a retry does not cure go FAILED (defect 3)", () => {
  const NAMESPACE_MISSING = `namespace istio-system of the target secret does not exist (create Secret istio-system/cacerts: ` +
    `404: namespaces "istio-system" not found); nothing was written: the target secret is written whole, in one request; ` +
    "create it or change spec.issuedCertificateSecret";
  /** What the API server answers a create in a namespace that does not exist. */
  const namespaceMissing = () => new FakeApiError(404, `namespaces "${TARGET.namespace}" not found`);
  const targetCreate = { kind: "Secret", verb: "create", namespace: TARGET.namespace, name: TARGET.name } as const;

  /** Runs the issuance up to the signed answer, then the write pass (which the fault makes fail). */
  async function failTheWrite(e: ReconcilerEnv): Promise<{ result: unknown; writes: WriteRecord[] }> {
    await e.runUntil("REQUESTED");
    await e.sign();
    let result: unknown;
    const writes = await writesOf(e, async () => { result = await e.reconcile(); });
    return { result, writes };
  }

  it("a target namespace that does not exist: FAILED TargetNamespaceMissing with a Warning Event and a log line, retried with the FAILED backoff (no hot loop); once it exists the retry finishes", async () => {
    const e = env();
    e.api.failNext({ ...targetCreate, error: namespaceMissing(), times: 2 });

    const { result, writes } = await failTheWrite(e);
    expect(writes).toEqual([IC_PATCH, IC_STATUS]);
    expect(result).toEqual({ requeueAfterMs: FIRST_RETRY_MS });
    expect(e.ic()!.status).toEqual({ observedGeneration: 1, state: "FAILED", error: NAMESPACE_MISSING });
    expect(e.annotations()).toMatchObject({
      [FAILURES_ANNOTATION]: "1",
      [FAILURE_REASON_ANNOTATION]: Reason.TargetNamespaceMissing,
      [RETRY_AFTER_ANNOTATION]: new Date(T0.getTime() + FIRST_RETRY_MS).toISOString(),
    });
    expect(e.events.events.at(-1)).toMatchObject({ type: "Warning", reason: Reason.TargetNamespaceMissing, message: NAMESPACE_MISSING });
    const line = (await e.logRecords()).filter((r) => r.message === "transition").at(-1);
    expect(line).toMatchObject({ level: "warn", from: "REQUESTED", to: "FAILED", reason: Reason.TargetNamespaceMissing, detail: NAMESPACE_MISSING });
    expect(e.target()).toBeUndefined();

    // The status write wakes the watch: that pass (and any before the retry time) writes nothing.
    expect(await writesOf(e, async () => expect(await e.reconcile()).toEqual({ requeueAfterMs: FIRST_RETRY_MS }))).toEqual([]);

    // The retry meets the same answer: the second failure waits twice as long.
    e.clock.advance(FIRST_RETRY_MS);
    expect(await eventsOf(e, () => e.reconcile())).toEqual([["Normal", Reason.Retrying]]);
    const second = await failTheWrite(e);
    expect(second.result).toEqual({ requeueAfterMs: SECOND_RETRY_MS });
    expect(e.annotations()).toMatchObject({ [FAILURES_ANNOTATION]: "2", [FAILURE_REASON_ANNOTATION]: Reason.TargetNamespaceMissing });

    // The namespace exists now: the next retry writes the target and finishes.
    e.clock.advance(SECOND_RETRY_MS);
    await e.runUntil("FINISHED");
    expect(Object.keys(e.target()!.data!).sort()).toEqual(["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]);
    expect(e.annotations()[FAILURES_ANNOTATION]).toBeUndefined();
    expect(e.annotations()[FAILURE_REASON_ANNOTATION]).toBeUndefined();
  });

  // Each refusal at the step where it happens: FAILED at once with its reason, and what the request was.
  const rows: [string, (e: ReconcilerEnv) => Promise<void>, Fault, Reason, RegExp][] = [
    ["413 (etcd: request is too large) on the target create", async (e) => { await e.runUntil("REQUESTED"); await e.sign(); },
      { ...targetCreate, error: new FakeApiError(413, "etcdserver: request is too large") }, Reason.APIRequestRefused,
      /^the API server refused create Secret istio-system\/cacerts \(create Secret istio-system\/cacerts: 413: etcdserver: request is too large\); nothing was written: the target secret is written whole, in one request$/],
    ["422 (invalid) on the target create", async (e) => { await e.runUntil("REQUESTED"); await e.sign(); },
      { ...targetCreate, error: 422 }, Reason.APIRequestRefused, /^the API server refused create Secret istio-system\/cacerts \(.*422: injected 422.*\); nothing was written/],
    ["403 on the CertificateRequest create", async () => undefined,
      { kind: "CertificateRequest", verb: "create", error: 403 }, Reason.APIRequestForbidden,
      /^the API server forbids create CertificateRequest mesh\/ic \(.*403: .*\); check the agent's RBAC, or whether the namespace is being deleted$/],
    // After a restart nothing is held: the pass reads the target from the API server.
    ["403 on reading the target secret", async (e) => e.restart(),
      { kind: "Secret", verb: "get", namespace: TARGET.namespace, name: TARGET.name, error: 403 }, Reason.APIRequestForbidden,
      /^the API server forbids get Secret istio-system\/cacerts \(get Secret istio-system\/cacerts: 403: injected 403 on get secrets "cacerts"\); check/],
  ];
  it.each(rows)("%s: FAILED with its reason, a Warning Event, the FAILED backoff", async (_name, arrange, fault, reason, message) => {
    const e = env();
    await e.reconcile(); // PENDING
    await arrange(e);
    const before = e.target();
    e.api.failNext({ ...fault, times: 100 });

    let result: unknown;
    const writes = await writesOf(e, async () => { result = await e.reconcile(); });
    expect(writes.slice(-2)).toEqual([IC_PATCH, IC_STATUS]);
    expect(result).toEqual({ requeueAfterMs: FIRST_RETRY_MS });
    expect(e.state()).toBe("FAILED");
    expect(e.ic()!.status!.error).toMatch(message);
    expect(e.annotations()).toMatchObject({ [FAILURES_ANNOTATION]: "1", [FAILURE_REASON_ANNOTATION]: reason });
    expect(e.events.events.at(-1)).toMatchObject({ type: "Warning", reason });
    expect(e.target()).toEqual(before);
    // Woken by its own status write, still refused: it waits for the retry time, writing nothing.
    expect(await writesOf(e, async () => expect(await e.reconcile()).toEqual({ requeueAfterMs: FIRST_RETRY_MS }))).toEqual([]);
  });

  it("a 413 on the target replace of a renewal: FAILED APIRequestRefused, the old target untouched and serving", async () => {
    const e = env();
    await e.runUntil("FINISHED");
    const before = e.target()!;
    e.clock.advance(300 * DAY_MS); // past the renewal time of the 365-day certificate
    await e.reconcile(); // Renewing -> PENDING
    await e.runUntil("REQUESTED");
    await e.sign();
    e.api.failNext({ kind: "Secret", verb: "replace", namespace: TARGET.namespace, name: TARGET.name, error: new FakeApiError(413, "etcdserver: request is too large") });
    expect(await e.reconcile()).toEqual({ requeueAfterMs: FIRST_RETRY_MS });
    expect(e.state()).toBe("FAILED");
    expect(e.ic()!.status!.error).toMatch(/^the API server refused replace Secret istio-system\/cacerts .*; nothing was written: the target secret is written whole, in one request$/);
    expect(e.target()).toEqual(before);
    expect((await e.metrics.ready.get()).values.find((v) => v.labels.name === NAME)?.value).toBe(1);
  });

  it(`transient errors (503) stay the controller's retry, and after ${API_FAILURES_BEFORE_FAILED} passes in a row go FAILED APIRequestFailed; a pass that works starts the count again`, async () => {
    const e = env();
    await e.runUntil("REQUESTED");
    await e.sign();
    e.api.failNext({ ...targetCreate, error: 503, times: 100 });
    for (let i = 1; i < API_FAILURES_BEFORE_FAILED; i++) {
      await expect(e.reconcile()).rejects.toMatchObject({ code: 503 });
      expect(e.state()).toBe("REQUESTED");
    }
    expect(await e.reconcile()).toEqual({ requeueAfterMs: FIRST_RETRY_MS });
    expect(e.state()).toBe("FAILED");
    expect(e.ic()!.status!.error).toMatch(new RegExp(`^create Secret istio-system/cacerts failed in ${API_FAILURES_BEFORE_FAILED} passes in a row, ` +
      "the last time with: create Secret istio-system/cacerts: 503: injected 503 .*; nothing was written"));
    expect(e.events.events.at(-1)).toMatchObject({ type: "Warning", reason: Reason.APIRequestFailed });

    // A pass that works in between starts the count again.
    const f = env();
    await f.runUntil("REQUESTED");
    await f.sign();
    f.api.failNext({ ...targetCreate, error: 503, times: API_FAILURES_BEFORE_FAILED - 1 });
    for (let i = 1; i < API_FAILURES_BEFORE_FAILED; i++) await expect(f.reconcile()).rejects.toMatchObject({ code: 503 });
    await f.runUntil("FINISHED");
    expect(f.annotations()[FAILURES_ANNOTATION]).toBeUndefined();
  });

  it("an error that is not the API server's (here the clock's) is thrown as it is, never counted towards FAILED", async () => {
    const e = env();
    await e.runUntil("REQUESTED");
    const now = jest.spyOn(e.clock, "now").mockImplementation(() => { throw new Error("clock broken"); });
    for (let i = 0; i < API_FAILURES_BEFORE_FAILED + 2; i++) await expect(e.reconcile()).rejects.toThrow("clock broken");
    now.mockRestore();
    expect(e.state()).toBe("REQUESTED");
    expect(e.annotations()[FAILURES_ANNOTATION]).toBeUndefined();
  });
});

describe("IssuedCertificateReconciler: a target at another IssuedCertificate's staged-key name (hostile review defect 5)", () => {
  /** IssuedCertificate istio-system/cacerts stages its key at istio-system/cacerts: mesh/ic's target. */
  const OTHER = `${TARGET.namespace}/${TARGET.name}`;
  const COLLISION = "target secret istio-system/cacerts is where IssuedCertificate istio-system/cacerts stages its private key; nothing was written there. " +
    "Change spec.issuedCertificateSecret (or rename that IssuedCertificate)";
  const seedOther = (e: ReconcilerEnv) => e.api.seed("IssuedCertificate", issuedCertificate({
    name: TARGET.name, namespace: TARGET.namespace, target: { name: "cacerts-other", namespace: TARGET.namespace },
    annotations: { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" },
  }));

  it("the IssuedCertificate whose target collides fails TargetSecretCollision before any key is made, naming the other; the other issues undisturbed; a new target issues", async () => {
    const e = env();
    seedOther(e);
    const results = [await e.reconcile(), await e.reconcile()];
    expect(results).toEqual([REQUEUE_NOW, { requeueAfterMs: SETTINGS.conflictRecheckMs }]);
    expect(e.writes).toEqual([IC_PATCH, IC_STATUS, IC_PATCH, IC_STATUS]); // PENDING, then FAILED: nothing else
    expect(e.ic()!.status).toEqual({ observedGeneration: 1, state: "FAILED", error: COLLISION });
    expect(e.annotations()).toMatchObject({ [FAILURES_ANNOTATION]: "1", [FAILURE_REASON_ANNOTATION]: Reason.TargetSecretCollision });
    expect(e.annotations()[RETRY_AFTER_ANNOTATION]).toBeUndefined(); // looked at again, not retried on a timer
    expect(e.eventReasons()).toEqual([["Normal", Reason.SpecChanged], ["Warning", Reason.TargetSecretCollision]]);
    expect(await e.keygenCount()).toBe(0);
    expect(e.target()).toBeUndefined();

    // Still colliding: looked at again later, nothing written.
    e.clock.advance(SETTINGS.conflictRecheckMs);
    expect(await writesOf(e, async () => expect(await e.reconcile()).toEqual({ requeueAfterMs: SETTINGS.conflictRecheckMs }))).toEqual([]);

    // The other one issues undisturbed: the Secret at its staged-key name is its own key.
    await e.runUntil("FINISHED", { key: OTHER });
    expect(e.api.peek<Secret>("Secret", TARGET.namespace, "cacerts-other")).toBeDefined();
    expect(e.state()).toBe("FAILED");

    // mesh/ic gets a target of its own: issued.
    const ic = e.ic()!;
    await e.issuedCertificates.replace({ ...ic, spec: { ...ic.spec, issuedCertificateSecret: { name: "cacerts-mesh", namespace: TARGET.namespace } } });
    await e.runUntil("FINISHED");
    expect(stamp(e.api.peek<Secret>("Secret", TARGET.namespace, "cacerts-mesh"))).toMatchObject({ owner: KEY, revision: "2" });
  });

  it("its target written before the other IssuedCertificate existed: it fails at its next pass, the target left in place, and the other's conflict names it", async () => {
    const e = env();
    await e.runUntil("FINISHED");
    const target = e.target()!;
    seedOther(e);

    expect(await eventsOf(e, () => e.reconcile())).toEqual([["Warning", Reason.TargetSecretCollision]]);
    expect(e.state()).toBe("FAILED");
    expect(e.target()).toEqual(target);

    await e.reconcile(OTHER); // new -> PENDING
    await e.reconcile(OTHER); // the Secret at its staged-key name is mesh/ic's target
    expect(e.ic(OTHER)!.status).toMatchObject({ state: "FAILED", error: "secret istio-system/cacerts is the target secret of IssuedCertificate mesh/ic, " +
      "which collides with this IssuedCertificate's staged key; it was left untouched. mesh/ic now fails with TargetSecretCollision: " +
      "change its spec.issuedCertificateSecret, then delete this secret" });
    expect(e.target()).toEqual(target);
  });
});

describe("IssuedCertificateReconciler: a corrupted FINISHED target is re-issued (hostile review defect 6)", () => {
  const rows: [string, Record<string, string>, Reason, RegExp][] = [
    ["ca-cert.pem and ca-key.pem replaced with garbage", { [CA_CERT]: "garbage", [CA_KEY]: "garbage" }, Reason.TargetSecretIncomplete,
      /^issuance revision 2: target secret istio-system\/cacerts: ca-cert.pem or ca-key.pem does not parse; issuing again$/],
    ["root-cert.pem replaced with garbage", { [ROOT_CERT]: "garbage" }, Reason.TargetSecretInvalid,
      /^issuance revision 2: target secret istio-system\/cacerts is not a CA istiod can use \(ca-cert.pem checked against root-cert.pem\): UntrustedChain: signing root: no PEM CERTIFICATE block found; issuing again$/],
    ["cert-chain.pem replaced with garbage", { [CERT_CHAIN]: "garbage" }, Reason.TargetSecretInvalid,
      /^issuance revision 2: target secret istio-system\/cacerts: cert-chain.pem is not ca-cert.pem followed by root-cert.pem; issuing again$/],
  ];
  it.each(rows)("%s: a Warning naming what is wrong, a new issuance, the target whole and valid again", async (_name, garbage, reason, message) => {
    const e = env();
    await e.runUntil("FINISHED");
    const old = e.target()!;
    e.api.seed("Secret", { ...old, data: { ...old.data, ...Object.fromEntries(Object.entries(garbage).map(([k, v]) => [k, b64(v)])) } });

    expect(await eventsOf(e, () => e.reconcile())).toEqual([["Warning", reason]]);
    expect(e.events.events.at(-1)!.message).toMatch(message);
    expect(e.state()).toBe("PENDING");
    expect((await e.metrics.ready.get()).values.find((v) => v.labels.name === NAME)?.value).toBe(0);
    await e.runUntil("FINISHED");
    expect(stamp(e.target())).toMatchObject({ owner: KEY, revision: "2" });
    // Whole and valid: FINISHED sleeps until its renewal, serving.
    expect(await eventsOf(e, async () => expect(await e.reconcile()).toEqual({ requeueAfterMs: expect.any(Number) }))).toEqual([]);
    expect((await e.metrics.ready.get()).values.find((v) => v.labels.name === NAME)?.value).toBe(1);
  });
});
