// The IssuedCertificate reconciler: gather (observe.ts) -> decide (decide.ts, pure) -> act (here).
// Each reconcile reads the current objects (through the caches: reconciler-cache.ts), takes one
// decision and carries it out with writes ordered for crash safety: the staged key before the
// CertificateRequest, the target secret before ISSUED, the staged key deleted after ISSUED, the
// bookkeeping annotations before the status they explain. A restart at any point therefore resumes
// from what is stored. A 409 on any write only requeues: it never re-runs a step with a new key (the
// original's #1198). Other API errors that a retry does not cure (api-failures.ts) are recorded as
// FAILED, with the request that failed.
import type { Logger } from "winston";
import { encodeBytes } from "../shared/api/builders";
import { API_VERSION, CERTIFICATE_REQUEST, CertificateRequest, ISSUED_CERTIFICATE, IssuedCertificate, IssuedCertificateState, POD_BOUNCE_DIRECTIVE, PodBounceDirective } from "../shared/api/types";
import { BackoffOptions } from "../shared/controller/backoff";
import { Clock } from "../shared/controller/clock";
import { Reconciler, requeueAfter, requeueNow, Result } from "../shared/controller/controller";
import { EventRecorder, EventType } from "../shared/controller/events";
import { ObjectClient } from "../shared/kube/api";
import type { Secret } from "../shared/kube/secrets";
import { buildCertChain, buildCsr, describeKeySpec, exportPrivateKeyPem, generateKeyPair, publicKeyFingerprint } from "../shared/pki";
import { ApiRequestError, classifyApiFailure, namingRequests } from "./api-failures";
import { BOUNCE_REQUEST_ANNOTATION, CA_KEY, MANAGED_BY_LABEL, MANAGED_BY_VALUE, Reason } from "./constants";
import { Decision, decide, retryAt } from "./decide";
import { Bookkeeping, bookkeepingPatch, IssuanceStamp, ownerKey, readBookkeeping, readStamp, stampAnnotations } from "./issuance";
import { AgentMetrics } from "./metrics";
import { Observed, observe, TargetSummaries } from "./observe";
import { RenewBefore, renewalTime } from "./renewal";
import { adoptedTargetSecret, ownerReference, privateKeyRef, secretData, stagedKeySecret, targetSecret } from "./secrets";
import { CertificateIntent, hasTarget } from "./spec";
import type { ConfigMap } from "./bouncer/pod-bouncer-reconciler";
import { CachedClients, cachedClients, NOT_CACHED, QUIET_PASS_MAX_MS, QuietPasses, ReadVersions, ReconcilerCache } from "./reconciler-cache";
import { RootChangePolicy, RootRotation, ROOT_ROTATION_ANNOTATION, rootRotationAnnotation } from "./root-rotation";

export interface ReconcilerOptions {
  issuedCertificates: ObjectClient<IssuedCertificate>;
  certificateRequests: ObjectClient<CertificateRequest>;
  secrets: ObjectClient<Secret>;
  clock: Clock;
  log: Logger;
  events: EventRecorder;
  metrics: AgentMetrics;
  /** Delay before a FAILED IssuedCertificate is retried with a new key. */
  retryBackoff: BackoffOptions;
  /** How long to wait before looking again at an object that waits on someone else. */
  resyncMs: number;
  /** A certificate whose notBefore is ahead of our clock by at most this is waited for, not refused. */
  clockSkewToleranceMs: number;
  /** How often a Secret in our way is looked at again (default 30 s). */
  conflictRecheckMs?: number;
  /** PodBounceDirectives: without it, ISSUED finishes without asking for a bounce. */
  directives?: ObjectClient<PodBounceDirective>;
  /** How long ISSUED waits for the pod bouncer (default 10 minutes). */
  bounceTimeoutMs?: number;
  /** When to renew a FINISHED certificate (default 1/3 of its lifetime before notAfter). */
  renewBefore?: RenewBefore;
  /** --secret-namespaces: the only namespaces where Secrets are read and written; undefined = all. */
  secretNamespaces?: readonly string[];
  /** --pod-namespaces: where a root rotation looks for istio-ca-root-cert ConfigMaps; undefined = all. */
  podNamespaces?: readonly string[];
  /** istio-ca-root-cert ConfigMaps, read by a root rotation; without it the trust bundle is not waited for. */
  configMaps?: ObjectClient<ConfigMap>;
  /** --root-change-policy (default accept). */
  rootChangePolicy?: RootChangePolicy;
  /** --root-overlap: how long the old roots stay trusted after the new intermediate (default 25 h). */
  rootOverlapMs?: number;
  /** The informers' caches, for the reads that may be a little stale (reconciler-cache.ts); without it every read is a request. */
  cache?: ReconcilerCache;
}

