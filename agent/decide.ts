// Decide: one pure function from what was observed (and the time) to the one action to take. No I/O,
// no clock of its own: every branch of the state machine is a table row in decide.test.ts.
//
//   (new / spec changed) -> PENDING -> REQUESTED -> ISSUED -> FINISHED
//   any step can go FAILED; FAILED goes back to PENDING after a backoff (or when its cause is gone).
// A new issuance (a new revision and a new key) starts on a spec change, a retry after FAILED, or a
// re-issue trigger from the policy chain in policies.ts.
import { backoffDelay, BackoffOptions } from "../shared/controller/backoff";
import { IssuedCertificateState } from "../shared/api/types";
import { boundedText } from "../shared/text/bounded";
import { describeKeySpec } from "../shared/pki";
import { ORIGINAL_AGENT_LABEL, Reason } from "./constants";
import { cycleOf } from "./bouncer/cycle";
import { sameIssuance, ownerKey, IssuanceStamp } from "./issuance";
import { Observed, RequestSummary, StagedKeySummary } from "./observe";
import { reissueTrigger, Trigger } from "./policies";
import { DEFAULT_RENEW_BEFORE, RenewBefore, renewalTime } from "./renewal";
import { approvedRoots, combineRoots, missingFrom, RootChangePolicy, RootRotation, rootFingerprints, shortSha } from "./root-rotation";
import { CertificateIntent, InvalidSpecError } from "./spec";

export interface DecideOptions {
  now: Date;
  retryBackoff: BackoffOptions;
  /** How long to wait before looking again at an object that waits on someone else. */
  resyncMs: number;
  /** How often to look again at a foreign Secret in our way (a GET, never a new key). */
  conflictRecheckMs: number;
  /** How long ISSUED may wait for the pod bouncer before FAILED (default 10 minutes). */
  bounceTimeoutMs?: number;
  /** When to renew (default: 1/3 of the lifetime before notAfter). */
  renewBefore?: RenewBefore;
  /** What a new root needs before it is trusted (default accept). */
  rootChangePolicy?: RootChangePolicy;
  /** How long the old roots stay in root-cert.pem after the new intermediate is written (default 25 h). */
  rootOverlapMs?: number;
}

/** --root-overlap's default: longer than Istio's default workload certificate lifetime (24 h). */
export const DEFAULT_ROOT_OVERLAP_MS = 25 * 3_600_000;
/** How often a root rotation looks again at the trust bundle ConfigMaps (no watch wakes it). */
const TRUST_BUNDLE_POLL_MS = 5_000;

/** Failures that a retry cannot fix: FAILED stays until the spec (or the Secret in the way) changes. */
const WAITS_FOR_CHANGE = new Set<string>([Reason.InvalidSpec, Reason.TargetSecretConflict, Reason.StagedKeySecretConflict, Reason.TargetSecretCollision,
  Reason.SecretNamespaceNotWatched]);

export type Decision =
  /** Nothing to do; look again after requeueAfterMs if set; `wait` says why when it is worth a log line. */
  | { action: "none"; requeueAfterMs?: number; expiresAt?: Date; renewsAt?: Date; wait?: Trigger }
  /** A new issuance: bump the revision, then status PENDING. */
  | { action: "begin"; revision: number; trigger: Trigger; resetFailures: boolean }
  /** Status FAILED with the reason; retry (with backoff) only when a retry can help. */
  | { action: "fail"; reason: Reason; message: string; retry: boolean }
  /** PENDING: stage a key (reuse the staged one when it belongs to this issuance), write the request, REQUESTED. */
  | { action: "request"; reuseStagedKey: boolean }
  /** Go back to PENDING within the same issuance (the staged key is reused). */
  | { action: "rerequest"; reason: Reason; message: string }
  /** The verified certificate goes into the target (root-cert.pem = rootCert, recording `rotation`), then ISSUED. */
  | { action: "write"; rootCert: string; rotation?: RootRotation }
  /** Root rotation step 1: root-cert.pem = rootCert (old + new roots), everything else in the target kept. */
  | { action: "trustNewRoots"; rootCert: string; rotation: RootRotation; message: string }
  /** REQUESTED, a root change waits (for approval, for the trust bundle): say so in status once, look again later. */
  | { action: "awaitRoot"; reason: Reason; message: string; requeueAfterMs: number }
  /** FINISHED, root rotation step 3: the overlap is over, root-cert.pem = rootCert (the new roots only). */
  | { action: "endRootOverlap"; rootCert: string; message: string }
  /** The target already holds this issuance's certificate (a crash after the write): ISSUED. */
  | { action: "adopt" }
  /** The target was written by Gloo Mesh's own agent for this IssuedCertificate: take it over (our label
   * and stamp, one guarded write, data untouched), then treat it like our own. No status change. */
  | { action: "adoptOriginal"; message: string }
  /** ISSUED: ask the pod bouncer to restart the directive's pods for this issuance (cycle). */
  | { action: "requestBounce"; cycle: string }
  /** ISSUED, the bouncer is at work: show what it waits for in status (its `error` field: Gloo Mesh's
   * status has no other text), look again after requeueAfterMs. */
  | { action: "awaitBounce"; message: string; requeueAfterMs: number }
  /** ISSUED, nothing (more) to wait for: drop the staged key, FINISHED. */
  | { action: "finish"; message: string };

