// The IssuedCertificate workflow of REFERENCE.md, one decision per state:
//   PENDING -> REQUESTED -> ISSUED -> FINISHED, and FAILED (retried after backoff).
// Every reconcile reads fresh objects from the API server, does at most one step, and records the
// step in status last, so a crash at any point resumes from what is stored: the staged key is written
// before the CertificateRequest, the target secret before ISSUED, the staged key deleted after ISSUED.
import { CoreV1Api } from "@kubernetes/client-node";
import type { Logger } from "winston";
import { decodeBytes, encodeBytes } from "../shared/api/builders";
import {
  API_VERSION,
  CERTIFICATE_REQUEST,
  CertificateRequest,
  ISSUED_CERTIFICATE,
  IssuedCertificate,
  IssuedCertificateState,
} from "../shared/api/types";
import { backoffDelay, BackoffOptions } from "../shared/controller/backoff";
import { Clock } from "../shared/controller/clock";
import { EventRecorder, EventType } from "../shared/controller/events";
import { errorMessage, Result } from "../shared/controller/reconciler";
import { CustomResourceClient } from "../shared/kube/custom-objects";
import { isConflict } from "../shared/kube/errors";
import {
  buildCertChain,
  buildCsr,
  CertificateVerificationError,
  describeCertificate,
  describeKeySpec,
  exportPrivateKeyPem,
  generateKeyPair,
  importPrivateKeyPem,
  KeySpec,
  publicKeyFingerprint,
  verifyIssuedCertificate,
} from "../shared/pki";
import {
  CA_CERT,
  GENERATION_ANNOTATION,
  KEY_FINGERPRINT_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  OWNER_ANNOTATION,
  Reason,
} from "./constants";
import { AgentMetrics } from "./metrics";
import { NoPodBouncer, PodBouncer } from "./pod-bouncer";
import {
  deleteSecret,
  ForeignSecretError,
  getSecret,
  isManaged,
  ownerKey,
  ownerReference,
  privateKeyRef,
  readStagedKey,
  secretData,
  writeStagedKey,
  writeTargetSecret,
} from "./secrets";
import { CertificateIntent, hasTarget, InvalidSpecError, readIntent } from "./spec";

export interface ControllerDeps {
  issuedCertificates: CustomResourceClient<IssuedCertificate>;
  certificateRequests: CustomResourceClient<CertificateRequest>;
  core: CoreV1Api;
  clock: Clock;
  log: Logger;
  events: EventRecorder;
  metrics: AgentMetrics;
  /** Delay before a FAILED IssuedCertificate is retried with a new key. */
  retryBackoff: BackoffOptions;
  /** How long to wait before looking again at an object that waits on someone else. */
  resyncMs: number;
  bouncer?: PodBouncer;
}

/** Prefix of status.error for spec problems: retrying cannot fix them, a spec change can. */
const INVALID_SPEC_PREFIX = "invalid spec: ";
/** Requeue delay after a write conflict: someone changed the object, read it again soon. */
const CONFLICT_REQUEUE_MS = 200;

interface RetryState {
  attempts: number;
  dueAt: number;
}

export class IssuedCertificateController {
  /** Failure bookkeeping per key, for the FAILED backoff (in memory: a restart retries sooner). */
  private readonly retries = new Map<string, RetryState>();
  private readonly bouncer: PodBouncer;

  constructor(private readonly d: ControllerDeps) {
    this.bouncer = d.bouncer ?? new NoPodBouncer();
  }

  /** Reconciles "namespace/name". Conflicts only requeue: they never re-run a step with a new key. */
  async reconcile(key: string): Promise<Result | void> {
    const [namespace, name] = key.split("/");
    const ic = await this.d.issuedCertificates.get(namespace, name);
    // Deleted: the staged key and the CertificateRequest carry ownerReferences, so the garbage
    // collector removes them; the target secret stays because Istio is still using it.
    if (!ic || ic.metadata.deletionTimestamp) {
      this.retries.delete(key);
      return;
    }
    if (!hasTarget(ic)) return; // Gloo Mesh skips these too: nothing says where to write.
    try {
      return await this.step(ic);
    } catch (err) {
      if (isConflict(err)) {
        this.d.log.debug("write conflict, requeueing", { namespace, name, error: errorMessage(err) });
        return { requeueAfterMs: CONFLICT_REQUEUE_MS };
      }
      throw err;
    }
  }

