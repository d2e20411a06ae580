// A small manager in the spirit of controller-runtime's: it owns the shared informers (one per
// resource and selector, however many controllers listen), one queue per controller, the health
// rules (health.ts: /readyz, /healthz), /statusz, the leader-election gate, the periodic resync,
// the probe and metrics endpoints, and an orderly stop. Controllers register with a builder-like spec saying what wakes
// them: `for` (the primary resource), `owns` (objects whose controller ownerReference points at
// it) and `watches` (any objects, with a function mapping each to the keys it concerns).
import type { KubeConfig, KubernetesObject, ListPromise } from "@kubernetes/client-node";
import type { Registry } from "prom-client";
import type { Logger } from "winston";
import type { ApiFacts } from "./api-health";
import { BackoffOptions } from "./backoff";
import { Cancel, Clock } from "./clock";
import { Controller, Reconciler } from "./controller";
import { errorMessage } from "./errors";
import { DEFAULT_STALL_THRESHOLD_MS, Failure, HealthFacts, Leadership, livenessFailures, readinessFailures } from "./health";
import { ResilientInformer, Source } from "./informer";
import { ControllerMetrics } from "./metrics";
import { Check, HttpEndpoint, parseBindAddress, startHealthServer, startMetricsServer } from "./server";
import { managerStatus, ManagerStatus } from "./status";

export interface SourceSpec<T extends KubernetesObject = KubernetesObject> {
  /** Names the informer in logs and readiness checks. */
  name: string;
  /** Watch path, e.g. /api/v1/secrets or /apis/g/v/namespaces/ns/plural. */
  path: string;
  list: ListPromise<T>;
  labelSelector?: string;
  /** Drops from each object what no handler needs before it is cached (it changes the object in
   * place): e.g. a Secret's data, which would otherwise keep every private key in memory. */
  trim?: (obj: T) => void;
}

export interface WatchSpec<T extends KubernetesObject = KubernetesObject> {
  source: SourceSpec<T>;
  /** The "namespace/name" keys an event on obj concerns (none: ignore it). */
  map: (obj: T) => string[];
}

export interface ControllerSpec<T extends KubernetesObject = KubernetesObject> {
  name: string;
  reconciler: Reconciler;
  /** The primary resource: each event enqueues the object's own key; the resync covers it too. */
  for: SourceSpec<T>;
  /** Resources whose controller ownerReference of this kind names the object to enqueue. */
  owns?: { source: SourceSpec; ownerKind: string }[];
  watches?: WatchSpec[];
  concurrency?: number;
  timeoutMs?: number;
  backoff?: BackoffOptions;
  /** Enqueue-time filter on primary keys (e.g. a namespace restriction). */
  accept?: (key: string) => boolean;
}

/** Campaigns for the Lease; the manager gives it the two hooks at construction. */
export interface Elector {
  run(): Promise<void>;
  release(): Promise<void>;
}
export type ElectorFactory = (hooks: { onStartedLeading: () => Promise<void>; onStoppedLeading: () => void | Promise<void> }) => Elector;

export interface ManagerOptions {
  clock: Clock;
  log: Logger;
  registry: Registry;
  /** Builds informers; default a ResilientInformer on kc (tests pass in-memory sources). */
  kc?: KubeConfig;
  sourceFactory?: (spec: SourceSpec) => Source<KubernetesObject>;
  /** Re-enqueue every primary object this often, even without events (a safety net). */
  resyncMs: number;
  /** Without it the manager works at once; with it, only while holding the Lease. */
  leaderElection?: ElectorFactory;
  /** Called when the Lease is lost (default: exit, so a fresh start re-reads everything). */
  onLostLeadership?: () => void | Promise<void>;
  healthProbeBindAddress?: string;
  metricsBindAddress?: string;
  /** How long an informer may fail, or a controller owe work without progress, before /healthz fails (default 10m). */
  stallThresholdMs?: number;
  /** What the requests to the API server say (ApiHealth, fed by ObservedKubeConfig), for /statusz. */
  api?: { snapshot(): ApiFacts };
  /** This replica's name (the Lease holder identity), for /statusz. */
  identity?: string;
}

function runChecks(checks: { name: string; check: Check }[]): Failure[] {
  return checks.map(({ name, check }) => ({ name, ...check() })).filter((r) => !r.ok).map((r) => ({ check: r.name, detail: r.detail ?? "failed" }));
}

export const keyOf = (obj: KubernetesObject): string | undefined =>
  obj.metadata?.namespace && obj.metadata.name ? `${obj.metadata.namespace}/${obj.metadata.name}` : undefined;