/** Requeue delay after a write conflict: someone changed the object, read it again soon. */
const CONFLICT_REQUEUE_MS = 200;
const WARNING_REASONS = new Set<string>([Reason.TargetSecretMissing, Reason.TargetSecretIncomplete, Reason.TargetSecretInvalid, Reason.StagedKeyUnreadable, Reason.PrivateKeyMissing,
  Reason.RenewalOverdue, Reason.CertificateExpired]);

export class IssuedCertificateReconciler implements Reconciler {
  private readonly d: ReconcilerOptions;
  /** Per key: consecutive passes that ended in a transient API error (api-failures.ts). */
  private readonly transientFailures = new Map<string, number>();
  /** The last pass of each object that decided to wait, to skip wake-ups while the caches show no change (reconciler-cache.ts). */
  private readonly quiet = new QuietPasses();
  /** With a cache: the clients that read through it, and hold what this reconciler last read or wrote. */
  private readonly cached?: CachedClients<IssuedCertificate, CertificateRequest, Secret>;
  /** Valid target summaries of the passes in flight (observe.ts). */
  private readonly summaries = new TargetSummaries();

  constructor(options: ReconcilerOptions) {
    // Every failed request says which it was, so that a FAILED caused by the API server can name it.
    const named = {
      issuedCertificates: namingRequests(options.issuedCertificates, ISSUED_CERTIFICATE.kind),
      certificateRequests: namingRequests(options.certificateRequests, CERTIFICATE_REQUEST.kind),
      secrets: namingRequests(options.secrets, "Secret"),
    };
    this.cached = options.cache ? cachedClients(options.cache, options.clock, named) : undefined;
    this.d = {
      ...options,
      ...(this.cached ?? named),
      ...(options.directives ? { directives: namingRequests(options.directives, POD_BOUNCE_DIRECTIVE.kind) } : {}),
      ...(options.configMaps ? { configMaps: namingRequests(options.configMaps, "ConfigMap") } : {}),
    };
  }

  /**
   * Drops what the cached clients hold for one IssuedCertificate and its Secrets and request: once it
   * is settled (FINISHED, FAILED: nothing in flight, and no key material kept in memory), when it is
   * deleted, and after a conflict (what they hold may be what someone else just replaced).
   */
  private forgetHeld(namespace: string, name: string): void {
    this.summaries.forget(`${namespace}/${name}`);
    if (!this.cached) return;
    const target = this.cached.issuedCertificates.held(namespace, name)?.spec?.issuedCertificateSecret;
    if (target?.namespace && target.name) this.cached.secrets.forget(target.namespace, target.name);
    this.cached.secrets.forget(namespace, name);
    this.cached.certificateRequests.forget(namespace, name);
    this.cached.issuedCertificates.forget(namespace, name);
  }

