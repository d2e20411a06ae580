// One running agent: a manager with the IssuedCertificate controller and the pod bouncer. startAgent() is what main.ts,
// the demo, the benchmark and the tests call.
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "winston";
import { CERTIFICATE_REQUEST, CertificateRequest, ISSUED_CERTIFICATE, IssuedCertificate } from "../shared/api/types";
import { Clock, systemClock } from "../shared/controller/clock";
import { KubeEventRecorder } from "../shared/controller/events";
import { LeaderElector } from "../shared/controller/leader-election";
import { Manager } from "../shared/controller/manager";
import { ObjectClient } from "../shared/kube/api";
import { CustomResourceClient } from "../shared/kube/custom-objects";
import { SecretClient } from "../shared/kube/secrets";
import { Config } from "./config";
import { COMPONENT } from "./constants";
import { bouncerClients, registerPodBounceController } from "./bouncer/pod-bounce-controller";
import { registerIssuedCertificateController } from "./issued-certificate-controller";
import { AgentMetrics } from "./metrics";

export interface RunningAgent {
  /** True once informers and workers run (at once, or after acquiring the Lease). */
  isWorking(): boolean;
  healthPort?: number;
  metricsPort?: number;
  metrics: AgentMetrics;
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

export async function startAgent(config: Config, kc: KubeConfig, log: Logger, overrides: AgentOverrides = {}): Promise<RunningAgent> {
  const clock = overrides.clock ?? systemClock;
  const metrics = new AgentMetrics();
  const identity = overrides.identity ?? process.env.POD_NAME ?? `${hostname()}_${randomUUID().slice(0, 8)}`;
  const manager = new Manager({
    kc,
    clock,
    log,
    registry: metrics.registry,
    resyncMs: config.resyncMs,
    healthProbeBindAddress: config.healthProbeBindAddress,
    metricsBindAddress: config.metricsBindAddress,
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
    clock,
    log,
    events,
    metrics,
  });
  registerPodBounceController(manager, config.namespace, {
    ...bouncer, issuedCertificates, secrets, clock, log, events, strategy: config.bounceStrategy, pollMs: 10_000,
  });
  await manager.start();
  log.info("agent started", {
    namespace: config.namespace ?? "(all)", concurrency: config.concurrency, healthPort: manager.healthPort,
    metricsPort: manager.metricsPort, leaderElection: config.leaderElect, identity,
  });
  return {
    healthPort: manager.healthPort,
    metricsPort: manager.metricsPort,
    metrics,
    isWorking: () => manager.isWorking(),
    async stop(options) {
      await manager.stop(options);
      log.info("agent stopped");
    },
  };
}
