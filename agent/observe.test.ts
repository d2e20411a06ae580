// observe(), the gather step, on the in-memory API: which objects each state reads, and how each kind
// of target, staged key, CertificateRequest and PodBounceDirective is summarised (with the exact words
// an operator later reads in status and Events). Objects come from a real issuance (the reconciler env
// with the reference signer) and are then broken on purpose.
import { certificateRequest, encodeBytes, issuedCertificate, podBounceDirective } from "../shared/api/builders";
import { FakeApiError } from "../shared/kube/fake";
import { ApiRequestError } from "./api-failures";
import type { CertificateRequestStatus, IssuedCertificate, IssuedCertificateState, ObjectRef, PodBounceDirective } from "../shared/api/types";
import type { Secret } from "../shared/kube/secrets";
import { CertificateVerificationError } from "../shared/pki";
import {
  BOUNCE_PROGRESS_ANNOTATION,
  BOUNCE_REQUEST_ANNOTATION,
  CA_CERT,
  CA_KEY,
  CERT_CHAIN,
  KEY_FINGERPRINT_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  ORIGINAL_AGENT_LABEL,
  PRIVATE_KEY_SECRET_KEY,
  ROOT_CERT,
} from "./constants";
import { IssuanceStamp, stampAnnotations } from "./issuance";
import { observe, Observed, Readers, SUMMARY_REUSE_MS, TargetSummaries, type TargetSummary } from "./observe";
import { adoptedTargetSecret, bundleData, CaBundle, stagedKeySecret } from "./secrets";
import { createRootCa, Misbehaviour, RootCa, signIntermediate } from "../e2e/issuer/sign";
import { buildCertChain, buildCsr, exportPrivateKeyPem, generateKeyPair } from "../shared/pki";
import { originalAgentTarget } from "./testing/original-agent";
import { InvalidSpecError } from "./spec";
import { fingerprintOf, KEY, NAME, newEnv, NS, ReconcilerEnv, rootCa, secretText, SETTINGS, TARGET } from "./testing/reconciler-env";

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");
const GARBAGE_PEM = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
const GARBAGE_KEY_PEM = "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5IGF0IGFsbA==\n-----END PRIVATE KEY-----\n";
const WHERE = `target secret ${TARGET.namespace}/${TARGET.name}`;

const directivesOf = (e: ReconcilerEnv) => e.api.client<PodBounceDirective>("PodBounceDirective");
const readers = (e: ReconcilerEnv, withDirectives = true): Readers => ({
  // Copies, so that a spy on a reader never touches the env's clients.
  secrets: { ...e.secrets },
  certificateRequests: { ...e.certificateRequests },
  issuedCertificates: { ...e.issuedCertificates },
  ...(withDirectives ? { directives: directivesOf(e) } : {}),
});

/** The stored IssuedCertificate as the reconciler would see it in `state` (undefined: never reconciled, no status). */
function icIn(e: ReconcilerEnv, state: IssuedCertificateState | undefined, edit: (ic: IssuedCertificate) => void = () => {}): IssuedCertificate {
  const ic = e.ic()!;
  if (state === undefined) delete ic.status;
  else ic.status = { observedGeneration: ic.metadata.generation, error: "", ...ic.status, state };
  edit(ic);
  return ic;
}

const observeAs = (e: ReconcilerEnv, ic: IssuedCertificate, r: Readers = readers(e)): Promise<Observed> =>
  observe(ic, r, { now: e.clock.now(), clockSkewToleranceMs: SETTINGS.clockSkewToleranceMs });

/** Replaces the stored Secret ns/name with `edit` applied to it. */
function editSecret(e: ReconcilerEnv, ns: string, name: string, edit: (s: Secret) => void): void {
  const s = e.api.peek<Secret>("Secret", ns, name)!;
  edit(s);
  e.api.seed("Secret", s);
}

beforeAll(async () => {
  await rootCa();
});