  async reconcile(key: string, signal: AbortSignal): Promise<Result | void> {
    const [namespace, name] = key.split("/");
    // The last pass decided to wait, and the caches show that nothing it read has changed since (a resync
    // of a FINISHED object, a wake-up by our own write): it would decide the same, so no request at all.
    const quietMs = this.d.cache ? this.quiet.stillQuiet(key, this.d.cache, this.d.clock.now().getTime()) : undefined;
    if (quietMs !== undefined) {
      this.d.log.debug("reconciled", { namespace, name, action: "none", unchanged: true });
      return requeueAfter(quietMs);
    }
    this.quiet.forget(key);
    const ic = await this.d.issuedCertificates.get(namespace, name);
    // Deleted: the staged key and the CertificateRequest carry ownerReferences, so the garbage
    // collector removes them; the target secret stays because Istio is still using it.
    if (!ic || ic.metadata.deletionTimestamp) {
      this.forgetHeld(namespace, name);
      for (const gauge of [this.d.metrics.expiration, this.d.metrics.renewal, this.d.metrics.ready, this.d.metrics.rootRotationPhase]) gauge.remove({ namespace, name });
      this.transientFailures.delete(key);
      return;
    }
    if (!hasTarget(ic)) return; // Gloo Mesh skips these too: nothing says where to write.
    const recorder = new Recorder(this.d, ic, signal);
    try {
      const result = await this.pass(recorder, signal);
      this.transientFailures.delete(key);
      return result;
    } catch (err) {
      if (!(err instanceof ApiRequestError)) throw err;
      return this.afterApiError(key, recorder, err);
    }
  }

  /** Gather, decide, act. */
  private async pass(recorder: Recorder, signal: AbortSignal): Promise<Result | void> {
    const { ic } = recorder;
    const { namespace, name } = ic.metadata;
    const now = this.d.clock.now();
    const observed = await observe(ic, { ...this.d, summaries: this.summaries }, { now, clockSkewToleranceMs: this.d.clockSkewToleranceMs, secretNamespaces: this.d.secretNamespaces,
      podNamespaces: this.d.podNamespaces });
    // Ready while the target serves a valid certificate of ours, also during a renewal or a FAILED retry.
    const serving = observed.target.state === "valid" && now.getTime() < observed.target.notAfter.getTime();
    this.d.metrics.ready.set({ namespace: namespace!, name: name! }, serving ? 1 : 0);
    const decision = decide(observed, {
      now,
      retryBackoff: this.d.retryBackoff,
      resyncMs: this.d.resyncMs,
      conflictRecheckMs: this.d.conflictRecheckMs ?? 30_000,
      bounceTimeoutMs: this.d.bounceTimeoutMs,
      renewBefore: this.d.renewBefore,
      rootChangePolicy: this.d.rootChangePolicy,
      rootOverlapMs: this.d.rootOverlapMs,
    });
    this.d.metrics.rootRotationPhase.set({ namespace: namespace!, name: name! }, rotationPhaseValue(observed));
    // One debug line per pass: what was decided, never what was read (it may hold key material).
    this.d.log.debug("reconciled", { namespace, name, state: ic.status?.state ?? "", action: decision.action,
      ...(decision.action === "none" && decision.wait ? { reason: decision.wait.reason } : {}) });
    if (decision.action === "none" && decision.wait) this.d.log.info("waiting", { namespace, name, reason: decision.wait.reason, detail: decision.wait.message });
    const result = await new Act(this.d, observed, recorder, signal).run(decision);
    if (decision.action === "none") {
      this.rememberQuiet(observed, now.getTime() + (decision.requeueAfterMs ?? QUIET_PASS_MAX_MS), now.getTime());
      const state = ic.status?.state;
      if (state === "FINISHED" || state === "FAILED") this.forgetHeld(namespace!, name!);
    }
    return result;
  }

  /** A pass that decided to wait: what it read, so that passes seeing the same in the caches are skipped. */
  private rememberQuiet(o: Observed, untilMs: number, nowMs: number): void {
    const { namespace, name, resourceVersion } = o.ic.metadata;
    if (!this.d.cache || !resourceVersion) return;
    const versions: ReadVersions = { issuedCertificate: resourceVersion };
    const version = (obj: { metadata: { resourceVersion?: string } } | undefined) => obj?.metadata.resourceVersion ?? "";
    if ("target" in o.raw) {
      versions.target = version(o.raw.target);
      const target = (o.intent as CertificateIntent).target;
      const other = this.d.cache.issuedCertificate(target.namespace, target.name);
      if (other === NOT_CACHED) return; // the collision check asked the API server: a pass must ask again
      versions.collision = version(other);
    }
    if ("staged" in o.raw) versions.staged = version(o.raw.staged);
    if ("request" in o.raw) versions.request = version(o.raw.request);
    this.quiet.remember(`${namespace}/${name}`, { versions, untilMs }, nowMs);
  }

