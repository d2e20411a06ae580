// Every branch of decide(), as table rows: given what was observed and the time, the one action.
import { issuedCertificate } from "../shared/api/builders";
import { IssuedCertificate, IssuedCertificateState } from "../shared/api/types";
import { CertificateVerificationError, ImportedPrivateKey, KeySpec } from "../shared/pki";
import { KEY_ALGORITHM_ANNOTATION, Reason } from "./constants";
import { Decision, decide, DecideOptions } from "./decide";
import { Bookkeeping, IssuanceStamp } from "./issuance";
import { DirectiveSummary, Observed, RequestSummary, StagedKeySummary, TargetSummary, TrustBundleView, Verdict } from "./observe";
import { APPROVED_ROOTS_ANNOTATION, rootFingerprints } from "./root-rotation";
import { InvalidSpecError, readIntent } from "./spec";

const NOW = new Date("2026-06-01T00:00:00Z");
const OPTS: DecideOptions = { now: NOW, retryBackoff: { baseMs: 10_000, maxMs: 600_000 }, resyncMs: 300_000, conflictRecheckMs: 30_000 };
const OWNER = "mesh/ic";
const RSA4096: KeySpec = { algorithm: "RSA", bits: 4096 };
const P256: KeySpec = { algorithm: "ECDSA", curve: "P-256" };
const stamp = (revision: number, fingerprint = "fp"): IssuanceStamp => ({ owner: OWNER, revision, fingerprint });

interface Given {
  state?: IssuedCertificateState;
  /** observedGeneration; default = generation (1). */
  observed?: number | "none";
  book?: Partial<Bookkeeping>;
  keyAlgorithm?: string;
  hosts?: string[];
  target?: TargetSummary;
  staged?: StagedKeySummary;
  request?: RequestSummary;
  verdict?: Verdict;
  error?: string;
  /** In ISSUED, the PodBounceDirective the spec names. */
  directive?: DirectiveSummary;
  /** The IssuedCertificate that stages its key at the target's name. */
  collision?: string;
  /** A namespace of this IssuedCertificate's Secrets that is not one of --secret-namespaces. */
  unwatched?: string;
  /** More annotations on the IssuedCertificate (e.g. an approved root). */
  annotations?: Record<string, string>;
  /** In a root rotation's step 1: what the istio-ca-root-cert ConfigMaps hold. */
  trustBundle?: TrustBundleView;
  opts?: Partial<DecideOptions>;
}

function observed(g: Given): Observed {
  const ic: IssuedCertificate = issuedCertificate({
    name: "ic",
    namespace: "mesh",
    hosts: g.hosts ?? ["spiffe://cluster.local/ns/istio-system/sa/istiod"],
    target: { name: "cacerts", namespace: "istio-system" },
    signingSecret: { name: "root", namespace: "mesh" },
    annotations: { ...(g.keyAlgorithm ? { [KEY_ALGORITHM_ANNOTATION]: g.keyAlgorithm } : {}), ...g.annotations },
  });
  ic.metadata.generation = 1;
  if (g.observed !== "none") ic.status = { observedGeneration: g.observed ?? 1, state: g.state ?? "PENDING", error: g.error ?? "" };
  let intent;
  try {
    intent = readIntent(ic);
  } catch (err) {
    intent = err as InvalidSpecError;
  }
  return {
    ic,
    raw: {},
    book: { revision: 1, failures: 0, failureReason: "", ...g.book },
    intent,
    target: g.target ?? { state: "missing" },
    staged: g.staged,
    request: g.request,
    verdict: g.verdict,
    ...(g.directive ? { directive: g.directive } : {}),
    ...(g.collision ? { targetCollidesWith: g.collision } : {}),
    ...(g.unwatched ? { unwatchedNamespace: g.unwatched } : {}),
    ...(g.trustBundle ? { trustBundle: g.trustBundle } : {}),
  };
}

const validTarget = (over: Partial<Extract<TargetSummary, { state: "valid" }>> = {}): TargetSummary => ({
  state: "valid",
  stamp: stamp(1),
  caCertPem: "CERT",
  keyDescription: "RSA-4096",
  sanKeys: ["uri:spiffe://cluster.local/ns/istio-system/sa/istiod"],
  notBefore: new Date("2026-01-01T00:00:00Z"),
  notAfter: new Date("2027-01-01T00:00:00Z"),
  rootCertPem: "ROOT",
  rootShas: [],
  ...over,
});
const ready = (revision = 1, spec: KeySpec = RSA4096): StagedKeySummary =>
  ({ state: "ready", stamp: stamp(revision), pem: "PEM", key: { spec } as ImportedPrivateKey, fingerprint: "fp" });
const answered = (answer: "pending" | "failed" | "finished", revision = 1, over: Partial<Extract<RequestSummary, { state: "present" }>> = {}): RequestSummary =>
  ({ state: "present", stamp: stamp(revision), answer, error: answer === "failed" ? "no signing key" : "", certificatePem: "CERT", rootPem: "ROOT", ...over });
const verified = (notBefore = new Date("2026-05-31T23:58:00Z")): Verdict =>
  ({ ok: true, certificate: { notBefore, notAfter: new Date("2027-06-01T00:00:00Z"), serialNumber: "01", subject: "", issuer: "CN=root", sans: [], keyDescription: "RSA-4096" } });
