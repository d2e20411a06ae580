// A test builder for the pod bouncer WITH its I/O: the in-memory API, a fake clock, in-memory Events,
// a fake Eviction API, and a small "cluster" the test steps between passes (terminating pods go
// away, controllers create replacement pods that become Ready one step later, a new istiod publishes
// the root it loaded into istio-ca-root-cert one step after it is Ready). Nothing here sleeps.
import { PassThrough } from "node:stream";
import { issuedCertificate, podBounceDirective } from "../../shared/api/builders";
import { BounceSelector, IssuedCertificate, PodBounceDirective } from "../../shared/api/types";
import { FakeClock } from "../../shared/controller/clock";
import { Result } from "../../shared/controller/controller";
import { MemoryEventRecorder } from "../../shared/controller/events";
import { createLogger } from "../../shared/controller/logger";
import { FakeApi, FakeApiError, WriteRecord } from "../../shared/kube/fake";
import type { Secret } from "../../shared/kube/secrets";
import { BOUNCE_PROGRESS_ANNOTATION, BOUNCE_REQUEST_ANNOTATION, ROOT_CERT } from "../constants";
import { BounceProgress, cycleOf, readBounceProgress } from "./cycle";
import { Strategy } from "./plan";
import { ConfigMap, Pod, PodBouncerReconciler, PodEvictor, Workload } from "./pod-bouncer-reconciler";

export const T0 = new Date("2026-01-01T00:00:00Z");
export const NS = "mesh";
export const DIRECTIVE = "istio-pods";
export const KEY = `${NS}/${DIRECTIVE}`;
export const IC = "ic";
export const POLL_MS = 5_000;
export const OLD_ROOT = "-----BEGIN CERTIFICATE-----\nOLD ROOT\n-----END CERTIFICATE-----\n";
export const NEW_ROOT = "-----BEGIN CERTIFICATE-----\nNEW ROOT\n-----END CERTIFICATE-----\n";
/** A finalizer every test pod carries, so a delete (like an eviction) leaves it terminating until the cluster steps. */
const GRACE = "test.cert-agent.io/graceful-shutdown";
/** On a test pod: the root it loaded at start (istiod pods only). */
const LOADED_ROOT = "test.cert-agent.io/loaded-root";

export const ISTIOD: BounceSelector = { namespace: "istio-system", labels: { app: "istiod" }, waitForReplicas: 1 };
export const GATEWAY: BounceSelector = {
  namespace: "istio-system",
  labels: { app: "istio-ingressgateway" },
  rootCertSync: {
    secretRef: { name: "cacerts", namespace: "istio-system" },
    secretKey: ROOT_CERT,
    configMapRef: { name: "istio-ca-root-cert", namespace: "istio-system" },
    configMapKey: ROOT_CERT,
  },
};
export const WORKLOAD: BounceSelector = { namespace: "apps", labels: { app: "web" } };

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

export interface EvictCall { namespace: string; name: string; answer: "evicted" | "blocked" | "gone" | "error" }

/** The Eviction API: evicting marks the pod terminating; answers can be made "blocked" (429) or failing. */
export class FakeEvictor implements PodEvictor {
  readonly calls: EvictCall[] = [];
  private readonly blocked = new Map<string, number>();
  private readonly failing = new Map<string, number>();

  constructor(private readonly env: BouncerEnv) {}

  /** The next `times` evictions of the pod answer 429 (a PodDisruptionBudget). */
  block(name: string, times = 1): void {
    this.blocked.set(name, times);
  }

  /** The next `times` evictions of the pod throw a 500 (the agent crashes or the call is lost). */
  fail(name: string, times = 1): void {
    this.failing.set(name, times);
  }

