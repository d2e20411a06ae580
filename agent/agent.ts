// Wires one running agent: informers feed a work queue of IssuedCertificate keys; workers run the
// controller; probes and metrics are served. startAgent() is what main.ts and the tests call.
import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { CoreV1Api, KubeConfig, KubernetesObject, V1Secret } from "@kubernetes/client-node";
import type { Logger } from "winston";
import { CERTIFICATE_REQUEST, CertificateRequest, ISSUED_CERTIFICATE, IssuedCertificate } from "../shared/api/types";
import { Clock, systemClock } from "../shared/controller/clock";
import { KubeEventRecorder } from "../shared/controller/events";
import { ResilientInformer } from "../shared/controller/informer";
import { Reconciler } from "../shared/controller/reconciler";
import { HttpEndpoint, parseBindAddress, startHealthServer, startMetricsServer } from "../shared/controller/server";
import { WorkQueue } from "../shared/controller/workqueue";
import { CustomResourceClient } from "../shared/kube/custom-objects";
import { LeaderElector } from "../shared/controller/leader-election";
import { Config } from "./config";
import { COMPONENT, MANAGED_SELECTOR, OWNER_ANNOTATION } from "./constants";
import { IssuedCertificateController } from "./issued-certificate-controller";
import { AgentMetrics } from "./metrics";

export interface RunningAgent {
  /** True once informers and workers run (at once, or after acquiring the Lease). */
  isWorking(): boolean;
  healthPort?: number;
  metricsPort?: number;
  metrics: AgentMetrics;
  stop(): Promise<void>;
}

export interface AgentOverrides {
  clock?: Clock;
  /** Tests wrap the client to inject faults (e.g. a concurrent writer causing a real 409). */
  wrapIssuedCertificates?: (client: CustomResourceClient<IssuedCertificate>) => CustomResourceClient<IssuedCertificate>;
  /** Leader election: this replica's name in the Lease (default hostname + random suffix). */
  identity?: string;
  /** Leader election: what to do when the Lease is lost (default: exit the process). */
  onLostLeadership?: () => void;
  /** Leader election timings (tests shorten them). */
  leaseTimingsMs?: { leaseDurationMs: number; renewDeadlineMs: number; retryPeriodMs: number };
}