  /**
   * A request of the pass failed. A 409 requeues soon; a transient error is thrown for the controller's
   * rate-limited retry until it has ended too many passes in a row; anything else is recorded as FAILED.
   */
  private async afterApiError(key: string, recorder: Recorder, err: ApiRequestError): Promise<Result | void> {
    const inARow = (this.transientFailures.get(key) ?? 0) + 1;
    const failure = classifyApiFailure(err, recorder.ic.spec?.issuedCertificateSecret, inARow);
    if (failure.kind === "transient") {
      this.transientFailures.set(key, inARow);
      throw err;
    }
    this.transientFailures.delete(key);
    if (failure.kind === "conflict") {
      this.forgetHeld(recorder.ic.metadata.namespace!, recorder.ic.metadata.name!);
      this.d.log.debug("write conflict, requeueing", { namespace: recorder.ic.metadata.namespace, name: recorder.ic.metadata.name, error: err.message });
      return requeueAfter(CONFLICT_REQUEUE_MS);
    }
    // Already FAILED for this reason and not due yet (e.g. woken by our own status write): nothing new to say.
    const waitMs = recorder.retryDueInMs(failure.reason);
    if (waitMs > 0) return requeueAfter(waitMs);
    return recorder.fail(failure.reason, failure.message, true);
  }
}

/**
 * Writes what happens to one IssuedCertificate: the bookkeeping annotations, then the status, a log
 * line and an Event. Holds the object as last written, so a failure recorded after other writes of the
 * same pass carries the current resourceVersion.
 */
class Recorder {
  ic: IssuedCertificate;
  book: Bookkeeping;
  /** The state as read at the start of the pass (the `from` of a transition). */
  private readonly from: IssuedCertificateState | "";

  constructor(
    private readonly d: ReconcilerOptions,
    ic: IssuedCertificate,
    private readonly signal: AbortSignal,
  ) {
    this.ic = ic;
    this.book = readBookkeeping(ic);
    this.from = ic.status?.state ?? "";
  }

  /** The issuance revision, as recorded on the IssuedCertificate (updated when a new issuance begins). */
  get revision(): number {
    return this.book.revision;
  }

  /** How long until the retry of a FAILED for `reason` is due (0 when it is due, or the object is not FAILED so). */
  retryDueInMs(reason: Reason): number {
    if (this.from !== "FAILED" || this.book.failureReason !== reason || this.book.retryAtMs === undefined) return 0;
    return Math.max(0, this.book.retryAtMs - this.d.clock.now().getTime());
  }

  async fail(reason: Reason, message: string, retry: boolean): Promise<Result | void> {
    const failures = this.book.failures + 1;
    const next: Bookkeeping = { revision: this.revision, failures, failureReason: reason };
    if (retry) next.retryAtMs = retryAt(this.d.clock.now(), failures, this.d.retryBackoff);
    await this.writeBookkeeping(next);
    await this.transition("FAILED", reason, message, "Warning", message);
    if (next.retryAtMs !== undefined) return requeueAfter(Math.max(1, next.retryAtMs - this.d.clock.now().getTime()));
    // Invalid specs wait for a spec change (a watch event); a Secret in the way is looked at again.
    return reason === Reason.InvalidSpec ? undefined : requeueAfter(this.d.conflictRecheckMs ?? 30_000);
  }

  /** Bookkeeping first: a crash before the status write leaves a count one too high, never too low. */
  async writeBookkeeping(next: Bookkeeping): Promise<void> {
    const { namespace, name, resourceVersion } = this.ic.metadata;
    this.signal.throwIfAborted();
    this.ic = await this.d.issuedCertificates.patchAnnotations(namespace!, name!, bookkeepingPatch(next), resourceVersion);
    this.book = next;
  }