  async evict(namespace: string, name: string): Promise<"evicted" | "blocked" | "gone"> {
    if (take(this.failing, name)) {
      this.calls.push({ namespace, name, answer: "error" });
      throw new FakeApiError(500, `injected 500 on create pods/eviction "${name}"`);
    }
    if (take(this.blocked, name)) {
      this.calls.push({ namespace, name, answer: "blocked" });
      this.env.timeline.push(`blocked ${namespace}/${name}`);
      return "blocked";
    }
    const pod = this.env.api.peek<Pod>("Pod", namespace, name);
    if (!pod) {
      this.calls.push({ namespace, name, answer: "gone" });
      return "gone";
    }
    this.calls.push({ namespace, name, answer: "evicted" });
    this.env.timeline.push(`restart ${namespace}/${name}`);
    if (!pod.metadata.deletionTimestamp) {
      this.env.api.seed("Pod", { ...pod, metadata: { ...pod.metadata, deletionTimestamp: this.env.clock.now().toISOString() } });
    }
    return "evicted";
  }
}

function take(counts: Map<string, number>, name: string): boolean {
  const left = counts.get(name) ?? 0;
  if (left <= 0) return false;
  counts.set(name, left - 1);
  return true;
}

/** A set of pods a controller keeps at `replicas` (a ReplicaSet, say): what the cluster step recreates. */
export interface App { namespace: string; app: string; replicas: number }

export const APPS: App[] = [
  { namespace: "istio-system", app: "istiod", replicas: 2 },
  { namespace: "istio-system", app: "istio-ingressgateway", replicas: 1 },
  { namespace: "apps", app: "web", replicas: 2 },
];

export interface BouncerEnvOptions {
  strategy?: Strategy;
  selectors?: BounceSelector[];
  /** Pods the cluster keeps (seeded Ready, named <app>-1, <app>-2, ...); [] for none. */
  apps?: App[];
  /** data of the target secret istio-system/cacerts (base64 values); default root-cert.pem = NEW_ROOT. */
  targetData?: Record<string, string>;
  /** What istio-ca-root-cert holds at first; undefined: no ConfigMap. Default OLD_ROOT. */
  publishedRoot?: string | null;
  /** --pod-namespaces; default all. */
  podNamespaces?: string[];
}

export class BouncerEnv {
  readonly clock = new FakeClock(T0);
  readonly api = new FakeApi({ clock: this.clock });
  readonly directives = this.api.client<PodBounceDirective>("PodBounceDirective");
  readonly issuedCertificates = this.api.client<IssuedCertificate>("IssuedCertificate");
  readonly pods = this.api.client<Pod>("Pod");
  readonly configMaps = this.api.client<ConfigMap>("ConfigMap");
  readonly secrets = this.api.client<Secret>("Secret");
  readonly workloads = {
    ReplicaSet: this.api.client<Workload>("ReplicaSet"),
    Deployment: this.api.client<Workload>("Deployment"),
    StatefulSet: this.api.client<Workload>("StatefulSet"),
    DaemonSet: this.api.client<Workload>("DaemonSet"),
  };
  readonly events = new MemoryEventRecorder();
  readonly evictor = new FakeEvictor(this);
  /** Writes made by the reconciler (not by the test's cluster), in order. */
  readonly writes: WriteRecord[] = [];
  /** What happened, in order: "restart ns/pod" (evicted or deleted), "blocked ns/pod", "publish <root>", "mark Kind/name". */
  readonly timeline: string[] = [];
  readonly apps: App[];
  strategy: Strategy;
  readonly podNamespaces?: string[];
  reconciler!: PodBouncerReconciler;
  private reconciling = false;
  private podNumbers = new Map<string, number>();
  private readonly logLines: string[] = [];
  private readonly log = createLogger("debug", new PassThrough().on("data", (chunk: Buffer) => this.logLines.push(chunk.toString("utf8"))));