const DIRECTIVE_REF = { name: "istio-pods", namespace: "mesh" };
/** A PodBounceDirective as the bouncer left it: a request `requestedAgoMs` before NOW, progress (cycle, outcome, message). */
const directive = (request?: { cycle: string; requestedAgoMs?: number }, progress?: [string, "waiting" | "error" | "done", string]): DirectiveSummary => ({
  state: "present",
  ref: DIRECTIVE_REF,
  ...(request ? { request: { cycle: request.cycle, requestedAt: new Date(NOW.getTime() - (request.requestedAgoMs ?? 60_000)).toISOString() } } : {}),
  ...(progress ? { progress: { cycle: progress[0], outcome: progress[1], message: progress[2] } } : {}),
});
const HOSTS_EMPTY = "invalid spec: spec.hosts is empty: at least one SAN is required";
const COLLISION = "target secret istio-system/cacerts is where IssuedCertificate istio-system/cacerts stages its private key; nothing was written there. " +
  "Change spec.issuedCertificateSecret (or rename that IssuedCertificate)";
const UNWATCHED_TARGET = "namespace istio-system of the target secret is not one of --secret-namespaces, where this agent may read and write Secrets; " +
  "nothing was made. Add it (chart: rbac.secretNamespaces) or change spec.issuedCertificateSecret";
const foreignTarget: TargetSummary = { state: "foreign", message: "target secret istio-system/cacerts exists and is not managed by cert-agent" };
/** The target Gloo Mesh's own agent wrote for mesh/ic (label agent.certificates.mesh.gloo.solo.io=mesh). */
const originalTarget: TargetSummary = { state: "original", fingerprint: "fp" };
const ADOPT_MESSAGE = "target secret istio-system/cacerts was written by Gloo Mesh's certificate agent for this IssuedCertificate " +
  "(label agent.certificates.mesh.gloo.solo.io=mesh); cert-agent manages it from now on, its data unchanged";
/** The same secret once adopted: ours, stamped with revision 0 (no issuance of ours made it). */
const adoptedTarget = (over: Partial<Extract<TargetSummary, { state: "valid" }>> = {}) => validTarget({ stamp: stamp(0), ...over });

type Row = [string, Given, Partial<Decision> & { reason?: string }];

