// One running agent: a manager with the IssuedCertificate controller and the pod bouncer. startAgent() is what main.ts,
// the demo, the benchmark and the tests call.
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { KubeConfig, KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "winston";
import { CERTIFICATE_REQUEST, CertificateRequest, ISSUED_CERTIFICATE, IssuedCertificate, PodBounceDirective } from "../shared/api/types";
import { ApiHealth } from "../shared/controller/api-health";
import { Clock, systemClock } from "../shared/controller/clock";
import { KubeEventRecorder } from "../shared/controller/events";
import { LeaderElector } from "../shared/controller/leader-election";
import { Manager } from "../shared/controller/manager";
import { ObjectClient } from "../shared/kube/api";
import { CustomResourceClient } from "../shared/kube/custom-objects";
import { ObservedKubeConfig } from "../shared/kube/observed-kubeconfig";
import { SecretClient } from "../shared/kube/secrets";
import { certificateStatuses, readTimestamps } from "./certificate-status";
import { Config } from "./config";
import { COMPONENT } from "./constants";
import { bouncerClients, registerPodBounceController } from "./bouncer/pod-bounce-controller";
import { registerIssuedCertificateController } from "./issued-certificate-controller";
import { AgentMetrics } from "./metrics";
import { forbiddenCheck } from "./readiness";

export interface RunningAgent {
  /** True once informers and workers run (at once, or after acquiring the Lease). */
  isWorking(): boolean;
  healthPort?: number;
  metricsPort?: number;
  metrics: AgentMetrics;
  /** What the agent's API requests say (errors, last success, clock skew). */
  api: ApiHealth;
  stop(options?: { deadlineMs?: number }): Promise<void>;
}

export interface AgentOverrides {
  clock?: Clock;
  /** Tests wrap the client to inject faults (e.g. a concurrent writer causing a real 409). */
  wrapIssuedCertificates?: (client: ObjectClient<IssuedCertificate>) => ObjectClient<IssuedCertificate>;
  /** Leader election: this replica's name in the Lease (default the pod name, else hostname + random suffix). */
  identity?: string;
  /** Leader election: what to do when the Lease is lost (default: exit the process). */
  onLostLeadership?: () => void;
  /** Leader election timings (tests shorten them). */
  leaseTimingsMs?: { leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
}

export async function startAgent(config: Config, sourceKc: KubeConfig, log: Logger, overrides: AgentOverrides = {}): Promise<RunningAgent> {
  const clock = overrides.clock ?? systemClock;
  const metrics = new AgentMetrics();
  const identity = overrides.identity ?? process.env.POD_NAME ?? `${hostname()}_${randomUUID().slice(0, 8)}`;
  // Every client below is built on this KubeConfig, so each request to the API server is counted
  // (cert_agent_api_errors_total) and timed against the server's clock in one place.
  const api = new ApiHealth({ clock, registry: metrics.registry, log, clockSkewWarningMs: config.clockSkewWarningMs });
  const kc = new ObservedKubeConfig(sourceKc, api);
  const manager = new Manager({
    kc,
    clock,
    log,
    registry: metrics.registry,
    resyncMs: config.resyncMs,
    healthProbeBindAddress: config.healthProbeBindAddress,
    metricsBindAddress: config.metricsBindAddress,
    stallThresholdMs: config.stallThresholdMs,
    api,
    identity,
    leaderElection: config.leaderElect
      ? (hooks) => new LeaderElector({
          kc, clock, log, identity, ...hooks, ...(overrides.leaseTimingsMs ?? {}),
          namespace: config.leaderElectionNamespace,
          name: config.leaderElectionId,
        })
      : undefined,
    // Losing the Lease ends the process (controller-runtime does the same): a replica that may have
    // missed writes never keeps acting on a stale view.
    onLostLeadership: overrides.onLostLeadership ?? (() => {
      log.error("lost leadership, exiting so that a fresh start re-reads everything");
      process.exit(1);
    }),
  });
  const issuedCertificates = new CustomResourceClient<IssuedCertificate>(kc, ISSUED_CERTIFICATE);
  const secrets = new SecretClient(kc);
  const events = new KubeEventRecorder(kc, COMPONENT, clock, log, { reportingInstance: identity });
  const bouncer = bouncerClients(kc);
  registerIssuedCertificateController(manager, config, {
    issuedCertificates: overrides.wrapIssuedCertificates?.(issuedCertificates) ?? issuedCertificates,
    issuedCertificateWatch: issuedCertificates,
    certificateRequests: new CustomResourceClient<CertificateRequest>(kc, CERTIFICATE_REQUEST),
    secrets,
    directives: bouncer.directives,
    configMaps: bouncer.configMaps,
    clock,
    log,
    events,
    metrics,
  });
  registerPodBounceController(manager, config.namespace, {
    ...bouncer, issuedCertificates, secrets, clock, log, events, strategy: config.bounceStrategy, pollMs: 10_000, podNamespaces: config.podNamespaces,
  });
  // The informers the controllers registered above (the manager shares one per path and selector).
  const certificates = manager.source<IssuedCertificate & KubernetesObject>({
    name: "issuedcertificates", path: issuedCertificates.watchPath(config.namespace), list: () => issuedCertificates.list(config.namespace) as never,
  });
  const directives = manager.source<PodBounceDirective & KubernetesObject>({
    name: "podbouncedirectives", path: bouncer.directives.watchPath(config.namespace), list: () => bouncer.directives.list(config.namespace) as never,
  });
  // Not ready while the API server forbids (403) a request an IssuedCertificate needs (readiness.ts).
  manager.addReadyCheck("issuedcertificates:forbidden", forbiddenCheck(() => certificates.list()));
  manager.addStatusSection("certificates", async () =>
    certificateStatuses(certificates.list(), directives.list(), await readTimestamps(metrics.expiration), await readTimestamps(metrics.renewal)));
  await manager.start();
  log.info("agent started", {
    namespace: config.namespace ?? "(all)", concurrency: config.concurrency, healthPort: manager.healthPort,
    metricsPort: manager.metricsPort, leaderElection: config.leaderElect, identity,
  });
  return {
    healthPort: manager.healthPort,
    metricsPort: manager.metricsPort,
    metrics,
    api,
    isWorking: () => manager.isWorking(),
    async stop(options) {
      await manager.stop(options);
      // The reconcilers do not wait for their Events: write those still in flight.
      await events.flush();
      await kc.close();
      log.info("agent stopped");
    },
  };
}