  constructor(o: BouncerEnvOptions = {}) {
    this.strategy = o.strategy ?? "evict";
    this.apps = o.apps ?? APPS;
    this.podNamespaces = o.podNamespaces;
    this.api.onWrite((w) => {
      if (!this.reconciling) return;
      this.writes.push(w);
      if (w.kind === "Pod" && w.verb === "delete") this.timeline.push(`restart ${w.namespace}/${w.name}`);
      if (w.verb === "replace" && w.kind in this.workloads) this.timeline.push(`mark ${w.kind}/${w.name}`);
    });
    this.api.seed("IssuedCertificate", issuedCertificate({ name: IC, namespace: NS, podBounceDirective: { name: DIRECTIVE, namespace: NS } }));
    this.api.seed("PodBounceDirective", podBounceDirective(DIRECTIVE, NS, o.selectors ?? [ISTIOD, GATEWAY, WORKLOAD]));
    this.api.seed<Secret>("Secret", { metadata: { name: "cacerts", namespace: "istio-system" }, data: o.targetData ?? { [ROOT_CERT]: b64(NEW_ROOT) } });
    const published = o.publishedRoot === undefined ? OLD_ROOT : o.publishedRoot;
    if (published !== null) this.publish(published);
    for (const app of this.apps) {
      for (let i = 0; i < app.replicas; i++) this.addPod(app, { ready: true, root: OLD_ROOT });
    }
    this.restart();
  }

  /** A new reconciler instance on the same API, clock and Events (an agent restart, a failover). */
  restart(strategy = this.strategy): void {
    this.strategy = strategy;
    this.reconciler = new PodBouncerReconciler({
      directives: this.directives,
      issuedCertificates: this.issuedCertificates,
      pods: this.pods,
      configMaps: this.configMaps,
      secrets: this.secrets,
      workloads: this.workloads,
      evictor: this.evictor,
      strategy,
      clock: this.clock,
      log: this.log,
      events: this.events,
      pollMs: POLL_MS,
      podNamespaces: this.podNamespaces,
    });
  }

  /** Plays the IssuedCertificate reconciler in ISSUED: asks for the bounce of issuance `revision`. */
  async requestBounce(revision: number): Promise<void> {
    await this.directives.patchAnnotations(NS, DIRECTIVE, {
      [BOUNCE_REQUEST_ANNOTATION]: JSON.stringify({ cycle: cycleOf(NS, IC, revision), requestedAt: this.clock.now().toISOString() }),
    });
  }