describe("observe: what each state reads", () => {
  // An issuance in REQUESTED whose request is answered: staged key, request and target all exist.
  let e: ReconcilerEnv;
  beforeAll(async () => {
    e = newEnv();
    await e.runUntil("REQUESTED");
    await e.sign();
  });

  it.each<[string, IssuedCertificateState | undefined, { staged: boolean; request: boolean; verdict: boolean }]>([
    ["never reconciled (no status): the target only (a new issuance begins whatever the rest holds)", undefined, { staged: false, request: false, verdict: false }],
    ["PENDING", "PENDING", { staged: true, request: true, verdict: false }],
    ["REQUESTED", "REQUESTED", { staged: true, request: true, verdict: true }],
    ["FAILED (the staged key only: a Secret in the way may have gone)", "FAILED", { staged: true, request: false, verdict: false }],
    ["ISSUED (the target only)", "ISSUED", { staged: false, request: false, verdict: false }],
    ["FINISHED (the target only)", "FINISHED", { staged: false, request: false, verdict: false }],
  ])("%s", async (_name, state, reads) => {
    const o = await observeAs(e, icIn(e, state));
    expect(o.target).toEqual({ state: "missing" });
    expect({ staged: o.staged !== undefined, request: o.request !== undefined, verdict: o.verdict !== undefined }).toEqual(reads);
    expect({ staged: o.raw.staged !== undefined, request: o.raw.request !== undefined }).toEqual({ staged: reads.staged, request: reads.request });
    if (reads.staged) expect(o.staged?.state).toBe("ready");
    if (reads.request) expect(o.request).toMatchObject({ state: "present", answer: "finished" });
  });

  it("an invalid spec reads nothing and carries the InvalidSpecError", async () => {
    const r = readers(e);
    const get = jest.spyOn(r.secrets, "get");
    const o = await observeAs(e, icIn(e, "PENDING", (ic) => { ic.spec!.hosts = []; }), r);
    expect(get).not.toHaveBeenCalled();
    expect(o.intent).toBeInstanceOf(InvalidSpecError);
    expect(o).toMatchObject({ raw: {}, target: { state: "missing" } });
    expect(o.staged).toBeUndefined();
  });
});

describe("observe: the verdict on the issuer's answer", () => {
  it("REQUESTED with our key ready and a FINISHED answer: the certificate verifies", async () => {
    const e = newEnv();
    await e.runUntil("REQUESTED");
    await e.sign();
    const o = await observeAs(e, icIn(e, "REQUESTED"));
    expect(o.verdict).toMatchObject({ ok: true, certificate: { keyDescription: "ECDSA-P256" } });
  });

  it("REQUESTED with a certificate for another key: the verdict is the verification error, not an exception", async () => {
    const e = newEnv();
    await e.runUntil("REQUESTED");
    await e.sign(NS, NAME, { misbehave: "wrong-key" });
    const o = await observeAs(e, icIn(e, "REQUESTED"));
    expect(o.verdict?.ok).toBe(false);
    const error = (o.verdict as { error: CertificateVerificationError }).error;
    expect(error).toBeInstanceOf(CertificateVerificationError);
    expect(error.reason).toBe("PublicKeyMismatch");
  });

  // Each row breaks one of the conditions; none of them may verify anything.
  it.each<[string, (e: ReconcilerEnv) => Promise<IssuedCertificateState>]>([
    ["the issuer has not answered yet", async () => "REQUESTED"],
    ["the issuer answered FAILED", async (e) => { await e.sign(NS, NAME, { fail: "no signing key" }); return "REQUESTED"; }],
    ["the answer is FINISHED but the state is PENDING", async (e) => { await e.sign(); return "PENDING"; }],
    ["the staged key is gone", async (e) => { await e.sign(); await e.secrets.delete(NS, NAME); return "REQUESTED"; }],
    ["the staged key does not import", async (e) => {
      await e.sign();
      editSecret(e, NS, NAME, (s) => { s.data = { [PRIVATE_KEY_SECRET_KEY]: b64(GARBAGE_KEY_PEM) }; });
      return "REQUESTED";
    }],
    ["the request is gone", async (e) => { await e.sign(); await e.certificateRequests.delete(NS, NAME); return "REQUESTED"; }],
  ])("no verdict when %s", async (_name, arrange) => {
    const e = newEnv();
    await e.runUntil("REQUESTED");
    const state = await arrange(e);
    const o = await observeAs(e, icIn(e, state));
    expect(o.verdict).toBeUndefined();
  });
});