export class Manager {
  private readonly sources = new Map<string, Source<KubernetesObject>>();
  private readonly controllers: { controller: Controller; primary: Source<KubernetesObject>; accept: (key: string) => boolean }[] = [];
  private readonly metrics: ControllerMetrics;
  private readonly readyChecks: { name: string; check: Check }[] = [];
  private readonly healthChecks: { name: string; check: Check }[] = [];
  private readonly statusSections: { name: string; section: () => unknown }[] = [];
  private readonly endpoints: HttpEndpoint[] = [];
  private elector: Elector | undefined;
  private leadership: Leadership;
  private lostLeadershipAt: Date | undefined;
  private cancelResync: Cancel | undefined;
  private working = false;
  private stopping = false;
  private startingWork: Promise<void> | undefined;
  private serving: Promise<void> | undefined;
  healthPort?: number;
  metricsPort?: number;

  constructor(private readonly o: ManagerOptions) {
    this.leadership = o.leaderElection ? "standby" : "no leader election";
    this.metrics = new ControllerMetrics(o.registry, {
      controllers: () => this.controllers.map((c) => c.controller),
      ready: () => this.readiness().length === 0,
      leading: () => this.working && (this.leadership === "leading" || this.leadership === "no leader election"),
    });
  }

  /** The shared informer for spec (one per path and selector). */
  source<T extends KubernetesObject>(spec: SourceSpec<T>): Source<T> {
    const id = `${spec.path}?${spec.labelSelector ?? ""}`;
    let source = this.sources.get(id);
    if (!source) {
      source = this.o.sourceFactory?.(spec as unknown as SourceSpec) ?? this.informer(spec as unknown as SourceSpec);
      this.sources.set(id, source);
    }
    return source as unknown as Source<T>;
  }

  private informer(spec: SourceSpec): Source<KubernetesObject> {
    if (!this.o.kc) throw new Error(`manager: no kubeconfig to watch ${spec.path}`);
    return new ResilientInformer({ ...spec, kc: this.o.kc, log: this.o.log, clock: this.o.clock });
  }

  /** Registers a controller and wires what wakes it. */
  addController<T extends KubernetesObject>(spec: ControllerSpec<T>): Controller {
    const controller = new Controller({
      name: spec.name,
      reconciler: spec.reconciler,
      clock: this.o.clock,
      log: this.o.log,
      concurrency: spec.concurrency,
      timeoutMs: spec.timeoutMs,
      backoff: spec.backoff,
      observe: (outcome, ms) => this.metrics.observe(spec.name, outcome, ms),
    });
    const accept = spec.accept ?? (() => true);
    const enqueue = (key: string | undefined) => {
      if (key && accept(key)) controller.enqueue(key);
    };
    const primary = this.source(spec.for) as unknown as Source<KubernetesObject>;
    primary.addHandler((obj) => enqueue(keyOf(obj)));
    for (const owned of spec.owns ?? []) {
      this.source(owned.source).addHandler((obj) => {
        const owner = obj.metadata?.ownerReferences?.find((r) => r.controller && r.kind === owned.ownerKind);
        if (owner) enqueue(`${obj.metadata?.namespace}/${owner.name}`);
      });
    }
    for (const watch of spec.watches ?? []) {
      this.source(watch.source).addHandler((obj) => watch.map(obj).forEach(enqueue));
    }
    this.controllers.push({ controller, primary, accept });
    return controller;
  }

  /** A readiness check besides the built-in rules (health.ts). */
  addReadyCheck(name: string, check: Check): void {
    this.readyChecks.push({ name, check });
  }

  /** A liveness check besides the built-in rules (health.ts). */
  addHealthCheck(name: string, check: Check): void {
    this.healthChecks.push({ name, check });
  }

  /** A top-level field of /statusz (e.g. the agent's certificates); may be async. */
  addStatusSection(name: string, section: () => unknown): void {
    this.statusSections.push({ name, section });
  }

  /** What the health rules look at, now. */
  healthFacts(): HealthFacts {
    return {
      now: this.o.clock.now(),
      stallThresholdMs: this.o.stallThresholdMs ?? DEFAULT_STALL_THRESHOLD_MS,
      working: this.working,
      stopping: this.stopping,
      leadership: this.leadership,
      lostLeadershipAt: this.lostLeadershipAt,
      informers: [...this.sources.values()].map((s) => ({ name: s.name, synced: s.hasSynced(), ...s.health?.() })),
      controllers: this.controllers.map(({ controller }) => controller.progress()),
      ...(this.o.api ? { api: this.o.api.snapshot() } : {}),
    };
  }