  /** The log records written so far (after letting the logger's stream drain). */
  async logRecords(): Promise<Record<string, unknown>[]> {
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    return this.logLines.join("").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async reconcile(key = KEY, signal: AbortSignal = new AbortController().signal): Promise<Result | void> {
    this.reconciling = true;
    try {
      return await this.reconciler.reconcile(key, signal);
    } finally {
      this.reconciling = false;
    }
  }

  /**
   * Reconciles, stepping the cluster after each pass, until the progress of the current request is
   * "done" or "error". A pass that throws is taken as a crash: the next pass runs on a new reconciler.
   */
  async runCycle(o: { maxPasses?: number; restartEveryPass?: boolean; beforePass?: (pass: number) => void } = {}): Promise<{ results: (Result | void)[]; errors: unknown[] }> {
    const results: (Result | void)[] = [];
    const errors: unknown[] = [];
    for (let pass = 0; pass < (o.maxPasses ?? 40); pass++) {
      o.beforePass?.(pass);
      try {
        results.push(await this.reconcile());
      } catch (err) {
        errors.push(err);
        this.restart();
        continue;
      }
      if (o.restartEveryPass) this.restart();
      const progress = this.progress();
      if (progress && progress.cycle === this.requestedCycle() && (progress.outcome === "done" || progress.outcome === "error")) return { results, errors };
      await this.step();
    }
    throw new Error(`the bounce did not finish: ${JSON.stringify(this.progress())}`);
  }

  /**
   * One step of the cluster: istiod publishes the root a Ready istiod pod loaded; pods created in the
   * last step become Ready; terminating pods go away and their controllers create replacements (not
   * Ready yet), a new istiod loading the root now in the target secret.
   */
  async step(): Promise<void> {
    const pods = (await this.pods.list()).items;
    const loaded = pods.find((p) => p.metadata.labels?.app === "istiod" && ready(p) && !p.metadata.deletionTimestamp
      && p.metadata.annotations?.[LOADED_ROOT] !== OLD_ROOT)?.metadata.annotations?.[LOADED_ROOT];
    const map = this.api.peek<ConfigMap>("ConfigMap", "istio-system", "istio-ca-root-cert");
    if (loaded && map?.data?.[ROOT_CERT] !== loaded) this.publish(loaded);
    for (const p of pods) if (!ready(p)) this.api.seed("Pod", { ...p, status: readyStatus(true) });
    for (const { metadata } of pods.filter((p) => p.metadata.deletionTimestamp)) {
      const p = this.api.peek<Pod>("Pod", metadata.namespace!, metadata.name!)!;
      await this.pods.replace({ ...p, metadata: { ...p.metadata, finalizers: [] } }); // gone
    }
    const live = (await this.pods.list()).items;
    for (const app of this.apps) {
      const have = live.filter((p) => p.metadata.namespace === app.namespace && p.metadata.labels?.app === app.app).length;
      const secret = this.api.peek<Secret>("Secret", "istio-system", "cacerts");
      const root = Buffer.from(secret?.data?.[ROOT_CERT] ?? "", "base64").toString("utf8");
      for (let i = have; i < app.replicas; i++) this.addPod(app, { ready: false, root });
    }
  }

  /** Plays istiod: writes the root it serves into istio-system/istio-ca-root-cert. */
  publish(root: string): void {
    this.api.seed<ConfigMap>("ConfigMap", { metadata: { name: "istio-ca-root-cert", namespace: "istio-system" }, data: { [ROOT_CERT]: root } });
    this.timeline.push(`publish ${root === NEW_ROOT ? "new" : root === OLD_ROOT ? "old" : "other"} root`);
  }

  /** Seeds a pod of app named <app>-<n>. */
  addPod(app: App, o: { ready: boolean; root?: string; name?: string; ownerReferences?: Pod["metadata"]["ownerReferences"] }): Pod {
    const n = (this.podNumbers.get(app.app) ?? 0) + 1;
    this.podNumbers.set(app.app, n);
    return this.api.seed<Pod>("Pod", {
      metadata: {
        name: o.name ?? `${app.app}-${n}`,
        namespace: app.namespace,
        labels: { app: app.app },
        finalizers: [GRACE],
        ...(app.app === "istiod" && o.root ? { annotations: { [LOADED_ROOT]: o.root } } : {}),
        ...(o.ownerReferences ? { ownerReferences: o.ownerReferences } : {}),
      },
      status: readyStatus(o.ready),
    });
  }

  directive(): PodBounceDirective {
    return this.api.peek<PodBounceDirective>("PodBounceDirective", NS, DIRECTIVE)!;
  }

  progress(): BounceProgress | undefined {
    return readBounceProgress(this.directive());
  }

  /** The raw progress annotation, parsed. */
  progressJson(): unknown {
    const text = this.directive().metadata.annotations?.[BOUNCE_PROGRESS_ANNOTATION];
    return text === undefined ? undefined : JSON.parse(text);
  }

  requestedCycle(): string | undefined {
    const text = this.directive().metadata.annotations?.[BOUNCE_REQUEST_ANNOTATION];
    return text === undefined ? undefined : (JSON.parse(text) as { cycle: string }).cycle;
  }

  /** Pods restarted (evicted or deleted), in order, as "namespace/name". */
  restarted(): string[] {
    return this.timeline.filter((t) => t.startsWith("restart ")).map((t) => t.slice("restart ".length));
  }

  /** [type, reason, message] of every Event, all on the IssuedCertificate mesh/ic (checked). */
  eventLog(): [string, string, string][] {
    for (const e of this.events.events) if (e.name !== IC) throw new Error(`an Event on ${e.name}, not on the IssuedCertificate`);
    return this.events.events.map((e) => [e.type, e.reason, e.message]);
  }
}

function ready(p: Pod): boolean {
  return p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
}

function readyStatus(isReady: boolean): Pod["status"] {
  return { conditions: [{ type: "Ready", status: isReady ? "True" : "False" }] };
}