export function decide(o: Observed, opts: DecideOptions): Decision {
  const { ic, book } = o;
  const generation = ic.metadata.generation ?? 0;
  const nextRevision = Math.max(book.revision, "stamp" in o.target ? o.target.stamp.revision : 0) + 1;
  if (ic.status?.observedGeneration !== generation) {
    const first = ic.status?.observedGeneration === undefined;
    return {
      action: "begin",
      revision: nextRevision,
      resetFailures: true,
      trigger: first
        ? { reason: Reason.SpecChanged, message: "new IssuedCertificate" }
        : { reason: Reason.SpecChanged, message: `spec changed to generation ${generation}; issuing with a new key, the current target secret stays in place until then` },
    };
  }
  if (o.intent instanceof InvalidSpecError) {
    const message = `invalid spec: ${o.intent.message}`;
    const said = ic.status?.state === "FAILED" && book.failureReason === Reason.InvalidSpec && ic.status.error === message;
    return said ? { action: "none" } : { action: "fail", reason: Reason.InvalidSpec, message, retry: false };
  }
  const intent = o.intent;
  const state: IssuedCertificateState = ic.status?.state ?? "PENDING";
  if (o.unwatchedNamespace !== undefined) {
    const what = o.unwatchedNamespace === intent.target.namespace ? "the target secret" : "the staged private key";
    const message = `namespace ${o.unwatchedNamespace} of ${what} is not one of --secret-namespaces, where this agent may read and write Secrets; ` +
      "nothing was made. Add it (chart: rbac.secretNamespaces) or change spec.issuedCertificateSecret";
    const said = state === "FAILED" && book.failureReason === Reason.SecretNamespaceNotWatched && ic.status?.error === message;
    return said ? { action: "none" } : { action: "fail", reason: Reason.SecretNamespaceNotWatched, message, retry: false };
  }
  // Another IssuedCertificate stages its key at our target's name: checked before anything is made or
  // adopted, in any state, so that the one that cannot work is this one, not the other.
  if (o.targetCollidesWith !== undefined) {
    const message = `target secret ${intent.target.namespace}/${intent.target.name} is where IssuedCertificate ${o.targetCollidesWith} ` +
      "stages its private key; nothing was written there. Change spec.issuedCertificateSecret (or rename that IssuedCertificate)";
    const said = state === "FAILED" && book.failureReason === Reason.TargetSecretCollision && ic.status?.error === message;
    return said ? { action: "none", requeueAfterMs: opts.conflictRecheckMs } : { action: "fail", reason: Reason.TargetSecretCollision, message, retry: false };
  }
  // A migration from Gloo Mesh's agent: its secret for this IssuedCertificate becomes ours first, in any
  // state; the next pass sees our own target (the FINISHED policy chain checks it like any other).
  if (o.target.state === "original") {
    const { namespace, name } = intent.target;
    return { action: "adoptOriginal", message: `target secret ${namespace}/${name} was written by Gloo Mesh's certificate agent for this ` +
      `IssuedCertificate (label ${ORIGINAL_AGENT_LABEL}=${ic.metadata.namespace}); cert-agent manages it from now on, its data unchanged` };
  }
  // Checked before any key is made: a Secret in our way fails at once, not after the issuer signed.
  if (state !== "FAILED" && o.target.state === "foreign") {
    return { action: "fail", reason: Reason.TargetSecretConflict, message: o.target.message, retry: false };
  }
  if (state !== "FAILED" && o.staged?.state === "foreign") {
    return { action: "fail", reason: Reason.StagedKeySecretConflict, message: o.staged.message, retry: false };
  }
  const current: IssuanceStamp = { owner: ownerKey(ic), revision: book.revision, fingerprint: "" };

  switch (state) {
    case "PENDING": {
      const staged = o.staged;
      const reuse = staged?.state === "ready" && sameIssuance(staged.stamp, current) &&
        describeKeySpec(staged.key.spec) === describeKeySpec(intent.keySpec);
      return { action: "request", reuseStagedKey: reuse };
    }

    case "REQUESTED": {
      // observe reads both in REQUESTED; absent reads as missing (never a TypeError).
      const staged: StagedKeySummary = o.staged ?? { state: "missing" };
      const request: RequestSummary = o.request ?? { state: "missing" };
      if (staged.state === "ready" && describeKeySpec(staged.key.spec) !== describeKeySpec(intent.keySpec)) {
        return begin(nextRevision, { reason: Reason.KeyAlgorithmChanged, message: `key type changed from ${describeKeySpec(staged.key.spec)} to ${describeKeySpec(intent.keySpec)}; issuing with a new key` });
      }
      if (staged.state !== "ready" || !sameIssuance(staged.stamp, current)) {
        // Crashed after writing the target and deleting the staged key, before recording ISSUED?
        if (request.state === "present" && o.target.state === "valid" && sameIssuance(o.target.stamp, current) &&
          request.certificatePem !== "" && o.target.caCertPem === request.certificatePem) {
          return { action: "adopt" };
        }
        const why = staged.state === "unreadable"
          ? { reason: Reason.StagedKeyUnreadable, message: `${staged.message}; issuing again with a new key` }
          : { reason: Reason.PrivateKeyMissing, message: `staged private key ${ownerKey(ic)} is missing; issuing again with a new key` };
        return begin(nextRevision, why);
      }
      const ours = { ...current, fingerprint: staged.fingerprint };
      // The target already holds this issuance's certificate: a pass wrote it and could not record
      // ISSUED (a crash, a 409). Record it; never write again, whatever the issuer answered since.
      if (o.target.state === "valid" && sameIssuance(o.target.stamp, ours)) return { action: "adopt" };
      if (request.state === "missing") {
        return { action: "rerequest", reason: Reason.CertificateRequestMissing, message: `CertificateRequest ${ownerKey(ic)} disappeared; requesting again` };
      }
      if (!sameIssuance(request.stamp, ours)) {
        return { action: "rerequest", reason: Reason.CertificateRequestMissing, message: `CertificateRequest ${ownerKey(ic)} belongs to another issuance; requesting again` };
      }
      if (request.answer === "pending") return { action: "none", requeueAfterMs: opts.resyncMs };
      if (request.answer === "failed") {
        return { action: "fail", reason: Reason.IssuerFailed, retry: true,
          message: `certificate request ${ic.metadata.namespace}.${ic.metadata.name} failed to be signed by Issuer: ${boundedText(request.error)}` };
      }
      // observe verifies every FINISHED answer to our ready key; none means nothing verified yet: look again.
      const verdict = o.verdict;
      if (!verdict) return { action: "none", requeueAfterMs: opts.resyncMs };
      if (!verdict.ok) {
        return { action: "fail", reason: Reason.CertificateRejected, retry: true,
          message: `certificate from CertificateRequest ${ownerKey(ic)} rejected, target secret left unchanged: ${verdict.error.message}` };
      }
      // The issuer's clock is ahead of ours (within the tolerance verify allowed): istiod would refuse a
      // certificate that is not valid yet, so write it once it is.
      const validInMs = verdict.certificate.notBefore.getTime() - opts.now.getTime();
      if (validInMs > 0) {
        return { action: "none", requeueAfterMs: validInMs, wait: { reason: Reason.WaitingForValidity,
          message: `the certificate is valid from ${verdict.certificate.notBefore.toISOString()}, ${validInMs} ms from now by our clock (issuer clock ahead); writing it then` } };
      }
      return decideRoots(o, request.rootPem, opts);
    }

    case "ISSUED":
      return decideBounce(o, opts);

    case "FINISHED": {
      // (A foreign target was refused above, before the chain.)
      const renewBefore = opts.renewBefore ?? DEFAULT_RENEW_BEFORE;
      // Late: past the renewal time by more than a resync period (and at least a minute): the agent was down.
      const trigger = reissueTrigger(o, { now: opts.now, renewBefore, lateAfterMs: Math.max(opts.resyncMs, 60_000) });
      if (trigger) return begin(nextRevision, trigger);
      const target = o.target;
      if (target.state !== "valid") return { action: "none" };
      // Wake up at the renewal time; long delays are safe (Clock chunks them) and the resync
      // re-checks against the wall clock anyway, so a suspend or a clock step is caught.
      const renewsAt = renewalTime({ notBefore: target.notBefore, notAfter: target.notAfter, pem: target.caCertPem }, renewBefore);
      let wakeAt = renewsAt.getTime();
      if (target.rotation?.phase === "overlap") {
        const endsAt = Date.parse(target.rotation.until);
        if (opts.now.getTime() >= endsAt) {
          const ending = `root rotation step 3 of 3: the overlap ended at ${target.rotation.until}`;
          return target.rootsAfterOverlap !== undefined
            ? { action: "endRootOverlap", rootCert: target.rootsAfterOverlap, message: `${ending}; root-cert.pem now holds only the new root${target.rotation.newRoots.length > 1 ? "s" : ""}` }
            // Hand-edited since: the named roots no longer verify ca-cert.pem. Keep every root (a valid CA) and stop the rotation.
            : { action: "endRootOverlap", rootCert: target.rootCertPem, message: `${ending}; the new roots recorded do not verify ca-cert.pem, so root-cert.pem keeps all its roots` };
        }
        wakeAt = Math.min(wakeAt, endsAt);
      }
      return { action: "none", expiresAt: target.notAfter, renewsAt, requeueAfterMs: wakeAt - opts.now.getTime() };
    }

    case "FAILED": {
      if (book.failureReason === Reason.InvalidSpec) return { action: "none" }; // a spec change starts over
      if (WAITS_FOR_CHANGE.has(book.failureReason)) {
        const inTheWay = o.target.state === "foreign" || (book.failureReason === Reason.StagedKeySecretConflict && o.staged?.state === "foreign");
        if (inTheWay) return { action: "none", requeueAfterMs: opts.conflictRecheckMs };
        const gone = book.failureReason === Reason.TargetSecretCollision
          ? "no IssuedCertificate stages its key at the target any more; issuing"
          : book.failureReason === Reason.SecretNamespaceNotWatched
            ? "the Secrets' namespaces are now among --secret-namespaces; issuing"
            : "the Secret that was in the way is gone or handed over; issuing";
        return begin(nextRevision, { reason: Reason.Retrying, message: gone });
      }
      const wait = (book.retryAtMs ?? 0) - opts.now.getTime();
      if (wait > 0) return { action: "none", requeueAfterMs: wait };
      return begin(nextRevision, { reason: Reason.Retrying, message: `retrying after failure number ${Math.max(book.failures, 1)}` });
    }
  }
}