  /** Records a state change: status (guarded by resourceVersion), then one log line and one Event. */
  async transition(to: IssuedCertificateState, reason: Reason, message: string, type: EventType = "Normal", error = ""): Promise<Result | void> {
    const ic = this.ic;
    const generation = ic.metadata.generation ?? 0;
    this.signal.throwIfAborted();
    await this.d.issuedCertificates.replaceStatus({ ...ic, status: { observedGeneration: generation, state: to, error } });
    const fields = { namespace: ic.metadata.namespace, name: ic.metadata.name, generation, revision: this.revision, from: this.from, to, reason, detail: message };
    if (type === "Warning") this.d.log.warn("transition", fields);
    else this.d.log.info("transition", fields);
    this.d.metrics.transitions.inc({ from: this.from || "NONE", to, reason });
    // Events are best effort and never reject: not awaited, so the next pass need not wait for the
    // write (four per issuance); the agent flushes them when it stops.
    void this.d.events.record({ ...ic, apiVersion: API_VERSION, kind: ISSUED_CERTIFICATE.kind }, type, reason, message);
    // The status write triggers a watch event; requeue anyway so progress never hangs on one event.
    return to === "FAILED" || to === "FINISHED" ? undefined : requeueNow;
  }
}

/** Carries out one decision about one observed IssuedCertificate. */
class Act {
  constructor(
    private readonly d: ReconcilerOptions,
    private readonly o: Observed,
    private readonly r: Recorder,
    private readonly signal: AbortSignal,
  ) {}

  private get ic(): IssuedCertificate {
    return this.r.ic;
  }

  private get revision(): number {
    return this.r.revision;
  }

  private get intent(): CertificateIntent {
    return this.o.intent as CertificateIntent;
  }

  private get stamp(): IssuanceStamp {
    return { owner: ownerKey(this.ic), revision: this.revision, fingerprint: "" };
  }

  async run(decision: Decision): Promise<Result | void> {
    switch (decision.action) {
      case "none":
        if (decision.expiresAt) this.recordExpiry(decision.expiresAt);
        if (decision.renewsAt) this.recordRenewal(decision.renewsAt);
        return decision.requeueAfterMs ? requeueAfter(decision.requeueAfterMs) : undefined;
      case "begin": {
        const { reason, message } = decision.trigger;
        await this.r.writeBookkeeping({
          revision: decision.revision,
          failures: decision.resetFailures ? 0 : this.r.book.failures,
          failureReason: decision.resetFailures ? "" : this.r.book.failureReason,
        });
        return this.r.transition("PENDING", reason, `issuance revision ${decision.revision}: ${message}`, WARNING_REASONS.has(reason) ? "Warning" : "Normal");
      }
      case "fail":
        return this.r.fail(decision.reason, decision.message, decision.retry);
      case "request":
        return this.request(decision.reuseStagedKey);
      case "rerequest":
        return this.r.transition("PENDING", decision.reason, decision.message);
      case "write":
        return this.write(decision.rootCert, decision.rotation);
      case "trustNewRoots":
        return this.trustNewRoots(decision.rootCert, decision.rotation, decision.message);
      case "awaitRoot":
        return this.awaitRoot(decision.reason, decision.message, decision.requeueAfterMs);
      case "endRootOverlap":
        return this.endRootOverlap(decision.rootCert, decision.message);
      case "adopt":
        return this.r.transition("ISSUED", Reason.Issued, `target secret ${this.intent.target.namespace}/${this.intent.target.name} already holds the certificate`);
      case "adoptOriginal":
        return this.adoptOriginal(decision.message);
      case "requestBounce":
        return this.requestBounce(decision.cycle);
      case "awaitBounce":
        return this.awaitBounce(decision.message, decision.requeueAfterMs);
      case "finish":
        return this.finish(decision.message);
    }
  }