export async function startAgent(config: Config, kc: KubeConfig, log: Logger, overrides: AgentOverrides = {}): Promise<RunningAgent> {
  const clock = overrides.clock ?? systemClock;
  const metrics = new AgentMetrics();
  const plainClient = new CustomResourceClient<IssuedCertificate>(kc, ISSUED_CERTIFICATE);
  const issuedCertificates = overrides.wrapIssuedCertificates?.(plainClient) ?? plainClient;
  const certificateRequests = new CustomResourceClient<CertificateRequest>(kc, CERTIFICATE_REQUEST);
  const core = kc.makeApiClient(CoreV1Api);
  const controller = new IssuedCertificateController({
    issuedCertificates,
    certificateRequests,
    core,
    clock,
    log,
    events: new KubeEventRecorder(kc, COMPONENT, clock, log),
    metrics,
    retryBackoff: { baseMs: config.retryBaseDelayMs, maxMs: config.retryMaxDelayMs },
    resyncMs: config.resyncMs,
  });
  // Transient API errors retry fast at first; the FAILED state has its own, slower backoff.
  const queue = new WorkQueue(clock, { baseMs: 200, maxMs: 60_000 });
  const reconciler = new Reconciler("issuedcertificate", queue, (key) => controller.reconcile(key), log, (outcome, ms) => {
    metrics.reconciles.inc({ outcome });
    metrics.reconcileSeconds.observe(ms / 1000);
  });

  const ns = config.namespace;
  const enqueue = (namespace: string | undefined, name: string | undefined) => {
    if (namespace && name && (!ns || namespace === ns)) queue.add(`${namespace}/${name}`);
  };
  const icInformer = new ResilientInformer<IssuedCertificate & KubernetesObject>({
      name: "issuedcertificates",
      kc,
      path: issuedCertificates.watchPath(ns),
      list: () => issuedCertificates.list(ns) as never,
      onChange: (ic) => enqueue(ic.metadata.namespace, ic.metadata.name),
      log,
      clock,
    });
  const informers: Pick<ResilientInformer<KubernetesObject>, "start" | "stop" | "hasSynced">[] = [
    icInformer,
    // Only our own requests: the issuer's answer wakes up the IssuedCertificate of the same name.
    new ResilientInformer<CertificateRequest & KubernetesObject>({
      name: "certificaterequests",
      kc,
      path: certificateRequests.watchPath(ns),
      list: () => certificateRequests.list(ns, MANAGED_SELECTOR) as never,
      labelSelector: MANAGED_SELECTOR,
      onChange: (cr) => enqueue(cr.metadata.namespace, cr.metadata.name),
      log,
      clock,
    }),
    // Only Secrets we wrote (label selector): a deleted target secret must re-trigger issuing.
    // Target secrets live in other namespaces (istio-system), so this one always watches all.
    new ResilientInformer<V1Secret>({
      name: "secrets",
      kc,
      path: "/api/v1/secrets",
      list: () => core.listSecretForAllNamespaces({ labelSelector: MANAGED_SELECTOR }),
      labelSelector: MANAGED_SELECTOR,
      onChange: (secret) => {
        const [namespace, name] = (secret.metadata?.annotations?.[OWNER_ANNOTATION] ?? "").split("/");
        enqueue(namespace, name);
      },
      log,
      clock,
    }),
  ];

  const endpoints: HttpEndpoint[] = [];
  const health = parseBindAddress(config.healthProbeBindAddress);
  let healthPort: number | undefined;
  if (health) {
    const endpoint = await startHealthServer(health.host, health.port, {
      healthz: [() => ({ ok: true })],
      readyz: [() => {
        // A standby replica (leader election, not leading) is ready: it only waits for the Lease.
        const waiting = working ? informers.filter((i) => !i.hasSynced()) : [];
        return { ok: waiting.length === 0, detail: `informers not synced: ${waiting.length}` };
      }],
    });
    endpoints.push(endpoint);
    healthPort = endpoint.port;
  }
  const metricsAddress = parseBindAddress(config.metricsBindAddress);
  let metricsPort: number | undefined;
  if (metricsAddress) {
    const endpoint = await startMetricsServer(metricsAddress.host, metricsAddress.port, metrics.registry);
    endpoints.push(endpoint);
    metricsPort = endpoint.port;
  }

  // Informers and workers run only while this replica may write: always without leader election,
  // else from acquiring the Lease. Losing it ends the process (controller-runtime does the same), so a
  // replica that may have missed writes never keeps acting on a stale view.
  let resync: NodeJS.Timeout | undefined;
  let working = false;
  const startWorking = async () => {
    working = true;
    reconciler.start(config.concurrency);
    await Promise.all(informers.map((i) => i.start().catch((err) => log.warn("informer start failed, retrying", { error: String(err) }))));
    // Safety net: look at every object now and then, even without events.
    resync = setInterval(() => {
      for (const ic of icInformer.list()) enqueue(ic.metadata?.namespace, ic.metadata?.name);
    }, config.resyncMs);
    resync.unref();
  };
  let elector: LeaderElector | undefined;
  if (config.leaderElect) {
    const identity = overrides.identity ?? `${hostname()}_${randomUUID().slice(0, 8)}`;
    elector = new LeaderElector({
      kc,
      namespace: config.leaderElectionNamespace,
      name: config.leaderElectionId,
      identity,
      clock,
      log,
      onStartedLeading: startWorking,
      onStoppedLeading: overrides.onLostLeadership ?? (() => {
        log.error("lost leadership, exiting so that a fresh start re-reads everything");
        process.exit(1);
      }),
      ...(overrides.leaseTimingsMs ?? {}),
    });
    void elector.run();
  } else {
    await startWorking();
  }
  log.info("agent started", { namespace: ns ?? "(all)", concurrency: config.concurrency, healthPort, metricsPort, leaderElection: config.leaderElect });

  return {
    healthPort,
    metricsPort,
    metrics,
    isWorking: () => working,
    async stop() {
      clearInterval(resync);
      await Promise.all(informers.map((i) => i.stop()));
      await reconciler.stop();
      // After the workers stopped: a successor may take over at once without racing our last writes.
      await elector?.release();
      await Promise.all(endpoints.map((e) => e.close()));
      log.info("agent stopped");
    },
  };
}