describe("observe: the target secret", () => {
  let e: ReconcilerEnv;
  beforeEach(async () => {
    e = newEnv();
    await e.runUntil("FINISHED");
  });
  const targetStamp = (): IssuanceStamp => {
    const a = e.target()!.metadata.annotations!;
    return { owner: KEY, revision: 1, fingerprint: a[KEY_FINGERPRINT_ANNOTATION] };
  };
  const editTarget = (edit: (s: Secret) => void) => editSecret(e, TARGET.namespace, TARGET.name, edit);
  const observeTarget = async () => (await observeAs(e, icIn(e, "FINISHED"))).target;

  it("ours and whole: valid, with the stamp, the CA certificate, its key type, its SANs and its validity", async () => {
    const caCertPem = secretText(e.target(), CA_CERT)!;
    expect(await observeTarget()).toEqual({
      state: "valid",
      stamp: targetStamp(),
      caCertPem,
      keyDescription: "ECDSA-P256",
      sanKeys: ["uri:spiffe://cluster.local/ns/istio-system/sa/istiod"],
      notBefore: expect.any(Date),
      notAfter: expect.any(Date),
      rootCertPem: secretText(e.target(), ROOT_CERT)!,
      rootShas: [expect.stringMatching(/^[0-9a-f]{64}$/)],
    });
    const t = (await observeTarget()) as { notBefore: Date; notAfter: Date };
    expect(t.notAfter.getTime() - t.notBefore.getTime()).toBe(365 * 24 * 3600 * 1000);
  });

  it("gone: missing", async () => {
    await e.secrets.delete(TARGET.namespace, TARGET.name);
    expect(await observeTarget()).toEqual({ state: "missing" });
  });

  it("no longer labelled as ours: foreign, with the conflict an operator reads", async () => {
    editTarget((s) => { delete s.metadata.labels![MANAGED_BY_LABEL]; });
    expect(await observeTarget()).toEqual({
      state: "foreign",
      message: `${WHERE} exists and is not managed by cert-agent; it was left untouched. ` +
        "Delete it, or label it app.kubernetes.io/managed-by=cert-agent and give it type certificates.mesh.gloo.solo.io/issued_certificate to hand it over",
    });
  });

  it.each<[string, (s: Secret) => void | Promise<void>, string]>([
    ["without ca-key.pem", (s) => { delete s.data![CA_KEY]; }, `${WHERE} lacks ca-key.pem`],
    ["without ca-key.pem and root-cert.pem", (s) => { delete s.data![CA_KEY]; delete s.data![ROOT_CERT]; }, `${WHERE} lacks ca-key.pem, root-cert.pem`],
    ["without any key", (s) => { s.data = {}; }, `${WHERE} lacks ca-cert.pem, ca-key.pem, cert-chain.pem, root-cert.pem`],
    ["with an empty cert-chain.pem", (s) => { s.data![CERT_CHAIN] = ""; }, `${WHERE} lacks cert-chain.pem`],
    ["with a ca-key.pem of another key", async (s) => { s.data![CA_KEY] = b64((await rootCa()).keyPem); },
      `${WHERE}: ca-key.pem does not match ca-cert.pem`],
    ["with a ca-cert.pem that does not parse", (s) => { s.data![CA_CERT] = b64(GARBAGE_PEM); }, `${WHERE}: ca-cert.pem or ca-key.pem does not parse`],
    ["with a ca-key.pem that does not parse", (s) => { s.data![CA_KEY] = b64(GARBAGE_KEY_PEM); }, `${WHERE}: ca-cert.pem or ca-key.pem does not parse`],
  ])("ours but %s: incomplete, saying what is wrong (never quoting the data)", async (_name, edit, message) => {
    const stamp = targetStamp();
    const s = e.target()!;
    await edit(s);
    e.api.seed("Secret", s);
    expect(await observeTarget()).toEqual({ state: "incomplete", stamp, message });
  });
});