  // PENDING: stage a key (or reuse this issuance's), then request a signature for it.
  private async request(reuse: boolean): Promise<Result | void> {
    const { staged } = this.o;
    let keys: CryptoKeyPair;
    let fingerprint: string;
    if (reuse && staged?.state === "ready") {
      // A crash or conflict after the key was stored: carry on with the same key.
      keys = { privateKey: staged.key.privateKey, publicKey: staged.key.publicKey };
      fingerprint = staged.fingerprint;
    } else {
      const started = this.d.clock.now().getTime();
      keys = await generateKeyPair(this.intent.keySpec);
      this.d.metrics.keygenSeconds.observe({ algorithm: describeKeySpec(this.intent.keySpec) }, (this.d.clock.now().getTime() - started) / 1000);
      fingerprint = await publicKeyFingerprint(keys.publicKey);
      const pem = await exportPrivateKeyPem(keys.privateKey);
      const body = stagedKeySecret(this.ic, pem, { ...this.stamp, fingerprint }, this.o.raw.staged);
      this.signal.throwIfAborted();
      if (this.o.raw.staged) await this.d.secrets.replace(body);
      else await this.d.secrets.create(body.metadata.namespace!, body);
    }

    const csr = await buildCsr({ keys, org: this.intent.org, hosts: this.intent.hosts });
    const ours = { ...this.stamp, fingerprint };
    const wanted = certificateRequestFor(this.ic, csr, ours);
    const existing = this.o.raw.request;
    const request = this.o.request;
    this.signal.throwIfAborted();
    if (!existing) {
      await this.d.certificateRequests.create(wanted.metadata.namespace!, wanted);
    } else if (request?.state !== "present" || request.stamp.revision !== ours.revision || request.stamp.fingerprint !== fingerprint) {
      // One CertificateRequest per IssuedCertificate, overwritten in place: the spec change bumps its
      // generation, which tells the issuer to sign again.
      await this.d.certificateRequests.replace({ ...wanted, metadata: { ...wanted.metadata, resourceVersion: existing.metadata.resourceVersion } });
    }
    const { namespace, name } = this.ic.metadata;
    return this.r.transition("REQUESTED", Reason.CertificateRequested,
      `requested a certificate for a ${describeKeySpec(this.intent.keySpec)} key (sha256 ${fingerprint.slice(0, 16)}) with CertificateRequest ${namespace}/${name}`);
  }

  // REQUESTED, verified: the whole bundle in one write, then ISSUED. rootCert is the answer's roots, or
  // during a root rotation every root the target trusts (root-rotation.ts).
  private async write(rootCert: string, rotation: RootRotation | undefined): Promise<Result | void> {
    const { staged, request, verdict } = this.o;
    if (staged?.state !== "ready" || request?.state !== "present" || !verdict?.ok) throw new Error("write decided without a verified certificate");
    const target = this.intent.target;
    const body = targetSecret(target, {
      caCert: request.certificatePem,
      caKey: staged.pem,
      certChain: buildCertChain(request.certificatePem, rootCert),
      rootCert,
    }, { ...this.stamp, fingerprint: staged.fingerprint }, this.o.raw.target, rootRotationAnnotation(rotation));
    const existing = this.o.raw.target;
    this.signal.throwIfAborted();
    if (!existing) await this.d.secrets.create(target.namespace, body);
    else if (!sameSecret(existing, body)) await this.d.secrets.replace(body);
    const certificate = verdict.certificate;
    // Known from now on (the next FINISHED pass computes the same from the target's bytes).
    this.recordExpiry(certificate.notAfter);
    this.recordRenewal(renewalTime({ notBefore: certificate.notBefore, notAfter: certificate.notAfter, pem: request.certificatePem }, this.d.renewBefore));
    const step2 = rotation?.phase === "overlap" && this.o.target.state === "valid" && this.o.target.rotation?.phase === "trust"
      ? `; root rotation step 2 of 3: signed by the new root, root-cert.pem keeps the old one too until ${rotation.until}` : "";
    return this.r.transition("ISSUED", Reason.Issued,
      `wrote ${target.namespace}/${target.name}: serial ${certificate.serialNumber}, valid until ${certificate.notAfter.toISOString()}${step2}`);
  }

