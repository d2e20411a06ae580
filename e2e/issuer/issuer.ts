// The reference issuer: the management-plane side of the workflow (docs/issuer.md),
// faithful to Gloo Mesh so the agent is tested against the behaviour it will meet. It signs each
// CertificateRequest with the CA in the IssuedCertificate's signing secret. For tests it can be told
// to misbehave, globally or per IssuedCertificate with the MISBEHAVE_ANNOTATION.
import { CoreV1Api, KubeConfig, KubernetesObject } from "@kubernetes/client-node";
import { Registry } from "prom-client";
import type { Logger } from "winston";
import { decodeBytes, encodeBytes } from "../../shared/api/builders";
import { CERTIFICATE_REQUEST, CertificateRequest, ISSUED_CERTIFICATE, IssuedCertificate } from "../../shared/api/types";
import { Clock, systemClock } from "../../shared/controller/clock";
import { Reconciler, requeueAfter, requeueNow, Result } from "../../shared/controller/controller";
import { errorMessage } from "../../shared/controller/errors";
import { Manager } from "../../shared/controller/manager";
import { CustomResourceClient } from "../../shared/kube/custom-objects";
import { isConflict, isNotFound } from "../../shared/kube/errors";
import { Misbehaviour, signIntermediate } from "./sign";

/** On an IssuedCertificate: make the issuer answer its request wrongly, e.g. "wrong-key". */
export const MISBEHAVE_ANNOTATION = "reference-issuer.cert-agent.io/misbehave";
/** On an IssuedCertificate: answer FAILED with this message instead of signing. */
export const FAIL_ANNOTATION = "reference-issuer.cert-agent.io/fail";

export interface IssuerOptions {
  kc: KubeConfig;
  log: Logger;
  /** Watch one namespace; default all. */
  namespace?: string;
  misbehave?: Misbehaviour;
  clock?: Clock;
  /**
   * How far the issuer's clock is from ours (ms, may be negative): notBefore/notAfter are stamped
   * with now + offset, the way an issuer on another machine with a skewed clock would.
   */
  clockOffsetMs?: number;
  /**
   * A slow issuer: each request generation is answered only this long (by `clock`) after it was marked
   * PENDING, as a management plane waiting for a human approval would. Counted in memory from this
   * process's first look, and checked at least every second, so a clock moved forward is seen soon.
   */
  answerDelayMs?: number;
}

export class ReferenceIssuer implements Reconciler {
  private readonly requests: CustomResourceClient<CertificateRequest>;
  private readonly issued: CustomResourceClient<IssuedCertificate>;
  private readonly core: CoreV1Api;
  private readonly clock: Clock;
  private readonly manager: Manager;
  /** Requests answered, for tests and the demo. */
  readonly signed = { count: 0 };
  /** "namespace/name#generation" -> when this process first saw it PENDING (ms), for answerDelayMs. */
  private readonly pendingSince = new Map<string, number>();

  constructor(private readonly o: IssuerOptions) {
    this.requests = new CustomResourceClient(o.kc, CERTIFICATE_REQUEST);
    this.issued = new CustomResourceClient(o.kc, ISSUED_CERTIFICATE);
    this.core = o.kc.makeApiClient(CoreV1Api);
    this.clock = o.clock ?? systemClock;
    // The same manager as the agent's: one controller, woken by every CertificateRequest.
    this.manager = new Manager({ kc: o.kc, clock: this.clock, log: o.log, registry: new Registry(), resyncMs: 60_000 });
    this.manager.addController<CertificateRequest & KubernetesObject>({
      name: "reference-issuer",
      reconciler: this,
      concurrency: 2,
      backoff: { baseMs: 500, maxMs: 30_000 },
      for: {
        name: "issuer-certificaterequests",
        path: this.requests.watchPath(o.namespace),
        list: () => this.requests.list(o.namespace) as never,
      },
    });
  }

  start(): Promise<void> {
    return this.manager.start();
  }

  stop(): Promise<void> {
    return this.manager.stop({ deadlineMs: 10_000 });
  }

