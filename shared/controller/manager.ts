// A small manager in the spirit of controller-runtime's: it owns the shared informers (one per
// resource and selector, however many controllers listen), one queue per controller, a readiness
// check per informer, the leader-election gate, the periodic resync, the probe and metrics
// endpoints, and an orderly stop. Controllers register with a builder-like spec saying what wakes
// them: `for` (the primary resource), `owns` (objects whose controller ownerReference points at
// it) and `watches` (any objects, with a function mapping each to the keys it concerns).
import type { KubeConfig, KubernetesObject, ListPromise } from "@kubernetes/client-node";
import type { Registry } from "prom-client";
import type { Logger } from "winston";
import { BackoffOptions } from "./backoff";
import { Cancel, Clock } from "./clock";
import { Controller, Reconciler } from "./controller";
import { errorMessage } from "./errors";
import { ResilientInformer, Source } from "./informer";
import { ControllerMetrics } from "./metrics";
import { Check, HttpEndpoint, parseBindAddress, startHealthServer, startMetricsServer } from "./server";

export interface SourceSpec<T extends KubernetesObject = KubernetesObject> {
  /** Names the informer in logs and readiness checks. */
  name: string;
  /** Watch path, e.g. /api/v1/secrets or /apis/g/v/namespaces/ns/plural. */
  path: string;
  list: ListPromise<T>;
  labelSelector?: string;
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
}

export const keyOf = (obj: KubernetesObject): string | undefined =>
  obj.metadata?.namespace && obj.metadata.name ? `${obj.metadata.namespace}/${obj.metadata.name}` : undefined;

export class Manager {
  private readonly sources = new Map<string, Source<KubernetesObject>>();
  private readonly controllers: { controller: Controller; primary: Source<KubernetesObject>; accept: (key: string) => boolean }[] = [];
  private readonly metrics: ControllerMetrics;
  private readonly readyChecks: { name: string; check: Check }[] = [];
  private readonly healthChecks: { name: string; check: Check }[] = [];
  private readonly endpoints: HttpEndpoint[] = [];
  private elector: Elector | undefined;
  private cancelResync: Cancel | undefined;
  private working = false;
  private stopping = false;
  private startingWork: Promise<void> | undefined;
  private serving: Promise<void> | undefined;
  healthPort?: number;
  metricsPort?: number;

  constructor(private readonly o: ManagerOptions) {
    this.metrics = new ControllerMetrics(o.registry, () => this.controllers.map((c) => c.controller));
  }

  /** The shared informer for spec (one per path and selector). */
  source<T extends KubernetesObject>(spec: SourceSpec<T>): Source<T> {
    const id = `${spec.path}?${spec.labelSelector ?? ""}`;
    let source = this.sources.get(id);
    if (!source) {
      source = this.o.sourceFactory?.(spec as SourceSpec) ?? this.informer(spec as SourceSpec);
      this.sources.set(id, source);
      const named = source;
      this.addReadyCheck(`informer:${spec.name}`, () => ({
        // A standby replica is ready: it only waits for the Lease and has started no informer.
        ok: !this.working || named.hasSynced(),
        detail: `informer ${spec.name} has not synced`,
      }));
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

  addReadyCheck(name: string, check: Check): void {
    this.readyChecks.push({ name, check });
  }

  addHealthCheck(name: string, check: Check): void {
    this.healthChecks.push({ name, check });
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
      onStartedLeading: () => this.startWorking(),
      onStoppedLeading: async () => {
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
      const run = (checks: { name: string; check: Check }[]) => () => {
        const failed = checks.map(({ name, check }) => ({ name, ...check() })).filter((r) => !r.ok);
        return { ok: failed.length === 0, detail: failed.map((f) => `${f.name}: ${f.detail ?? "failed"}`).join("\n") };
      };
      const endpoint = await startHealthServer(health.host, health.port, { healthz: [run(this.healthChecks)], readyz: [run(this.readyChecks)] });
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