describe("observe: the target Gloo Mesh's own agent wrote (a migration)", () => {
  const ISTIOD = "spiffe://cluster.local/ns/istio-system/sa/istiod";
  const original = async (agentNamespace = NS) =>
    originalAgentTarget({ target: TARGET, agentNamespace, root: await rootCa(), hosts: [ISTIOD], bits: 2048, now: new Date("2025-12-01T00:00:00Z") });
  const observeTarget = (e: ReconcilerEnv) => observeAs(e, icIn(e, "FINISHED", (ic) => { ic.spec!.certOptions!.rsaKeySizeBytes = 2048; })).then((o) => o.target);

  it("labelled with the IssuedCertificate's namespace: original, with the fingerprint of the certified key", async () => {
    const o = await original();
    const e = newEnv({ secrets: [o.secret] });
    expect(await observeTarget(e)).toEqual({ state: "original", fingerprint: await fingerprintOf(o.caKeyPem) });
  });

  it.each<[string, (data: Record<string, string>) => void]>([
    ["a ca-cert.pem that does not parse", (data) => { data[CA_CERT] = b64(GARBAGE_PEM); }],
    ["no ca-cert.pem", (data) => { delete data[CA_CERT]; }],
  ])("with %s: still original (adopted, then re-issued as incomplete), with no fingerprint", async (_what, edit) => {
    const o = await original();
    const data = { ...o.secret.data };
    edit(data);
    const e = newEnv({ secrets: [{ ...o.secret, data }] });
    expect(await observeTarget(e)).toEqual({ state: "original", fingerprint: "" });
  });

  it("labelled with another namespace: foreign, as before", async () => {
    const e = newEnv({ secrets: [(await original("gloo-mesh")).secret] });
    expect(await observeTarget(e)).toMatchObject({ state: "foreign", message: expect.stringMatching(/is not managed by cert-agent; it was left untouched/) });
  });

  it("once adopted, its PKCS#1 RSA key (BEGIN RSA PRIVATE KEY) is read by the target checks: valid RSA-2048, revision 0", async () => {
    const o = await original();
    expect(o.caKeyPem).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    const stamp: IssuanceStamp = { owner: KEY, revision: 0, fingerprint: await fingerprintOf(o.caKeyPem) };
    const e = newEnv({ secrets: [adoptedTargetSecret(o.secret, stamp)] });
    expect(e.target()!.metadata.labels).toMatchObject({ [ORIGINAL_AGENT_LABEL]: NS, [MANAGED_BY_LABEL]: MANAGED_BY_VALUE });
    expect(await observeTarget(e)).toEqual({
      state: "valid",
      stamp,
      caCertPem: o.caCertPem,
      keyDescription: "RSA-2048",
      sanKeys: [`uri:${ISTIOD}`],
      notBefore: new Date("2025-12-01T00:00:00Z"),
      notAfter: new Date("2026-12-01T00:00:00Z"),
      rootCertPem: (await rootCa()).certPem,
      rootShas: [expect.stringMatching(/^[0-9a-f]{64}$/)],
    });
  });
});

describe("observe: the staged key", () => {
  let e: ReconcilerEnv;
  beforeEach(async () => {
    e = newEnv();
    await e.reconcile(); // PENDING, revision 1; no key yet
  });
  const STAMP: IssuanceStamp = { owner: KEY, revision: 1, fingerprint: "ab".repeat(32) };
  const stage = (pem: string | undefined) => {
    const s = stagedKeySecret(e.ic()!, pem ?? "", STAMP, undefined);
    if (pem === undefined) delete s.data;
    e.api.seed("Secret", s);
  };
  const observeStaged = async () => (await observeAs(e, e.ic()!)).staged;

  it("none yet: missing", async () => {
    expect(await observeStaged()).toEqual({ state: "missing" });
  });

  it("ours and importable: ready, with its stamp, PEM, key and the fingerprint of its public key", async () => {
    const pem = (await rootCa()).keyPem;
    stage(pem);
    expect(await observeStaged()).toEqual({
      state: "ready",
      stamp: STAMP,
      pem,
      key: expect.objectContaining({ spec: { algorithm: "ECDSA", curve: "P-256" } }),
      fingerprint: await fingerprintOf(pem),
    });
  });

  it.each<[string, string | undefined, string]>([
    ["without data", undefined, "staged key mesh/ic is empty"],
    ["with an empty private-key", "", "staged key mesh/ic is empty"],
    ["with a PEM that does not import", GARBAGE_KEY_PEM, "staged key mesh/ic cannot be imported"],
  ])("ours but %s: unreadable, with its stamp and the exact reason", async (_name, pem, message) => {
    stage(pem);
    expect(await observeStaged()).toEqual({ state: "unreadable", stamp: STAMP, message });
  });

  it("someone else's Secret at that name: foreign, with the conflict an operator reads", async () => {
    e.api.seed("Secret", { apiVersion: "v1", kind: "Secret", type: "Opaque", metadata: { name: NAME, namespace: NS }, data: {} });
    expect(await observeStaged()).toEqual({
      state: "foreign",
      message: "secret mesh/ic exists and is not a private key staged by cert-agent; it was left untouched. Delete it or rename the IssuedCertificate",
    });
  });
});