  private async step(ic: IssuedCertificate): Promise<Result | void> {
    const generation = ic.metadata.generation ?? 0;
    if (ic.status?.observedGeneration !== generation) {
      const first = ic.status?.observedGeneration === undefined;
      return this.transition(ic, "PENDING", Reason.SpecChanged,
        first ? "new IssuedCertificate" : `spec changed to generation ${generation}; issuing with a new key, the current target secret stays in place until then`);
    }
    let intent: CertificateIntent;
    try {
      intent = readIntent(ic);
    } catch (err) {
      if (!(err instanceof InvalidSpecError)) throw err;
      if (ic.status?.state === "FAILED" && ic.status.error?.startsWith(INVALID_SPEC_PREFIX)) return; // already said
      return this.fail(ic, Reason.InvalidSpec, INVALID_SPEC_PREFIX + err.message, false);
    }
    switch (ic.status?.state ?? "PENDING") {
      case "PENDING":
        return this.request(ic, intent);
      case "REQUESTED":
        return this.collect(ic, intent);
      case "ISSUED":
        return this.finish(ic);
      case "FINISHED":
        return this.watchTarget(ic, intent);
      case "FAILED":
        return this.retryAfterBackoff(ic);
    }
  }

  // PENDING: stage a key (reusing one already staged for this generation), then request a signature.
  private async request(ic: IssuedCertificate, intent: CertificateIntent): Promise<Result | void> {
    const generation = ic.metadata.generation ?? 0;
    const keyRef = privateKeyRef(ic);
    const keySecret = await getSecret(this.d.core, keyRef);
    let staged;
    try {
      staged = readStagedKey(keySecret);
    } catch (err) {
      if (err instanceof ForeignSecretError) return this.fail(ic, Reason.InvalidSpec, INVALID_SPEC_PREFIX + err.message, false);
      throw err;
    }
    let keys: CryptoKeyPair;
    let fingerprint: string;
    const reusable = staged && staged.generation === generation ? await importPrivateKeyPem(staged.pem) : undefined;
    if (staged && reusable && sameSpec(reusable.spec, intent.keySpec)) {
      // A crash or conflict after the key was stored: carry on with the same key.
      keys = { privateKey: reusable.privateKey, publicKey: reusable.publicKey };
      fingerprint = staged.fingerprint || (await publicKeyFingerprint(keys.publicKey));
    } else {
      const started = this.d.clock.now().getTime();
      keys = await generateKeyPair(intent.keySpec);
      this.d.metrics.keygenSeconds.observe({ algorithm: describeKeySpec(intent.keySpec) }, (this.d.clock.now().getTime() - started) / 1000);
      fingerprint = await publicKeyFingerprint(keys.publicKey);
      const pem = await exportPrivateKeyPem(keys.privateKey);
      await writeStagedKey(this.d.core, ic, { pem, generation, fingerprint }, keySecret);
    }

    const csr = await buildCsr({ keys, org: intent.org, hosts: intent.hosts });
    const ns = ic.metadata.namespace!;
    const name = ic.metadata.name!;
    const existing = await this.d.certificateRequests.get(ns, name);
    const wanted = certificateRequestFor(ic, csr, fingerprint);
    if (!existing) {
      await this.d.certificateRequests.create(ns, wanted);
    } else if (existing.metadata.annotations?.[KEY_FINGERPRINT_ANNOTATION] !== fingerprint ||
      existing.metadata.annotations?.[GENERATION_ANNOTATION] !== String(generation)) {
      // One CertificateRequest per IssuedCertificate, overwritten in place: the spec change bumps its
      // generation, which tells the issuer to sign again.
      await this.d.certificateRequests.replace({
        ...wanted,
        metadata: { ...wanted.metadata, resourceVersion: existing.metadata.resourceVersion },
      });
    }
    return this.transition(ic, "REQUESTED", Reason.CertificateRequested,
      `requested a certificate for a ${describeKeySpec(intent.keySpec)} key (sha256 ${fingerprint.slice(0, 16)}) with CertificateRequest ${ns}/${name}`);
  }