const rows: Row[] = [
  // A new issuance on a spec change, and for a new object; the backoff is reset.
  ["new object begins revision 1, saying it is new", { observed: "none", book: { revision: 0 } },
    { action: "begin", revision: 1, resetFailures: true, trigger: { reason: Reason.SpecChanged, message: "new IssuedCertificate" } }],
  ["spec change begins the next revision, saying the target stays until then", { state: "FINISHED", observed: 0, book: { revision: 3, failures: 2 }, target: validTarget({ stamp: stamp(3) }) },
    { action: "begin", revision: 4, resetFailures: true, trigger: { reason: Reason.SpecChanged, message: "spec changed to generation 1; issuing with a new key, the current target secret stays in place until then" } }],
  ["the next revision is above the target's, even if annotations were lost", { observed: 0, book: { revision: 0 }, target: validTarget({ stamp: stamp(7) }) }, { action: "begin", revision: 8 }],
  // Invalid spec: FAILED once, then quiet until the spec changes.
  ["empty hosts is an invalid spec", { hosts: [] }, { action: "fail", reason: Reason.InvalidSpec, retry: false, message: HOSTS_EMPTY }],
  ["an unknown key algorithm is an invalid spec", { keyAlgorithm: "DSA" }, { action: "fail", reason: Reason.InvalidSpec, retry: false }],
  ["an invalid spec already reported is not reported again", { hosts: [], state: "FAILED", error: HOSTS_EMPTY, book: { failureReason: Reason.InvalidSpec } }, { action: "none" }],
  // "Already reported" needs all three: state FAILED, the InvalidSpec bookkeeping, and the same text.
  ["an invalid spec is reported when the status is not FAILED, even with the same text", { hosts: [], state: "PENDING", error: HOSTS_EMPTY, book: { failureReason: Reason.InvalidSpec } },
    { action: "fail", reason: Reason.InvalidSpec, retry: false, message: HOSTS_EMPTY }],
  ["an invalid spec is reported when FAILED for another reason, even with the same text (the bookkeeping is corrected)", { hosts: [], state: "FAILED", error: HOSTS_EMPTY, book: { failureReason: Reason.IssuerFailed } },
    { action: "fail", reason: Reason.InvalidSpec, retry: false, message: HOSTS_EMPTY }],
  ["an invalid spec whose message changed is reported again", { hosts: [], state: "FAILED", error: "invalid spec: an older complaint", book: { failureReason: Reason.InvalidSpec } },
    { action: "fail", reason: Reason.InvalidSpec, retry: false, message: HOSTS_EMPTY }],
  // Defect 2: a foreign target fails before any key is made.
  ["defect 2: a foreign target fails in PENDING, before a key is made", { state: "PENDING", target: foreignTarget, staged: { state: "missing" }, request: { state: "missing" } }, { action: "fail", reason: Reason.TargetSecretConflict, retry: false }],
  ["defect 2: a foreign target in FAILED waits for it to change", { state: "FAILED", target: foreignTarget, book: { failureReason: Reason.TargetSecretConflict } }, { action: "none", requeueAfterMs: 30_000 }],
  ["defect 2: once the foreign target is gone, a new issuance begins", { state: "FAILED", book: { failureReason: Reason.TargetSecretConflict, revision: 2 } },
    { action: "begin", revision: 3, resetFailures: false, trigger: { reason: Reason.Retrying, message: "the Secret that was in the way is gone or handed over; issuing" } }],
  ["defect 2: once the foreign target is gone, a foreign staged-key Secret does not keep the target conflict waiting (PENDING reports it)", { state: "FAILED", staged: { state: "foreign", message: "not ours" }, book: { failureReason: Reason.TargetSecretConflict, revision: 2 } },
    { action: "begin", revision: 3, trigger: { reason: Reason.Retrying, message: "the Secret that was in the way is gone or handed over; issuing" } }],
  ["a target that appears foreign after FINISHED fails without a key", { state: "FINISHED", target: foreignTarget }, { action: "fail", reason: Reason.TargetSecretConflict }],
  // Hostile review defect 5: a target at another IssuedCertificate's staged-key name fails (no key), and is looked at again.
  ["defect 5b: a target at another IssuedCertificate's staged-key name fails in PENDING, before a key is made", { state: "PENDING", collision: "istio-system/cacerts", staged: { state: "missing" }, request: { state: "missing" } },
    { action: "fail", reason: Reason.TargetSecretCollision, retry: false, message: COLLISION }],
  ["defect 5b: ...and in FINISHED, before the policy chain", { state: "FINISHED", collision: "istio-system/cacerts", target: validTarget() }, { action: "fail", reason: Reason.TargetSecretCollision, retry: false }],
  ["defect 5b: ...and before adopting the original agent's secret there", { state: "FINISHED", collision: "istio-system/cacerts", target: originalTarget }, { action: "fail", reason: Reason.TargetSecretCollision }],
  ["defect 5b: FAILED for another reason: the collision is said at once", { state: "FAILED", collision: "istio-system/cacerts", book: { failureReason: Reason.IssuerFailed, retryAtMs: NOW.getTime() + 60_000 } },
    { action: "fail", reason: Reason.TargetSecretCollision, retry: false, message: COLLISION }],
  ["defect 5b: FAILED for the collision, still there: look again later (no key, no write)", { state: "FAILED", error: COLLISION, collision: "istio-system/cacerts", book: { failureReason: Reason.TargetSecretCollision } },
    { action: "none", requeueAfterMs: 30_000 }],
  ["defect 5b: FAILED for the collision, gone: a new issuance", { state: "FAILED", error: COLLISION, book: { failureReason: Reason.TargetSecretCollision, revision: 2 } },
    { action: "begin", revision: 3, resetFailures: false, trigger: { reason: Reason.Retrying, message: "no IssuedCertificate stages its key at the target any more; issuing" } }],
  // --secret-namespaces: a Secret the agent may not touch fails before anything is made, in any state.
  ["a target outside --secret-namespaces fails in PENDING, before a key is made", { state: "PENDING", unwatched: "istio-system" },
    { action: "fail", reason: Reason.SecretNamespaceNotWatched, retry: false, message: UNWATCHED_TARGET }],
  ["...a staged key outside them (the IssuedCertificate's namespace) says so", { state: "PENDING", unwatched: "mesh" },
    { action: "fail", reason: Reason.SecretNamespaceNotWatched, message: UNWATCHED_TARGET.replace("istio-system of the target secret", "mesh of the staged private key") }],
  ["...in FINISHED too, before the policy chain (the agent was restarted with fewer namespaces)", { state: "FINISHED", unwatched: "istio-system", target: validTarget() },
    { action: "fail", reason: Reason.SecretNamespaceNotWatched }],
  ["...and before a collision is said (nothing was read there)", { state: "PENDING", unwatched: "istio-system", collision: "istio-system/cacerts" },
    { action: "fail", reason: Reason.SecretNamespaceNotWatched }],
  ["FAILED for it, still outside: said once, nothing more", { state: "FAILED", error: UNWATCHED_TARGET, unwatched: "istio-system", book: { failureReason: Reason.SecretNamespaceNotWatched } },
    { action: "none" }],
  ["FAILED for it, now inside (restarted with the namespace added): a new issuance", { state: "FAILED", error: UNWATCHED_TARGET, book: { failureReason: Reason.SecretNamespaceNotWatched, revision: 2 } },
    { action: "begin", revision: 3, resetFailures: false, trigger: { reason: Reason.Retrying, message: "the Secrets' namespaces are now among --secret-namespaces; issuing" } }],
  // Migration from Gloo Mesh's agent: its target for this IssuedCertificate is adopted first, in any state.
  ["migration: the original agent's target of a FINISHED object is adopted, not refused", { state: "FINISHED", book: { revision: 0 }, target: originalTarget },
    { action: "adoptOriginal", message: ADOPT_MESSAGE }],
  ["migration: adopted in PENDING too (before the foreign checks)", { state: "PENDING", target: originalTarget, staged: { state: "missing" }, request: { state: "missing" } }, { action: "adoptOriginal" }],
  ["migration: adopted in REQUESTED before the original's staged key is refused", { state: "REQUESTED", target: originalTarget, staged: { state: "foreign", message: "not ours" }, request: answered("pending") },
    { action: "adoptOriginal" }],
  ["migration: adopted in ISSUED (the original was bouncing pods)", { state: "ISSUED", book: { revision: 0 }, target: originalTarget }, { action: "adoptOriginal" }],
  ["migration: adopted in FAILED, even after an earlier TargetSecretConflict", { state: "FAILED", target: originalTarget, book: { failureReason: Reason.TargetSecretConflict } }, { action: "adoptOriginal" }],
  ["migration: a spec change still begins first (revision above the book; the original's secret has no stamp)", { state: "FINISHED", observed: 0, book: { revision: 0 }, target: originalTarget },
    { action: "begin", revision: 1, resetFailures: true, reason: Reason.SpecChanged }],
  ["migration: once adopted, a FINISHED target that is what the spec asks for is left alone until its renewal", { state: "FINISHED", book: { revision: 0 }, target: adoptedTarget() },
    { action: "none", expiresAt: new Date("2027-01-01T00:00:00Z") }],
  ["migration: once adopted, the policy chain applies (another key type -> new issuance above revision 0)", { state: "FINISHED", book: { revision: 0 }, keyAlgorithm: "ECDSA-P256", target: adoptedTarget() },
    { action: "begin", revision: 1, reason: Reason.KeyAlgorithmChanged }],
  ["migration: once adopted, a FINISHED target certifying other SANs -> new issuance", { state: "FINISHED", book: { revision: 0 }, target: adoptedTarget({ sanKeys: ["dns:other.example"] }) },
    { action: "begin", revision: 1, reason: Reason.HostsChanged }],
  ["migration: once adopted, FAILED TargetSecretConflict sees it handed over and issues", { state: "FAILED", book: { revision: 1, failureReason: Reason.TargetSecretConflict }, target: adoptedTarget() },
    { action: "begin", revision: 2, trigger: { reason: Reason.Retrying, message: "the Secret that was in the way is gone or handed over; issuing" } }],
  ["migration: an adopted target (revision 0) is never taken for this issuance's write after a crash", { state: "REQUESTED", book: { revision: 0 }, staged: { state: "missing" }, request: answered("finished", 0), target: adoptedTarget() },
    { action: "begin", revision: 1, reason: Reason.PrivateKeyMissing }],
  // Defect 5: a foreign Secret at the staged-key name.
  ["defect 5: a foreign staged-key Secret fails in PENDING", { state: "PENDING", staged: { state: "foreign", message: "not ours" }, request: { state: "missing" } }, { action: "fail", reason: Reason.StagedKeySecretConflict, retry: false }],
  ["defect 5: a foreign staged-key Secret in REQUESTED fails the same way (no error loop)", { state: "REQUESTED", staged: { state: "foreign", message: "not ours" }, request: answered("pending") }, { action: "fail", reason: Reason.StagedKeySecretConflict }],
  ["defect 5: FAILED waits while the foreign staged-key Secret is there", { state: "FAILED", staged: { state: "foreign", message: "not ours" }, book: { failureReason: Reason.StagedKeySecretConflict } }, { action: "none", requeueAfterMs: 30_000 }],
  ["defect 5: once it is deleted, a new issuance begins", { state: "FAILED", staged: { state: "missing" }, book: { failureReason: Reason.StagedKeySecretConflict } }, { action: "begin", revision: 2 }],
  ["defect 5: an unreadable staged key in REQUESTED is replaced by a new issuance", { state: "REQUESTED", staged: { state: "unreadable", stamp: stamp(1), message: "staged key mesh/ic cannot be imported" }, request: answered("finished") }, { action: "begin", revision: 2, trigger: { reason: Reason.StagedKeyUnreadable, message: "staged key mesh/ic cannot be imported; issuing again with a new key" } }],
  ["defect 5: an unreadable staged key in PENDING is not reused", { state: "PENDING", staged: { state: "unreadable", stamp: stamp(1), message: "x" }, request: { state: "missing" } }, { action: "request", reuseStagedKey: false }],
  // PENDING: reuse only this issuance's key of the intended type.
  ["PENDING makes a key when none is staged", { staged: { state: "missing" }, request: { state: "missing" } }, { action: "request", reuseStagedKey: false }],
  ["PENDING reuses this issuance's staged key (crash after staging)", { staged: ready(1), request: { state: "missing" } }, { action: "request", reuseStagedKey: true }],
  ["PENDING does not reuse another issuance's key", { staged: ready(0), request: { state: "missing" } }, { action: "request", reuseStagedKey: false }],
  ["defect 4: PENDING does not reuse a key of another type", { keyAlgorithm: "ECDSA-P256", staged: ready(1, RSA4096), request: { state: "missing" } }, { action: "request", reuseStagedKey: false }],
  // REQUESTED.
  ["REQUESTED waits for the issuer", { state: "REQUESTED", staged: ready(), request: answered("pending") }, { action: "none", requeueAfterMs: 300_000 }],
  ["REQUESTED: an issuer error of 500 KB with NUL and ESC is copied bounded and escaped (1 KB, one printable line)", { state: "REQUESTED", staged: ready(), request: answered("failed", 1, { error: `\u0000\u001b[2J${"x".repeat(500_000)}` }) },
    { action: "fail", reason: Reason.IssuerFailed, retry: true, message: `certificate request mesh.ic failed to be signed by Issuer: \\u0000\\u001b[2J${"x".repeat(980)} ... (498991 more characters)` }],
  ["REQUESTED: the issuer failed -> FAILED with Gloo Mesh's message, retried", { state: "REQUESTED", staged: ready(), request: answered("failed") }, { action: "fail", reason: Reason.IssuerFailed, retry: true, message: "certificate request mesh.ic failed to be signed by Issuer: no signing key" }],
  ["REQUESTED: the request was deleted mid-flight -> request again with the same key", { state: "REQUESTED", staged: ready(), request: { state: "missing" } },
    { action: "rerequest", reason: Reason.CertificateRequestMissing, message: "CertificateRequest mesh/ic disappeared; requesting again" }],
  ["REQUESTED: the request belongs to another issuance -> request again", { state: "REQUESTED", staged: ready(2), book: { revision: 2 }, request: answered("finished", 1) },
    { action: "rerequest", reason: Reason.CertificateRequestMissing, message: "CertificateRequest mesh/ic belongs to another issuance; requesting again" }],
  ["defect 4: REQUESTED with a key-algorithm change begins a new issuance", { state: "REQUESTED", keyAlgorithm: "ECDSA-P256", staged: ready(1, RSA4096), request: answered("pending") },
    { action: "begin", revision: 2, resetFailures: false, trigger: { reason: Reason.KeyAlgorithmChanged, message: "key type changed from RSA-4096 to ECDSA-P256; issuing with a new key" } }],
  ["REQUESTED: a rejected certificate -> FAILED, retried", { state: "REQUESTED", staged: ready(), request: answered("finished"), verdict: { ok: false, error: new CertificateVerificationError("PublicKeyMismatch", "other key") } }, { action: "fail", reason: Reason.CertificateRejected, retry: true }],
  ["REQUESTED: a verified certificate is written", { state: "REQUESTED", staged: ready(), request: answered("finished"), verdict: verified() }, { action: "write" }],
  ["defect 1: a certificate valid 2 s from now (issuer clock ahead) is waited for, not refused", { state: "REQUESTED", staged: ready(), request: answered("finished"), verdict: verified(new Date(NOW.getTime() + 2000)) },
    { action: "none", requeueAfterMs: 2000, wait: { reason: Reason.WaitingForValidity, message: "the certificate is valid from 2026-06-01T00:00:02.000Z, 2000 ms from now by our clock (issuer clock ahead); writing it then" } }],
  ["REQUESTED: staged key gone but the target holds this issuance's certificate (crash after the write) -> adopt", { state: "REQUESTED", staged: { state: "missing" }, request: answered("finished"), target: validTarget() }, { action: "adopt" }],
  ["REQUESTED: the target already holds this issuance's certificate (written, then a crash or a 409 before ISSUED), and the issuer answered again since -> adopt, never a second write",
    { state: "REQUESTED", staged: ready(), request: answered("finished", 1, { certificatePem: "SECOND CERT" }), verdict: verified(), target: validTarget() }, { action: "adopt" }],
  ["REQUESTED: ...also when the request went missing meanwhile (nothing to ask again)", { state: "REQUESTED", staged: ready(), request: { state: "missing" }, target: validTarget() }, { action: "adopt" }],
  ["REQUESTED: a target of an older issuance is replaced with the verified answer", { state: "REQUESTED", staged: ready(2), book: { revision: 2 }, request: answered("finished", 2), verdict: verified(), target: validTarget() }, { action: "write" }],
  ["REQUESTED: a target of this revision with another key is not ours to adopt -> the verified answer is written", { state: "REQUESTED", staged: ready(), request: answered("finished"), verdict: verified(), target: validTarget({ stamp: stamp(1, "other") }) }, { action: "write" }],
  ["REQUESTED: a target of this issuance that is no longer valid (edited) is written again whole", { state: "REQUESTED", staged: ready(), request: answered("finished"), verdict: verified(), target: { state: "incomplete", stamp: stamp(1), message: "lacks ca-key.pem" } }, { action: "write" }],
  ["REQUESTED: staged key gone and the target is older -> new issuance", { state: "REQUESTED", staged: { state: "missing" }, request: answered("finished"), target: validTarget({ stamp: stamp(0) }) },
    { action: "begin", revision: 2, trigger: { reason: Reason.PrivateKeyMissing, message: "staged private key mesh/ic is missing; issuing again with a new key" } }],
  ["REQUESTED: staged key gone, the target of this issuance holds another certificate than the answer -> new issuance, not adopt", { state: "REQUESTED", staged: { state: "missing" }, request: answered("finished", 1, { certificatePem: "OTHER CERT" }), target: validTarget() },
    { action: "begin", revision: 2, reason: Reason.PrivateKeyMissing }],
  ["REQUESTED: staged key gone and no certificate answered: an empty answer never matches the target -> new issuance, not adopt", { state: "REQUESTED", staged: { state: "missing" }, request: answered("pending", 1, { certificatePem: "" }), target: validTarget({ caCertPem: "" }) },
    { action: "begin", revision: 2, reason: Reason.PrivateKeyMissing }],
  // Found by decide.property.test.ts: observations observe never makes, but the types allow, decide without a TypeError or a NaN.
  ["REQUESTED without staged key and request read: read as missing (a new issuance), not a TypeError", { state: "REQUESTED" },
    { action: "begin", revision: 2, reason: Reason.PrivateKeyMissing }],
  ["REQUESTED, a FINISHED answer for our ready key but no verdict: nothing verified yet, look again", { state: "REQUESTED", staged: ready(), request: answered("finished") },
    { action: "none", requeueAfterMs: 300_000 }],
  ["ISSUED: a bounce request whose time does not read (edited by hand) is asked again, not awaited with a NaN delay (it would never time out)", { state: "ISSUED", target: validTarget(),
    directive: { state: "present", ref: DIRECTIVE_REF, request: { cycle: "mesh/ic#1", requestedAt: "yesterday" } } }, { action: "requestBounce", cycle: "mesh/ic#1" }],
  // ISSUED and FINISHED.
  ["ISSUED finishes", { state: "ISSUED", target: validTarget() }, { action: "finish" }],
  ["FINISHED with a good target does nothing and reports expiry", { state: "FINISHED", target: validTarget() }, { action: "none", expiresAt: new Date("2027-01-01T00:00:00Z") }],
  ["FINISHED: target missing -> new issuance", { state: "FINISHED" }, { action: "begin", revision: 2, reason: Reason.TargetSecretMissing }],
  ["FINISHED: target incomplete -> new issuance", { state: "FINISHED", target: { state: "incomplete", stamp: stamp(1), message: "lacks ca-key.pem" } }, { action: "begin", reason: Reason.TargetSecretIncomplete }],
  ["defect 6: FINISHED: target invalid (untrusted, no CA, chain wrong, not yet valid) -> new issuance", { state: "FINISHED", target: { state: "invalid", stamp: stamp(1), message: "target secret istio-system/cacerts: cert-chain.pem is not ca-cert.pem followed by root-cert.pem" } },
    { action: "begin", revision: 2, trigger: { reason: Reason.TargetSecretInvalid, message: "target secret istio-system/cacerts: cert-chain.pem is not ca-cert.pem followed by root-cert.pem; issuing again" } }],
  ["defect 6: the next revision is above an invalid target's", { state: "FINISHED", target: { state: "invalid", stamp: stamp(5), message: "x" } }, { action: "begin", revision: 6 }],
  ["defect 4: FINISHED with a key-algorithm change -> new issuance", { state: "FINISHED", keyAlgorithm: "ECDSA-P256", target: validTarget() }, { action: "begin", reason: Reason.KeyAlgorithmChanged }],
  ["FINISHED: SANs differ from hosts -> new issuance", { state: "FINISHED", target: validTarget({ sanKeys: ["dns:other.example"] }) }, { action: "begin", reason: Reason.HostsChanged }],
  // FAILED with backoff from the bookkeeping (survives restarts).
  ["FAILED before its retry time waits for it", { state: "FAILED", book: { failures: 2, failureReason: Reason.IssuerFailed, retryAtMs: NOW.getTime() + 15_000 } }, { action: "none", requeueAfterMs: 15_000 }],
  ["FAILED after its retry time begins a new issuance, keeping the count", { state: "FAILED", book: { failures: 2, failureReason: Reason.IssuerFailed, retryAtMs: NOW.getTime() - 1 } },
    { action: "begin", revision: 2, resetFailures: false, trigger: { reason: Reason.Retrying, message: "retrying after failure number 2" } }],
  ["FAILED with a lost failure count retries as failure number 1", { state: "FAILED", book: { failures: 0, failureReason: Reason.IssuerFailed } },
    { action: "begin", revision: 2, trigger: { reason: Reason.Retrying, message: "retrying after failure number 1" } }],
  ["FAILED with an invalid spec waits for a spec change", { state: "FAILED", book: { failureReason: Reason.InvalidSpec } }, { action: "none" }],
  // ISSUED: the hand-off to the pod bouncer (a bounce request per issuance revision, progress per cycle).
  ["ISSUED: no PodBounceDirective named -> finish", { state: "ISSUED", target: validTarget() }, { action: "finish", message: "certificate issued" }],
  ["ISSUED: the named PodBounceDirective is missing -> FAILED, retried", { state: "ISSUED", target: validTarget(), directive: { state: "missing", ref: DIRECTIVE_REF } },
    { action: "fail", reason: Reason.PodBounceDirectiveMissing, retry: true, message: "PodBounceDirective mesh/istio-pods named by spec.podBounceDirective does not exist; the target secret is written and valid, no pod was restarted" }],
  ["ISSUED: no bounce requested yet -> request one for this cycle", { state: "ISSUED", target: validTarget(), directive: directive() }, { action: "requestBounce", cycle: "mesh/ic#1" }],
  ["ISSUED: a bounce requested for an older cycle (done) -> request one for this cycle", { state: "ISSUED", book: { revision: 2 }, target: validTarget({ stamp: stamp(2) }), directive: directive({ cycle: "mesh/ic#1" }, ["mesh/ic#1", "done", "every selector bounced"]) },
    { action: "requestBounce", cycle: "mesh/ic#2" }],
  ["ISSUED: progress done for this cycle -> finish", { state: "ISSUED", target: validTarget(), directive: directive({ cycle: "mesh/ic#1" }, ["mesh/ic#1", "done", "every selector bounced"]) },
    { action: "finish", message: "certificate issued; the pods of PodBounceDirective mesh/istio-pods were restarted" }],
  ["ISSUED: progress done for an OLDER cycle does not finish this one (waits)", { state: "ISSUED", book: { revision: 2 }, target: validTarget({ stamp: stamp(2) }), directive: directive({ cycle: "mesh/ic#2" }, ["mesh/ic#1", "done", "every selector bounced"]) },
    { action: "awaitBounce", message: "pods of PodBounceDirective mesh/istio-pods being restarted: the bouncer has not started", requeueAfterMs: 300_000 }],
  ["ISSUED: progress error -> FAILED BounceFailed, retried", { state: "ISSUED", target: validTarget(), directive: directive({ cycle: "mesh/ic#1" }, ["mesh/ic#1", "error", "pods in istio-system with app=istio-ingressgateway: secret istio-system/cacerts has no key root-cert.pem"]) },
    { action: "fail", reason: Reason.BounceFailed, retry: true, message: "PodBounceDirective mesh/istio-pods: pods in istio-system with app=istio-ingressgateway: secret istio-system/cacerts has no key root-cert.pem; the target secret is written and valid" }],
  ["ISSUED: an error of an OLDER cycle does not fail this one (waits)", { state: "ISSUED", book: { revision: 2 }, target: validTarget({ stamp: stamp(2) }), directive: directive({ cycle: "mesh/ic#2" }, ["mesh/ic#1", "error", "old"]) },
    { action: "awaitBounce", message: "pods of PodBounceDirective mesh/istio-pods being restarted: the bouncer has not started", requeueAfterMs: 300_000 }],
  ["ISSUED: waited the bounce timeout (10 min by default) -> FAILED BounceTimedOut naming the progress message", { state: "ISSUED", target: validTarget(), directive: directive({ cycle: "mesh/ic#1", requestedAgoMs: 600_000 }, ["mesh/ic#1", "waiting", "pods in istio-system with app=istiod: 0 of 1 replacement pods Ready"]) },
    { action: "fail", reason: Reason.BounceTimedOut, retry: true, message: "PodBounceDirective mesh/istio-pods did not finish within 600 s (pods in istio-system with app=istiod: 0 of 1 replacement pods Ready); the target secret is written and valid" }],
  ["ISSUED: waited beyond bounceTimeoutMs before the bouncer started -> BounceTimedOut saying so", { state: "ISSUED", target: validTarget(), opts: { bounceTimeoutMs: 120_000 }, directive: directive({ cycle: "mesh/ic#1", requestedAgoMs: 180_000 }) },
    { action: "fail", reason: Reason.BounceTimedOut, message: "PodBounceDirective mesh/istio-pods did not finish within 120 s (the bouncer has not started); the target secret is written and valid" }],
  ["ISSUED: the bouncer is waiting -> its wait reason for status, requeued at the resync period", { state: "ISSUED", target: validTarget(), directive: directive({ cycle: "mesh/ic#1", requestedAgoMs: 60_000 }, ["mesh/ic#1", "waiting", "pods in istio-system with app=istiod: 0 of 1 replacement pods Ready"]) },
    { action: "awaitBounce", message: "pods of PodBounceDirective mesh/istio-pods being restarted: pods in istio-system with app=istiod: 0 of 1 replacement pods Ready", requeueAfterMs: 300_000 }],
  ["ISSUED: the bouncer is waiting near the timeout -> requeued at the timeout", { state: "ISSUED", target: validTarget(), directive: directive({ cycle: "mesh/ic#1", requestedAgoMs: 540_000 }, ["mesh/ic#1", "waiting", "starting"]) },
    { action: "awaitBounce", message: "pods of PodBounceDirective mesh/istio-pods being restarted: starting", requeueAfterMs: 60_000 }],
];