describe("observe: the CertificateRequest", () => {
  let e: ReconcilerEnv;
  beforeEach(async () => {
    e = newEnv();
    await e.reconcile(); // PENDING
  });
  const STAMP: IssuanceStamp = { owner: KEY, revision: 1, fingerprint: "ab".repeat(32) };
  /** Our request at `generation`, answered with `status` (none when undefined). */
  const seedRequest = (generation: number, status?: CertificateRequestStatus) => {
    const cr = certificateRequest(NAME, NS, "CSR PEM");
    cr.metadata = { ...cr.metadata, generation, annotations: stampAnnotations(STAMP) };
    e.api.seed("CertificateRequest", status ? { ...cr, status } : cr);
  };
  const observeRequest = async () => (await observeAs(e, e.ic()!)).request;

  it("none: missing", async () => {
    expect(await observeRequest()).toEqual({ state: "missing" });
  });

  it("not answered at all: pending, with no error, certificate or root", async () => {
    seedRequest(1);
    expect(await observeRequest()).toEqual({ state: "present", stamp: STAMP, answer: "pending", error: "", certificatePem: "", rootPem: "" });
  });

  it("answered FINISHED for its current generation: finished, with the certificate and the root as PEM", async () => {
    seedRequest(2, { observedGeneration: 2, state: "FINISHED", signedCertificate: encodeBytes("CERT PEM"), signingRootCa: encodeBytes("ROOT PEM") });
    expect(await observeRequest()).toEqual({ state: "present", stamp: STAMP, answer: "finished", error: "", certificatePem: "CERT PEM", rootPem: "ROOT PEM" });
  });

  it("answered FAILED: failed, with the issuer's error", async () => {
    seedRequest(1, { observedGeneration: 1, state: "FAILED", error: "signing key not found" });
    expect(await observeRequest()).toEqual({
      state: "present", stamp: STAMP, answer: "failed", error: "signing key not found", certificatePem: "", rootPem: "",
    });
  });

  it.each<[string, string, number, CertificateRequestStatus | undefined]>([
    ["no status", "pending", 1, undefined],
    ["a FINISHED status for an older generation (a stale answer to an older CSR)", "pending", 2, { observedGeneration: 1, state: "FINISHED" }],
    ["a FAILED status for an older generation", "pending", 2, { observedGeneration: 1, state: "FAILED", error: "old" }],
    ["a FINISHED status without observedGeneration", "pending", 1, { state: "FINISHED" }],
    ["a current status without a state", "pending", 1, { observedGeneration: 1 }],
    ["a current PENDING", "pending", 1, { observedGeneration: 1, state: "PENDING" }],
    ["a current FAILED", "failed", 1, { observedGeneration: 1, state: "FAILED" }],
    ["a current FINISHED", "finished", 1, { observedGeneration: 1, state: "FINISHED" }],
  ])("%s reads as the answer %j", async (_name, answer, generation, status) => {
    seedRequest(generation, status);
    expect(await observeRequest()).toMatchObject({ state: "present", answer });
  });
});

describe("observe: the PodBounceDirective", () => {
  let e: ReconcilerEnv;
  beforeEach(() => {
    e = newEnv();
  });
  const REQUEST = { cycle: `${KEY}#1`, requestedAt: "2026-01-01T00:00:00.000Z" };
  const PROGRESS = { cycle: `${KEY}#1`, outcome: "waiting", message: "0 of 1 replacement pods Ready" };
  const seedDirective = (namespace: string, annotations?: Record<string, string>) => {
    const d = podBounceDirective("istio-pods", namespace, [{ namespace: "istio-system", labels: { app: "istiod" } }]);
    if (annotations) d.metadata.annotations = annotations;
    e.api.seed("PodBounceDirective", d);
  };
  const naming = (ref: ObjectRef) => (ic: IssuedCertificate) => { ic.spec!.podBounceDirective = ref; };

  it("in ISSUED, a directive named without a namespace is looked up in the IssuedCertificate's, with the bouncer's hand-off read", async () => {
    seedDirective(NS, { [BOUNCE_REQUEST_ANNOTATION]: JSON.stringify(REQUEST), [BOUNCE_PROGRESS_ANNOTATION]: JSON.stringify(PROGRESS) });
    const o = await observeAs(e, icIn(e, "ISSUED", naming({ name: "istio-pods", namespace: "" })));
    expect(o.directive).toEqual({ state: "present", ref: { name: "istio-pods", namespace: NS }, request: REQUEST, progress: PROGRESS });
  });

  it("in ISSUED, a directive named in another namespace is looked up there", async () => {
    seedDirective("istio-system");
    seedDirective(NS, { [BOUNCE_REQUEST_ANNOTATION]: JSON.stringify(REQUEST) });
    const o = await observeAs(e, icIn(e, "ISSUED", naming({ name: "istio-pods", namespace: "istio-system" })));
    expect(o.directive).toEqual({ state: "present", ref: { name: "istio-pods", namespace: "istio-system" } });
  });

  it("in ISSUED, a named directive that does not exist is missing, with where it was looked for", async () => {
    const o = await observeAs(e, icIn(e, "ISSUED", naming({ name: "istio-pods", namespace: "" })));
    expect(o.directive).toEqual({ state: "missing", ref: { name: "istio-pods", namespace: NS } });
  });

  it.each<[string, IssuedCertificateState | undefined, boolean, boolean]>([
    ["ISSUED without a directive in the spec", "ISSUED", false, true],
    ["ISSUED without a directives client (bouncing not wired)", "ISSUED", true, false],
    ["never reconciled", undefined, true, true],
    ["PENDING", "PENDING", true, true],
    ["REQUESTED", "REQUESTED", true, true],
    ["FINISHED", "FINISHED", true, true],
    ["FAILED", "FAILED", true, true],
  ])("%s: the directive is not read", async (_name, state, named, withClient) => {
    seedDirective(NS, { [BOUNCE_REQUEST_ANNOTATION]: JSON.stringify(REQUEST) });
    const r = readers(e, withClient);
    const get = r.directives ? jest.spyOn(r.directives, "get") : undefined;
    const o = await observeAs(e, icIn(e, state, named ? naming({ name: "istio-pods", namespace: NS }) : () => {}), r);
    expect(o.directive).toBeUndefined();
    if (get) expect(get).not.toHaveBeenCalled();
  });
});