  async reconcile(key: string): Promise<Result | void> {
    const [namespace, name] = key.split("/");
    const cr = await this.requests.get(namespace, name);
    if (!cr) return;
    const generation = cr.metadata.generation ?? 0;
    if (cr.status?.observedGeneration !== generation) {
      // A new or changed request: mark it PENDING for this generation first, as Gloo Mesh does.
      return this.writeStatus(cr, { observedGeneration: generation, state: "PENDING" });
    }
    if (cr.status.state === "FINISHED" && cr.status.signedCertificate) return;
    if (this.o.answerDelayMs && cr.status.state === "PENDING") {
      const id = `${key}#${generation}`;
      const now = this.clock.now().getTime();
      if (!this.pendingSince.has(id)) this.pendingSince.set(id, now);
      const left = this.pendingSince.get(id)! + this.o.answerDelayMs - now;
      if (left > 0) return requeueAfter(Math.min(left, 1000));
    }

    const ic = await this.issued.get(namespace, name);
    if (!ic) return this.failed(cr, "failed to find issued certificate matching certificate request");
    const forced = ic.metadata.annotations?.[FAIL_ANNOTATION];
    if (forced) return this.failed(cr, forced);
    try {
      const signingRef = ic.spec?.glooMeshCa?.signingCertificateSecret ?? ic.spec?.signingCertificateSecret;
      if (!signingRef?.name) throw new Error("issued certificate names no signing certificate secret");
      const secret = await this.core.readNamespacedSecret({ name: signingRef.name, namespace: signingRef.namespace || namespace }).catch((err) => {
        if (isNotFound(err)) throw new Error(`signing secret ${signingRef.namespace}/${signingRef.name} not found`);
        throw err;
      });
      const rootPem = decodeBytes(secret.data?.["root-cert.pem"]);
      const rootKeyPem = decodeBytes(secret.data?.["key.pem"]);
      if (!rootPem || !rootKeyPem) throw new Error(`signing secret ${signingRef.namespace}/${signingRef.name} lacks root-cert.pem or key.pem`);
      const misbehave = (ic.metadata.annotations?.[MISBEHAVE_ANNOTATION] as Misbehaviour | undefined) ?? this.o.misbehave ?? "none";
      const certificatePem = await signIntermediate({
        csrPem: decodeBytes(cr.spec?.certificateSigningRequest) ?? "",
        hosts: ic.spec?.hosts ?? [],
        ttlDays: ic.spec?.certOptions?.ttlDays ?? 0,
        root: { certPem: rootPem, keyPem: rootKeyPem },
        now: new Date(this.clock.now().getTime() + (this.o.clockOffsetMs ?? 0)),
        misbehave,
      });
      this.signed.count += 1;
      this.o.log.info("signed certificate request", { namespace, name, generation, misbehave });
      return this.writeStatus(cr, {
        observedGeneration: generation,
        state: "FINISHED",
        // proto3 JSON omits empty bytes (and the CRD's format: byte refuses ""), so "empty" is absent.
        ...(certificatePem ? { signedCertificate: encodeBytes(certificatePem) } : {}),
        // Byte for byte what the signing secret holds: rootCertSync compares exact bytes.
        signingRootCa: encodeBytes(rootPem),
      });
    } catch (err) {
      await this.failed(cr, errorMessage(err));
      return requeueAfter(5_000); // Gloo Mesh retries failed requests later
    }
  }

  private async failed(cr: CertificateRequest, error: string): Promise<Result | void> {
    this.o.log.warn("certificate request failed", { namespace: cr.metadata.namespace, name: cr.metadata.name, error });
    return this.writeStatus(cr, { observedGeneration: cr.metadata.generation ?? 0, state: "FAILED", error });
  }

  private async writeStatus(cr: CertificateRequest, status: CertificateRequest["status"]): Promise<Result | void> {
    try {
      await this.requests.replaceStatus({ ...cr, status });
    } catch (err) {
      if (isConflict(err)) return requeueAfter(100);
      throw err;
    }
    return status?.state === "PENDING" ? requeueNow : undefined;
  }
}