  /** Failing liveness checks (empty: /healthz is 200). */
  liveness(facts = this.healthFacts()): Failure[] {
    return [...livenessFailures(facts), ...runChecks(this.healthChecks)];
  }

  /** Failing readiness checks (empty: /readyz is 200). */
  readiness(facts = this.healthFacts()): Failure[] {
    return [...readinessFailures(facts), ...runChecks(this.readyChecks)];
  }

  /** The /statusz document. */
  async status(): Promise<ManagerStatus & Record<string, unknown>> {
    const facts = this.healthFacts();
    const sections = await Promise.all(this.statusSections.map(async ({ name, section }) => [name, await section()] as const));
    return {
      ...managerStatus({ facts, identity: this.o.identity, api: this.o.api?.snapshot(), liveness: this.liveness(facts), readiness: this.readiness(facts) }),
      ...Object.fromEntries(sections),
    };
  }

  /** True while informers and controllers run (at once, or while holding the Lease). */
  isWorking(): boolean {
    return this.working;
  }

  /** Serves probes and metrics, then works (at once, or once the Lease is acquired). */
  async start(): Promise<void> {
    this.serving = this.serveEndpoints();
    await this.serving;
    // stop() came while the endpoints were opening: it closes them; no campaign, no work.
    if (this.stopping) return;
    if (!this.o.leaderElection) {
      await this.startWorking();
      return;
    }
    this.elector = this.o.leaderElection({
      onStartedLeading: () => {
        this.leadership = "leading";
        return this.startWorking();
      },
      onStoppedLeading: async () => {
        // Until the process exits (onLostLeadership's default), /healthz and /readyz say so.
        this.leadership = "lost";
        this.lostLeadershipAt = this.o.clock.now();
        this.o.log.error("lost leadership");
        await this.o.onLostLeadership?.();
      },
    });
    void this.elector.run();
  }

  private startWorking(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    this.startingWork = (async () => {
      this.working = true;
      for (const { controller } of this.controllers) controller.start();
      await Promise.all([...this.sources.values()].map((s) =>
        s.start().catch((err) => this.o.log.warn("informer start failed, retrying", { informer: s.name, error: errorMessage(err) }))));
      // stop() may have run while the informers were starting: it waits for this promise, then
      // stops them; arming the resync now would leak a timer past stop().
      if (!this.stopping) this.armResync();
    })();
    return this.startingWork;
  }

  private armResync(): void {
    this.cancelResync = this.o.clock.setTimeout(() => {
      for (const { controller, primary, accept } of this.controllers) {
        for (const obj of primary.list()) {
          const key = keyOf(obj);
          if (key && accept(key)) controller.enqueue(key);
        }
      }
      if (!this.stopping) this.armResync();
    }, this.o.resyncMs);
  }

  private async serveEndpoints(): Promise<void> {
    const health = parseBindAddress(this.o.healthProbeBindAddress ?? "0");
    if (health) {
      // One line per failing check: "<check>: <what is wrong>".
      const asCheck = (failures: () => Failure[]): Check => () => {
        const failed = failures();
        return { ok: failed.length === 0, detail: failed.map((f) => `${f.check}: ${f.detail}`).join("\n") };
      };
      const endpoint = await startHealthServer(health.host, health.port, {
        healthz: [asCheck(() => this.liveness())],
        readyz: [asCheck(() => this.readiness())],
        statusz: () => this.status(),
      });
      this.endpoints.push(endpoint);
      this.healthPort = endpoint.port;
    }
    const metrics = parseBindAddress(this.o.metricsBindAddress ?? "0");
    if (metrics) {
      const endpoint = await startMetricsServer(metrics.host, metrics.port, this.o.registry);
      this.endpoints.push(endpoint);
      this.metricsPort = endpoint.port;
    }
  }

  /**
   * Stops in the order that keeps a successor safe: no new events, in-flight reconciles finished or
   * aborted at the deadline, then the Lease released (a successor can start at once without racing
   * our last writes), then the endpoints closed.
   */
  async stop({ deadlineMs = 30_000 }: { deadlineMs?: number } = {}): Promise<void> {
    this.stopping = true;
    // Controllers take no new key from now on: informers still starting (a LIST in flight when the
    // Lease was acquired) deliver their objects into closed queues instead of starting reconciles.
    const controllersStopped = Promise.all(this.controllers.map(({ controller }) => controller.stop(deadlineMs)));
    await this.serving?.catch(() => {});
    await this.startingWork;
    this.cancelResync?.();
    await Promise.all([...this.sources.values()].map((s) => s.stop()));
    await controllersStopped;
    this.working = false;
    await this.elector?.release();
    await Promise.all(this.endpoints.map((e) => e.close()));
  }
}