describe("observe with --secret-namespaces", () => {
  let e: ReconcilerEnv;
  beforeEach(async () => {
    e = newEnv();
    await e.reconcile(); // PENDING
  });
  const observeWith = (secretNamespaces: string[], r: Readers = readers(e)) =>
    observe(icIn(e, "PENDING"), r, { now: e.clock.now(), clockSkewToleranceMs: SETTINGS.clockSkewToleranceMs, secretNamespaces });

  it.each<[string, () => string[], () => string | undefined]>([
    ["both namespaces listed: nothing unwatched", () => [TARGET.namespace, icIn(e, "PENDING").metadata.namespace!], () => undefined],
    ["the target's missing: its namespace", () => [icIn(e, "PENDING").metadata.namespace!], () => TARGET.namespace],
    ["the IssuedCertificate's (staged key's) missing: its namespace", () => [TARGET.namespace], () => icIn(e, "PENDING").metadata.namespace],
  ])("%s", async (_name, listed, expected) => {
    expect((await observeWith(listed())).unwatchedNamespace).toBe(expected());
  });

  it("an unwatched namespace reads no Secret and no IssuedCertificate there (a Role elsewhere would make each a 403)", async () => {
    const r = readers(e);
    const fail = () => Promise.reject(new Error("must not be read"));
    r.secrets.get = fail;
    r.issuedCertificates.get = fail;
    const o = await observeWith([icIn(e, "PENDING").metadata.namespace!], r);
    expect(o).toMatchObject({ unwatchedNamespace: TARGET.namespace, target: { state: "missing" }, raw: {} });
    expect(o.staged).toBeUndefined();
  });
});

describe("observe: another IssuedCertificate whose staged key lives at the target's name (hostile review defect 5)", () => {
  let e: ReconcilerEnv;
  beforeEach(async () => {
    e = newEnv();
    await e.reconcile(); // PENDING
  });
  /** An IssuedCertificate named like our target: its staged key is at istio-system/cacerts. */
  const seedNamedLikeTheTarget = () => e.api.seed("IssuedCertificate", issuedCertificate({
    name: TARGET.name, namespace: TARGET.namespace, target: { name: "elsewhere", namespace: TARGET.namespace } }));

  it.each<[string, IssuedCertificateState]>([["PENDING", "PENDING"], ["FINISHED", "FINISHED"], ["FAILED", "FAILED"]])(
    "in %s: targetCollidesWith names it", async (_name, state) => {
      seedNamedLikeTheTarget();
      expect((await observeAs(e, icIn(e, state))).targetCollidesWith).toBe(`${TARGET.namespace}/${TARGET.name}`);
    });

  it("none there: no collision", async () => {
    expect((await observeAs(e, icIn(e, "PENDING"))).targetCollidesWith).toBeUndefined();
  });

  it("a 403 on that read (an agent limited to its own namespace may not read IssuedCertificates elsewhere): no collision known, not an error", async () => {
    seedNamedLikeTheTarget();
    const r = readers(e);
    r.issuedCertificates.get = () => Promise.reject(new ApiRequestError({ verb: "get", kind: "IssuedCertificate", ...TARGET }, new FakeApiError(403, "forbidden")));
    expect((await observeAs(e, icIn(e, "PENDING"), r)).targetCollidesWith).toBeUndefined();
  });

  it("any other error of that read is thrown (the reconciler decides what it means)", async () => {
    const r = readers(e);
    r.issuedCertificates.get = () => Promise.reject(new ApiRequestError({ verb: "get", kind: "IssuedCertificate", ...TARGET }, new FakeApiError(500, "etcd")));
    await expect(observeAs(e, icIn(e, "PENDING"), r)).rejects.toMatchObject({ code: 500 });
  });

  it("an invalid spec reads no IssuedCertificate either", async () => {
    seedNamedLikeTheTarget();
    const r = readers(e);
    const get = jest.spyOn(r.issuedCertificates, "get");
    await observeAs(e, icIn(e, "PENDING", (ic) => { ic.spec!.hosts = []; }), r);
    expect(get).not.toHaveBeenCalled();
  });
});