  // REQUESTED: wait for the issuer's answer to OUR request, verify it, write the target secret.
  private async collect(ic: IssuedCertificate, intent: CertificateIntent): Promise<Result | void> {
    const ns = ic.metadata.namespace!;
    const name = ic.metadata.name!;
    const cr = await this.d.certificateRequests.get(ns, name);
    if (!cr) return this.transition(ic, "PENDING", Reason.CertificateRequestMissing, `CertificateRequest ${ns}/${name} disappeared; requesting again`);
    const status = cr.status;
    // A status from before our latest spec write describes an older CSR: never pair it with our key.
    if (!status || status.observedGeneration !== cr.metadata.generation || !status.state || status.state === "PENDING") {
      return { requeueAfterMs: this.d.resyncMs };
    }
    if (status.state === "FAILED") {
      return this.fail(ic, Reason.IssuerFailed, `certificate request ${ns}.${name} failed to be signed by Issuer: ${status.error ?? ""}`, true);
    }

    const certificatePem = decodeBytes(status.signedCertificate) ?? "";
    const rootPem = decodeBytes(status.signingRootCa) ?? "";
    const staged = readStagedKey(await getSecret(this.d.core, privateKeyRef(ic)));
    if (!staged || staged.generation !== (ic.metadata.generation ?? 0)) {
      // Crashed after writing the target and deleting the staged key, before recording ISSUED?
      const target = await getSecret(this.d.core, intent.target);
      if (isManaged(target) && target?.metadata?.annotations?.[OWNER_ANNOTATION] === ownerKey(ic) &&
        secretData(target, CA_CERT) === certificatePem && certificatePem !== "") {
        return this.transition(ic, "ISSUED", Reason.Issued, `target secret ${intent.target.namespace}/${intent.target.name} already holds the certificate`);
      }
      return this.transition(ic, "PENDING", Reason.PrivateKeyMissing, `staged private key ${ns}/${name} is missing; requesting again with a new key`);
    }
    const key = await importPrivateKeyPem(staged.pem);
    let verified;
    try {
      verified = await verifyIssuedCertificate({
        certificatePem,
        rootPem,
        publicKey: key.publicKey,
        hosts: intent.hosts,
        now: this.d.clock.now(),
      });
    } catch (err) {
      if (!(err instanceof CertificateVerificationError)) throw err;
      return this.fail(ic, Reason.CertificateRejected,
        `certificate from CertificateRequest ${ns}/${name} rejected, target secret left unchanged: ${err.message}`, true);
    }
    try {
      await writeTargetSecret(this.d.core, ic, intent.target, {
        caCert: certificatePem,
        caKey: staged.pem,
        certChain: buildCertChain(certificatePem, rootPem),
        rootCert: rootPem,
      }, await getSecret(this.d.core, intent.target));
    } catch (err) {
      if (err instanceof ForeignSecretError) return this.fail(ic, Reason.TargetSecretConflict, err.message, true);
      throw err;
    }
    this.d.metrics.expiration.set({ namespace: ns, name }, verified.notAfter.getTime() / 1000);
    return this.transition(ic, "ISSUED", Reason.Issued,
      `wrote ${intent.target.namespace}/${intent.target.name}: serial ${verified.serialNumber}, valid until ${verified.notAfter.toISOString()}`);
  }

  // ISSUED: the key now lives only in the target secret; restart what must load it.
  private async finish(ic: IssuedCertificate): Promise<Result | void> {
    await deleteSecret(this.d.core, privateKeyRef(ic));
    const bounce = await this.bouncer.bounce(ic);
    if (!bounce.done) return { requeueAfterMs: bounce.requeueAfterMs ?? this.d.resyncMs };
    this.retries.delete(ownerKey(ic));
    return this.transition(ic, "FINISHED", Reason.Finished, bounce.message ?? "certificate issued");
  }

  // FINISHED: nothing to do unless the target secret vanished (REFERENCE.md step 5).
  private async watchTarget(ic: IssuedCertificate, intent: CertificateIntent): Promise<Result | void> {
    const target = await getSecret(this.d.core, intent.target);
    if (target) {
      await this.recordExpiry(ic, secretData(target, CA_CERT));
      return;
    }
    return this.transition(ic, "PENDING", Reason.TargetSecretMissing,
      `target secret ${intent.target.namespace}/${intent.target.name} is gone; issuing again`, "Warning");
  }