  // Root rotation step 1: the target keeps its intermediate and key; root-cert.pem (and the chain's tail)
  // gain the new roots. One guarded write; the phase annotation goes with it. Always a Warning: whoever can
  // answer a CertificateRequest can change the mesh's root, and an operator must hear of it.
  private async trustNewRoots(rootCert: string, rotation: RootRotation, message: string): Promise<Result | void> {
    const existing = this.o.raw.target;
    const target = this.o.target;
    if (!existing || target.state !== "valid") throw new Error("trustNewRoots decided without a valid target");
    await this.rewriteRoots(existing, target.caCertPem, rootCert, rootRotationAnnotation(rotation));
    this.d.metrics.rootChanges.inc({ namespace: this.ic.metadata.namespace!, name: this.ic.metadata.name! });
    await this.say("Warning", Reason.RootChanged, message);
    return requeueNow;
  }

  // Root rotation step 3 (FINISHED): the old roots go. No status change; the next pass sleeps until renewal.
  private async endRootOverlap(rootCert: string, message: string): Promise<Result | void> {
    const existing = this.o.raw.target;
    const target = this.o.target;
    if (!existing || target.state !== "valid") throw new Error("endRootOverlap decided without a valid target");
    await this.rewriteRoots(existing, target.caCertPem, rootCert, rootRotationAnnotation(undefined));
    await this.say("Normal", Reason.RootOverlapEnded, message);
    return requeueNow;
  }

  // A root change that waits (approval, propagation): status.error says why once per message, with a log line
  // and an Event; the wait itself is a requeue.
  private async awaitRoot(reason: Reason, message: string, requeueAfterMs: number): Promise<Result | void> {
    if ((this.ic.status?.error ?? "") !== message) {
      this.signal.throwIfAborted();
      this.r.ic = await this.d.issuedCertificates.replaceStatus({ ...this.ic, status: { ...this.ic.status, error: message } });
      await this.say(reason === Reason.RootChangeNotApproved ? "Warning" : "Normal", reason, message);
    }
    return requeueAfter(requeueAfterMs);
  }

  /** The target with another root-cert.pem (and cert-chain.pem to match), its key, certificate and stamp unchanged. */
  private async rewriteRoots(existing: Secret, caCertPem: string, rootCert: string, annotations: Record<string, string | null>): Promise<void> {
    const bundle = { caCert: caCertPem, caKey: secretData(existing, CA_KEY)!, certChain: buildCertChain(caCertPem, rootCert), rootCert };
    const body = targetSecret(this.intent.target, bundle, readStamp(existing.metadata), existing, annotations);
    this.signal.throwIfAborted();
    await this.d.secrets.replace(body);
  }

  /** A log line and an Event about this IssuedCertificate that are not a state change. */
  private async say(type: EventType, reason: Reason, message: string): Promise<void> {
    const { namespace, name } = this.ic.metadata;
    const fields = { namespace, name, revision: this.revision, reason, detail: message };
    if (type === "Warning") this.d.log.warn("root rotation", fields);
    else this.d.log.info("root rotation", fields);
    void this.d.events.record({ ...this.ic, apiVersion: API_VERSION, kind: ISSUED_CERTIFICATE.kind }, type, reason, message);
  }

  // Migration: Gloo Mesh's agent wrote the target for this IssuedCertificate. One write (guarded by its
  // resourceVersion) adds our label and stamp; a crash before it only adopts again. The stamp's
  // revision is 0: no issuance of ours made it, so it is never paired with one.
  private async adoptOriginal(message: string): Promise<Result | void> {
    const existing = this.o.raw.target;
    if (!existing || this.o.target.state !== "original") throw new Error("adoptOriginal decided without the original agent's secret");
    const body = adoptedTargetSecret(existing, { owner: ownerKey(this.ic), revision: 0, fingerprint: this.o.target.fingerprint });
    this.signal.throwIfAborted();
    await this.d.secrets.replace(body);
    const { namespace, name } = this.ic.metadata;
    const fields = { namespace, name, revision: this.revision, reason: Reason.AdoptedOriginalSecret, detail: message };
    this.d.log.info("adopted", fields);
    void this.d.events.record({ ...this.ic, apiVersion: API_VERSION, kind: ISSUED_CERTIFICATE.kind }, "Normal", Reason.AdoptedOriginalSecret, message);
    // The next pass reads it as our own target and decides from the state the original left.
    return requeueNow;
  }