/** ISSUED: the target is written and verified; hand the pods over to the bouncer and wait for it. */
function decideBounce(o: Observed, opts: DecideOptions): Decision {
  const d = o.directive;
  if (!d) return { action: "finish", message: "certificate issued" };
  const where = `PodBounceDirective ${d.ref.namespace}/${d.ref.name}`;
  if (d.state === "missing") {
    return { action: "fail", reason: Reason.PodBounceDirectiveMissing, retry: true,
      message: `${where} named by spec.podBounceDirective does not exist; the target secret is written and valid, no pod was restarted` };
  }
  const cycle = cycleOf(o.ic.metadata.namespace!, o.ic.metadata.name!, o.book.revision);
  // A request for another cycle, or whose time does not read (edited by hand), is asked again: a time
  // that is not a time would never reach the bounce timeout.
  const requestedAtMs = Date.parse(d.request?.requestedAt ?? "");
  if (d.request?.cycle !== cycle || !Number.isFinite(requestedAtMs)) return { action: "requestBounce", cycle };
  const progress = d.progress?.cycle === cycle ? d.progress : undefined;
  if (progress?.outcome === "done") return { action: "finish", message: `certificate issued; the pods of ${where} were restarted` };
  if (progress?.outcome === "error") {
    return { action: "fail", reason: Reason.BounceFailed, retry: true, message: `${where}: ${progress.message}; the target secret is written and valid` };
  }
  const timeoutMs = opts.bounceTimeoutMs ?? 600_000;
  const waitedMs = opts.now.getTime() - requestedAtMs;
  if (waitedMs >= timeoutMs) {
    return { action: "fail", reason: Reason.BounceTimedOut, retry: true,
      message: `${where} did not finish within ${Math.round(timeoutMs / 1000)} s (${progress?.message || "the bouncer has not started"}); the target secret is written and valid` };
  }
  return { action: "awaitBounce", message: `pods of ${where} being restarted: ${progress?.message || "the bouncer has not started"}`,
    requeueAfterMs: Math.min(timeoutMs - waitedMs, opts.resyncMs) };
}