  /** Keeps the expiry metric true after a restart too (FINISHED objects are not re-issued). */
  private async recordExpiry(ic: IssuedCertificate, certificatePem: string | undefined): Promise<void> {
    if (!certificatePem) return;
    try {
      const { notAfter } = await describeCertificate(certificatePem);
      this.d.metrics.expiration.set({ namespace: ic.metadata.namespace!, name: ic.metadata.name! }, notAfter.getTime() / 1000);
    } catch {
      // Not our business to judge here: the secret was verified when written.
    }
  }

  // FAILED: retry from PENDING with a new key once the backoff has passed (never a hot loop).
  private async retryAfterBackoff(ic: IssuedCertificate): Promise<Result | void> {
    if (ic.status?.error?.startsWith(INVALID_SPEC_PREFIX)) return; // waits for a spec change
    const key = ownerKey(ic);
    let retry = this.retries.get(key);
    if (!retry) {
      // FAILED before this process started: count it as one failure from now.
      retry = this.scheduleRetry(key);
    }
    const wait = retry.dueAt - this.d.clock.now().getTime();
    if (wait > 0) return { requeueAfterMs: wait };
    await deleteSecret(this.d.core, privateKeyRef(ic));
    return this.transition(ic, "PENDING", Reason.Retrying, `retrying after failure number ${retry.attempts}`);
  }

  private scheduleRetry(key: string): RetryState {
    const attempts = (this.retries.get(key)?.attempts ?? 0) + 1;
    const state = { attempts, dueAt: this.d.clock.now().getTime() + backoffDelay(attempts, this.d.retryBackoff) };
    this.retries.set(key, state);
    return state;
  }

  private async fail(ic: IssuedCertificate, reason: Reason, message: string, retry: boolean): Promise<Result | void> {
    const result = await this.transition(ic, "FAILED", reason, message, "Warning", message);
    if (!retry) return result;
    const state = this.scheduleRetry(ownerKey(ic));
    return { requeueAfterMs: Math.max(0, state.dueAt - this.d.clock.now().getTime()) };
  }

  /** Records a state change: status (guarded by resourceVersion), then one log line and one Event. */
  private async transition(
    ic: IssuedCertificate,
    to: IssuedCertificateState,
    reason: Reason,
    message: string,
    type: EventType = "Normal",
    error = "",
  ): Promise<Result | void> {
    const from = ic.status?.state ?? "";
    const generation = ic.metadata.generation ?? 0;
    await this.d.issuedCertificates.replaceStatus({
      ...ic,
      status: { observedGeneration: generation, state: to, error },
    });
    const fields = { namespace: ic.metadata.namespace, name: ic.metadata.name, generation, from, to, reason, detail: message };
    if (type === "Warning") this.d.log.warn("transition", fields);
    else this.d.log.info("transition", fields);
    this.d.metrics.transitions.inc({ from: from || "NONE", to, reason });
    await this.d.events.record({ ...ic, apiVersion: API_VERSION, kind: ISSUED_CERTIFICATE.kind }, type, reason, message);
    // The status write triggers a watch event; requeue anyway so progress never hangs on one event.
    return to === "FAILED" || to === "FINISHED" ? undefined : { requeueAfterMs: 0 };
  }
}

function sameSpec(a: KeySpec, b: KeySpec): boolean {
  return describeKeySpec(a) === describeKeySpec(b);
}

function certificateRequestFor(ic: IssuedCertificate, csrPem: string, fingerprint: string): CertificateRequest {
  return {
    apiVersion: API_VERSION,
    kind: CERTIFICATE_REQUEST.kind,
    metadata: {
      name: ic.metadata.name,
      namespace: ic.metadata.namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
      annotations: {
        [OWNER_ANNOTATION]: ownerKey(ic),
        [GENERATION_ANNOTATION]: String(ic.metadata.generation ?? 0),
        [KEY_FINGERPRINT_ANNOTATION]: fingerprint,
      },
      ownerReferences: [ownerReference(ic)],
    },
    spec: { certificateSigningRequest: encodeBytes(csrPem) },
  };
}