  // ISSUED: the pods that must load the new CA are the bouncer's job; it reports on the directive.
  private async requestBounce(cycle: string): Promise<Result | void> {
    const d = this.o.directive!;
    this.signal.throwIfAborted();
    await this.d.directives!.patchAnnotations(d.ref.namespace, d.ref.name, {
      [BOUNCE_REQUEST_ANNOTATION]: JSON.stringify({ cycle, requestedAt: this.d.clock.now().toISOString() }),
    });
    const { namespace, name } = this.ic.metadata;
    const fields = { namespace, name, revision: this.revision, reason: Reason.BounceRequested, detail: `asked PodBounceDirective ${d.ref.namespace}/${d.ref.name} to restart its pods` };
    this.d.log.info("bounce", fields);
    void this.d.events.record({ ...this.ic, apiVersion: API_VERSION, kind: ISSUED_CERTIFICATE.kind }, "Normal", Reason.BounceRequested, fields.detail);
    // The directive's progress wakes us (a watch); look again anyway after the resync period.
    return requeueAfter(this.d.resyncMs);
  }

  // ISSUED, still bouncing: the bouncer logs and records each wait as an Event; status says the latest.
  private async awaitBounce(message: string, requeueAfterMs: number): Promise<Result | void> {
    if ((this.ic.status?.error ?? "") !== message) {
      this.signal.throwIfAborted();
      await this.d.issuedCertificates.replaceStatus({ ...this.ic, status: { ...this.ic.status, error: message } });
    }
    return requeueAfter(requeueAfterMs);
  }

  // ISSUED, done: the key now lives only in the target secret.
  private async finish(message: string): Promise<Result | void> {
    const keyRef = privateKeyRef(this.ic);
    this.signal.throwIfAborted();
    await this.d.secrets.delete(keyRef.namespace, keyRef.name);
    if (this.r.book.failures > 0 || this.r.book.failureReason) {
      await this.r.writeBookkeeping({ revision: this.revision, failures: 0, failureReason: "" });
    }
    return this.r.transition("FINISHED", Reason.Finished, message);
  }

  private recordExpiry(notAfter: Date): void {
    this.d.metrics.expiration.set({ namespace: this.ic.metadata.namespace!, name: this.ic.metadata.name! }, notAfter.getTime() / 1000);
  }

  private recordRenewal(at: Date): void {
    this.d.metrics.renewal.set({ namespace: this.ic.metadata.namespace!, name: this.ic.metadata.name! }, at.getTime() / 1000);
  }
}

/** Already up to date (a retry after a crash between the write and ISSUED): skip the write. */
function sameSecret(existing: Secret, wanted: Secret): boolean {
  const a = existing.data ?? {};
  const b = wanted.data ?? {};
  return Object.keys(a).length === Object.keys(b).length && Object.keys(b).every((k) => a[k] === b[k]) &&
    JSON.stringify(readStamp(existing.metadata)) === JSON.stringify(readStamp(wanted.metadata)) &&
    existing.metadata.annotations?.[ROOT_ROTATION_ANNOTATION] === wanted.metadata.annotations?.[ROOT_ROTATION_ANNOTATION];
}

/** cert_agent_root_rotation_phase: 0 none, 1 step 1 written (trusting both), 2 overlap (new intermediate, old roots kept). */
function rotationPhaseValue(o: Observed): number {
  const rotation = o.target.state === "valid" ? o.target.rotation : undefined;
  return rotation?.phase === "trust" ? 1 : rotation?.phase === "overlap" ? 2 : 0;
}


function certificateRequestFor(ic: IssuedCertificate, csrPem: string, stamp: IssuanceStamp): CertificateRequest {
  return {
    apiVersion: API_VERSION,
    kind: CERTIFICATE_REQUEST.kind,
    metadata: {
      name: ic.metadata.name,
      namespace: ic.metadata.namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
      annotations: stampAnnotations(stamp),
      ownerReferences: [ownerReference(ic)],
    },
    spec: { certificateSigningRequest: encodeBytes(csrPem) },
  };
}