/**
 * REQUESTED, the answer verified: write it, unless its roots are not all trusted by the target yet (a
 * root change: step 1 first, see root-rotation.ts) or step 1 is written and the trust bundle has not
 * reached every istio-ca-root-cert ConfigMap yet.
 */
function decideRoots(o: Observed, answerRootPem: string, opts: DecideOptions): Decision {
  const target = o.target;
  // No trusted target to protect (first issuance, missing, broken): the answer is written as it is.
  if (target.state !== "valid") return { action: "write", rootCert: answerRootPem };
  const answerRoots = rootFingerprints(answerRootPem);
  const added = missingFrom(target.rootShas, answerRoots);
  const { namespace, name } = (o.intent as CertificateIntent).target;
  const where = `${namespace}/${name}`;
  const overlapUntil = () => new Date(opts.now.getTime() + (opts.rootOverlapMs ?? DEFAULT_ROOT_OVERLAP_MS)).toISOString();
  if (added.length > 0) {
    const names = added.map(shortSha).join(", ");
    if (opts.rootChangePolicy === "require-approval") {
      const unapproved = missingFrom(approvedRoots(o.ic.metadata.annotations), added);
      if (unapproved.length > 0) {
        return { action: "awaitRoot", reason: Reason.RootChangeNotApproved, requeueAfterMs: opts.resyncMs,
          message: `the issuer signed with a new root (sha256 ${unapproved.join(", ")}) that is not approved (--root-change-policy=require-approval); ` +
            `${where} is unchanged. To accept it, add its SHA-256 to the annotation cert-agent.io/approved-root-sha256` };
      }
    }
    return { action: "trustNewRoots", rootCert: combineRoots(target.rootCertPem, answerRootPem),
      rotation: { phase: "trust", newRoots: answerRoots, since: opts.now.toISOString() },
      message: `the issuer signs with a new root (sha256 ${names}); root rotation step 1 of 3: root-cert.pem of ${where} now trusts the old and the new roots, ` +
        "the current intermediate stays until every istio-ca-root-cert ConfigMap holds both" };
  }
  const rotation = target.rotation;
  if (rotation?.phase === "trust") {
    const bundle = o.trustBundle;
    if (bundle && bundle.lacking.length > 0) {
      const shown = bundle.lacking.slice(0, 5).join("; ") + (bundle.lacking.length > 5 ? `; and ${bundle.lacking.length - 5} more` : "");
      return { action: "awaitRoot", reason: Reason.TrustBundlePropagating, requeueAfterMs: Math.min(opts.resyncMs, TRUST_BUNDLE_POLL_MS),
        message: `root rotation step 1 of 3: waiting for the old and new roots to reach ${bundle.lacking.length} of ${bundle.checked} istio-ca-root-cert ConfigMaps (${shown}); ` +
          "istiod publishes root-cert.pem when it reloads its CA files" };
    }
    // Step 2: the new intermediate, with every root still trusted until the overlap ends.
    return { action: "write", rootCert: target.rootCertPem, rotation: { phase: "overlap", newRoots: answerRoots, until: overlapUntil() } };
  }
  if (rotation?.phase === "overlap") {
    // A renewal during the overlap: the old roots stay until the overlap ends, whose roots are now these.
    return { action: "write", rootCert: target.rootCertPem, rotation: { ...rotation, newRoots: answerRoots } };
  }
  return { action: "write", rootCert: answerRootPem };
}

function begin(revision: number, trigger: Trigger): Decision {
  return { action: "begin", revision, trigger, resetFailures: false };
}

/** When the next retry is due after failure number `failures` (jitter from opts.random). */
export function retryAt(now: Date, failures: number, backoff: BackoffOptions): number {
  return now.getTime() + backoffDelay(failures, backoff);
}