describe("decide", () => {
  it.each(rows)("%s", (_name, given, expected) => {
    const decision = decide(observed(given), { ...OPTS, ...given.opts }) as Decision & { trigger?: { reason: string }; reason?: string };
    const { reason, ...rest } = expected;
    expect(decision).toMatchObject(rest);
    if (reason) expect(decision.reason ?? decision.trigger?.reason).toBe(reason);
  });

  it("uses P-256 when the annotation asks for it", () => {
    const o = observed({ keyAlgorithm: "ECDSA-P256", staged: ready(1, P256), request: { state: "missing" } });
    expect(decide(o, OPTS)).toEqual({ action: "request", reuseStagedKey: true });
  });
});

// Root rotation (root-rotation.ts): the three steps, approval, and the waits. The roots are PEM blocks of
// arbitrary bytes: decide only compares their SHA-256 and never parses them as certificates.
const pemBlock = (bytes: string) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(bytes).toString("base64")}\n-----END CERTIFICATE-----\n`;
const OLD_ROOT = pemBlock("old root");
const NEW_ROOT = pemBlock("new root");
const BOTH = OLD_ROOT + NEW_ROOT;
const [OLD_SHA, NEW_SHA] = [rootFingerprints(OLD_ROOT)[0]!, rootFingerprints(NEW_ROOT)[0]!];
const UNTIL = "2026-06-02T01:00:00.000Z"; // NOW + 25 h
const trusting = (over: Partial<Extract<TargetSummary, { state: "valid" }>> = {}) =>
  validTarget({ stamp: stamp(0), rootCertPem: OLD_ROOT, rootShas: [OLD_SHA], ...over });
const answeredWith = (rootPem: string) => ({ state: "REQUESTED" as const, staged: ready(), request: answered("finished", 1, { rootPem }), verdict: verified() });
const STEP1 = { phase: "trust" as const, newRoots: [NEW_SHA], since: "2026-05-31T23:00:00.000Z" };

const rootRows: Row[] = [
  ["same root: the answer is written as it came", { ...answeredWith(OLD_ROOT), target: trusting() }, { action: "write", rootCert: OLD_ROOT, rotation: undefined }],
  ["no valid target to protect (first issuance): written as it came, no rotation", { ...answeredWith(NEW_ROOT), target: { state: "missing" } }, { action: "write", rootCert: NEW_ROOT, rotation: undefined }],
  ["new root (accept): step 1 trusts old + new, the intermediate stays", { ...answeredWith(NEW_ROOT), target: trusting() },
    { action: "trustNewRoots", rootCert: BOTH, rotation: { phase: "trust", newRoots: [NEW_SHA], since: NOW.toISOString() } }],
  ["new root under require-approval, not approved: waits, saying which root and how to approve", { ...answeredWith(NEW_ROOT), target: trusting(), opts: { rootChangePolicy: "require-approval" } },
    { action: "awaitRoot", reason: Reason.RootChangeNotApproved, requeueAfterMs: 300_000,
      message: `the issuer signed with a new root (sha256 ${NEW_SHA}) that is not approved (--root-change-policy=require-approval); istio-system/cacerts is unchanged. ` +
        "To accept it, add its SHA-256 to the annotation cert-agent.io/approved-root-sha256" }],
  ["approving another root does not approve this one", { ...answeredWith(NEW_ROOT), target: trusting(), opts: { rootChangePolicy: "require-approval" }, annotations: { [APPROVED_ROOTS_ANNOTATION]: OLD_SHA } },
    { action: "awaitRoot", reason: Reason.RootChangeNotApproved }],
  ["new root under require-approval, approved (upper case, among others): step 1", { ...answeredWith(NEW_ROOT), target: trusting(), opts: { rootChangePolicy: "require-approval" },
    annotations: { [APPROVED_ROOTS_ANNOTATION]: `${OLD_SHA}, ${NEW_SHA.toUpperCase()}` } }, { action: "trustNewRoots", rootCert: BOTH }],
  ["step 1 written, the bundle not yet in every ConfigMap: waits (polling every 5 s), naming them", { ...answeredWith(NEW_ROOT), target: trusting({ rootCertPem: BOTH, rootShas: [OLD_SHA, NEW_SHA], rotation: STEP1 }),
    trustBundle: { checked: 3, lacking: ["app: 1 of 2 roots missing", "gw: no istio-ca-root-cert ConfigMap yet"] } },
    { action: "awaitRoot", reason: Reason.TrustBundlePropagating, requeueAfterMs: 5_000,
      message: "root rotation step 1 of 3: waiting for the old and new roots to reach 2 of 3 istio-ca-root-cert ConfigMaps (app: 1 of 2 roots missing; gw: no istio-ca-root-cert ConfigMap yet); " +
        "istiod publishes root-cert.pem when it reloads its CA files" }],
  ["step 1 written, every ConfigMap holds both: step 2 writes the new intermediate with both roots until the overlap ends", { ...answeredWith(NEW_ROOT),
    target: trusting({ rootCertPem: BOTH, rootShas: [OLD_SHA, NEW_SHA], rotation: STEP1 }), trustBundle: { checked: 3, lacking: [] } },
    { action: "write", rootCert: BOTH, rotation: { phase: "overlap", newRoots: [NEW_SHA], until: UNTIL } }],
  ["--root-overlap sets the end of the overlap", { ...answeredWith(NEW_ROOT), target: trusting({ rootCertPem: BOTH, rootShas: [OLD_SHA, NEW_SHA], rotation: STEP1 }), opts: { rootOverlapMs: 3_600_000 } },
    { action: "write", rotation: { phase: "overlap", newRoots: [NEW_SHA], until: "2026-06-01T01:00:00.000Z" } }],
  ["a root new again during step 1 (a third root): step 1 again, adding it", { ...answeredWith(pemBlock("third")), target: trusting({ rootCertPem: BOTH, rootShas: [OLD_SHA, NEW_SHA], rotation: STEP1 }) },
    { action: "trustNewRoots", rootCert: BOTH + pemBlock("third") }],
  ["a renewal during the overlap keeps both roots and the overlap's end", { ...answeredWith(NEW_ROOT),
    target: trusting({ rootCertPem: BOTH, rootShas: [OLD_SHA, NEW_SHA], rotation: { phase: "overlap", newRoots: [NEW_SHA], until: UNTIL } }) },
    { action: "write", rootCert: BOTH, rotation: { phase: "overlap", newRoots: [NEW_SHA], until: UNTIL } }],
  ["several roots without a rotation of ours (the issuer's own transition ended): written as the issuer sends them", { ...answeredWith(NEW_ROOT), target: trusting({ rootCertPem: BOTH, rootShas: [OLD_SHA, NEW_SHA] }) },
    { action: "write", rootCert: NEW_ROOT, rotation: undefined }],
  ["FINISHED in the overlap: sleeps until the overlap ends when that is before the renewal", { state: "FINISHED",
    target: trusting({ rootCertPem: BOTH, rootShas: [OLD_SHA, NEW_SHA], rotation: { phase: "overlap", newRoots: [NEW_SHA], until: UNTIL }, rootsAfterOverlap: NEW_ROOT }) },
    { action: "none", requeueAfterMs: 25 * 3_600_000 }],
  ["FINISHED, the overlap is over: step 3 keeps the new roots only", { state: "FINISHED",
    target: trusting({ rootCertPem: BOTH, rootShas: [OLD_SHA, NEW_SHA], rotation: { phase: "overlap", newRoots: [NEW_SHA], until: "2026-05-31T00:00:00.000Z" }, rootsAfterOverlap: NEW_ROOT }) },
    { action: "endRootOverlap", rootCert: NEW_ROOT, message: "root rotation step 3 of 3: the overlap ended at 2026-05-31T00:00:00.000Z; root-cert.pem now holds only the new root" }],
  ["FINISHED, the overlap is over but the recorded roots no longer verify ca-cert.pem: every root is kept, the rotation ends", { state: "FINISHED",
    target: trusting({ rootCertPem: BOTH, rootShas: [OLD_SHA, NEW_SHA], rotation: { phase: "overlap", newRoots: [NEW_SHA], until: "2026-05-31T00:00:00.000Z" } }) },
    { action: "endRootOverlap", rootCert: BOTH }],
];

describe("decide: root rotation", () => {
  it.each(rootRows)("%s", (_name, given, expected) => {
    const decision = decide(observed(given), { ...OPTS, ...given.opts }) as Decision & { reason?: string; rotation?: unknown };
    const { reason, rotation, ...rest } = expected as typeof expected & { rotation?: unknown };
    expect(decision).toMatchObject(rest);
    // Named in a row, the rotation must be exactly that (undefined included: no annotation written).
    if ("rotation" in expected) expect(decision.rotation).toEqual(rotation);
    if (reason) expect(decision.reason).toBe(reason);
  });
});