describe("observe: the target verified as istiod would use it (hostile review defect 6)", () => {
  const ISTIOD = "spiffe://cluster.local/ns/istio-system/sa/istiod";
  const INVALID = `${WHERE} is not a CA istiod can use (ca-cert.pem checked against root-cert.pem): `;
  const CHAIN = `${WHERE}: cert-chain.pem is not ca-cert.pem followed by root-cert.pem`;
  let e: ReconcilerEnv;
  let other: RootCa;
  beforeAll(async () => {
    other = await createRootCa({ commonName: "another root", spec: { algorithm: "ECDSA", curve: "P-256" }, now: new Date("2025-01-01T00:00:00Z") });
  });
  beforeEach(async () => {
    e = newEnv();
    await e.runUntil("FINISHED");
  });
  const data = (key: string) => secretText(e.target(), key)!;
  /** A whole bundle for a new P-256 key, signed by `root` at `now` (with an issuer misbehaviour). */
  async function bundle(o: { misbehave?: Misbehaviour; root?: RootCa; now?: Date } = {}): Promise<CaBundle> {
    const keys = await generateKeyPair({ algorithm: "ECDSA", curve: "P-256" });
    const root = o.root ?? (await rootCa());
    const caCert = await signIntermediate({ csrPem: await buildCsr({ keys, org: "", hosts: [ISTIOD] }), hosts: [ISTIOD], ttlDays: 365,
      root, now: o.now ?? e.clock.now(), misbehave: o.misbehave ?? "none" });
    return { caCert, caKey: await exportPrivateKeyPem(keys.privateKey), certChain: buildCertChain(caCert, root.certPem), rootCert: (await rootCa()).certPem };
  }
  const put = (edit: Record<string, string>) => editSecret(e, TARGET.namespace, TARGET.name, (s) => { s.data = { ...s.data, ...edit }; });
  const putBundle = (b: CaBundle) => editSecret(e, TARGET.namespace, TARGET.name, (s) => { s.data = bundleData(b); });
  const observeTarget = async () => (await observeAs(e, icIn(e, "FINISHED"))).target;

  it.each<[string, () => Promise<void> | void, string | RegExp]>([
    ["root-cert.pem replaced with garbage", () => put({ [ROOT_CERT]: b64("garbage") }), `${INVALID}UntrustedChain: signing root: no PEM CERTIFICATE block found`],
    ["root-cert.pem replaced with a certificate PEM that does not parse", () => put({ [ROOT_CERT]: b64(GARBAGE_PEM) }), `${INVALID}UntrustedChain: signing root: not a parseable X.509 certificate`],
    ["root-cert.pem replaced with another root", () => put({ [ROOT_CERT]: b64(other.certPem) }), new RegExp(`^${escape(INVALID)}UntrustedChain: certificate issuer .* is not the subject of the signing root`)],
    ["cert-chain.pem replaced with garbage", () => put({ [CERT_CHAIN]: b64("garbage") }), CHAIN],
    ["cert-chain.pem without the root", () => put({ [CERT_CHAIN]: b64(data(CA_CERT)) }), CHAIN],
    ["cert-chain.pem in the wrong order", () => put({ [CERT_CHAIN]: b64(buildCertChain(data(ROOT_CERT), data(CA_CERT))) }), CHAIN],
    ["cert-chain.pem ending in another root", () => put({ [CERT_CHAIN]: b64(buildCertChain(data(CA_CERT), other.certPem)) }), CHAIN],
    ["a ca-cert.pem (with its own key) that is no CA", async () => putBundle(await bundle({ misbehave: "not-a-ca" })), `${INVALID}NotACA: BasicConstraints CA is false`],
    ["a ca-cert.pem (with its own key) valid only from tomorrow", async () => putBundle(await bundle({ misbehave: "not-yet-valid" })),
      `${INVALID}NotYetValid: certificate is valid from 2026-01-02T00:00:00.000Z, now is 2026-01-01T00:00:00.000Z`],
    ["a ca-cert.pem (with its own key) signed by another root", async () => putBundle(await bundle({ root: other })), new RegExp(`^${escape(INVALID)}UntrustedChain: `)],
  ])("%s: invalid, saying exactly what is wrong", async (_name, corrupt, message) => {
    const stamp = (await observeTarget() as { stamp: IssuanceStamp }).stamp;
    await corrupt();
    const target = await observeTarget();
    expect(target).toEqual({ state: "invalid", stamp, message: expect.any(String) });
    expect((target as { message: string }).message).toMatch(typeof message === "string" ? new RegExp(`^${escape(message)}$`) : message);
  });

  it("a root that expired while ca-cert.pem is still in its window: invalid, the root's expiry named", async () => {
    const short = await createRootCa({ commonName: "short-lived root", spec: { algorithm: "ECDSA", curve: "P-256" }, now: new Date("2025-12-30T00:00:00Z"), days: 1 });
    const b = await bundle({ root: short, now: new Date("2025-12-30T12:00:00Z") });
    putBundle({ ...b, rootCert: short.certPem });
    expect(await observeTarget()).toMatchObject({ state: "invalid",
      message: `${INVALID}Expired: signing root expired at 2025-12-31T00:00:00.000Z, now is 2026-01-01T00:00:00.000Z` });
  });

  it("a ca-cert.pem that expired stays valid here: the renewal policy renews it at once (CertificateExpired)", async () => {
    putBundle(await bundle({ misbehave: "expired" }));
    expect(await observeTarget()).toMatchObject({ state: "valid" });
  });

  it("the same certificates with other line breaks (CRLF, no final newline) are fine", async () => {
    put({ [CERT_CHAIN]: b64(data(CERT_CHAIN).replace(/\n/g, "\r\n").trimEnd()) });
    expect(await observeTarget()).toMatchObject({ state: "valid" });
  });

  it("a root-cert.pem of two roots (a root rotation) with cert-chain.pem ca-cert + both: valid", async () => {
    const roots = data(ROOT_CERT) + other.certPem;
    put({ [ROOT_CERT]: b64(roots), [CERT_CHAIN]: b64(buildCertChain(data(CA_CERT), roots)) });
    expect(await observeTarget()).toMatchObject({ state: "valid" });
  });
});

/** A string as a literal RegExp source. */
function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}

describe("observe: a valid target's summary is reused for the same resourceVersion (TargetSummaries)", () => {
  let e: ReconcilerEnv;
  beforeEach(async () => {
    e = newEnv();
    await e.runUntil("FINISHED");
  });
  const withSummaries = (summaries: TargetSummaries): Readers => ({ ...readers(e), summaries });
  const observeWith = async (summaries: TargetSummaries) => (await observeAs(e, icIn(e, "FINISHED"), withSummaries(summaries))).target;

  it("the same version: the same summary object, without summarising again; another version or a later time: made anew", async () => {
    const summaries = new TargetSummaries();
    const first = await observeWith(summaries);
    expect(first.state).toBe("valid");
    expect(await observeWith(summaries)).toBe(first);
    e.clock.advance(SUMMARY_REUSE_MS);
    const later = await observeWith(summaries);
    expect(later).not.toBe(first);
    expect(later).toEqual(first);
    editSecret(e, TARGET.namespace, TARGET.name, (s) => { s.data![CA_CERT] = b64(GARBAGE_PEM); });
    expect(await observeWith(summaries)).toMatchObject({ state: "incomplete" });
  });

  it("never past notAfter, and only valid summaries are kept", () => {
    const summaries = new TargetSummaries();
    const valid = { state: "valid", notAfter: new Date(10_000) } as TargetSummary;
    summaries.remember("mesh/ic", "7", valid, 0);
    expect(summaries.get("mesh/ic", "7", 9_999)).toBe(valid);
    expect(summaries.get("mesh/ic", "7", 10_000)).toBeUndefined();
    expect(summaries.get("mesh/ic", "8", 0)).toBeUndefined();
    summaries.remember("mesh/other", "1", { state: "missing" }, 0);
    expect(summaries.get("mesh/other", "1", 0)).toBeUndefined();
    summaries.forget("mesh/ic");
    expect(summaries.get("mesh/ic", "7", 0)).toBeUndefined();
  });
});
