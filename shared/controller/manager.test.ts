// Unit tests of the Manager with in-memory sources (no API server): shared sources, what wakes a
// controller, readiness, resync, the leader-election gate, stop, and metrics.
import { request } from "node:http";
import { PassThrough } from "node:stream";
import type { KubernetesListObject, KubernetesObject, V1OwnerReference } from "@kubernetes/client-node";
import { Registry } from "prom-client";
import { FakeClock } from "./clock";
import { requeueAfter, Result, TerminalError } from "./controller";
import type { ChangeEvent, ChangeHandler, Source } from "./informer";
import { createLogger } from "./logger";
import { ControllerSpec, ElectorFactory, Manager, ManagerOptions, SourceSpec } from "./manager";

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise(setImmediate);
}

function deferred<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((res) => {
    resolve = res;
  });
  return { promise, resolve };
}

const obj = (namespace: string, name: string, ownerReferences?: V1OwnerReference[]): KubernetesObject => ({
  metadata: { namespace, name, ownerReferences },
});

/**
 * An informer in memory. start() waits for `gate` (if any), then delivers the objects it holds as
 * "add" events and, unless told otherwise, reports synced, as an informer does after its LIST.
 */
class MemorySource implements Source<KubernetesObject> {
  readonly name: string;
  readonly handlers: ChangeHandler<KubernetesObject>[] = [];
  readonly objects = new Map<string, KubernetesObject>();
  /** "start", "started" (start resolved), "stop": what the manager did, in order. */
  readonly history: string[] = [];
  gate: Promise<void> | undefined;
  syncOnStart = true;
  synced = false;

  constructor(readonly spec: SourceSpec) {
    this.name = spec.name;
  }

  addHandler(handler: ChangeHandler<KubernetesObject>): void {
    this.handlers.push(handler);
  }

  async start(): Promise<void> {
    this.history.push("start");
    await this.gate;
    for (const o of this.objects.values()) this.handlers.forEach((h) => h(o, "add"));
    if (this.syncOnStart) this.synced = true;
    this.history.push("started");
  }

  async stop(): Promise<void> {
    this.history.push("stop");
  }

  hasSynced(): boolean {
    return this.synced;
  }

  list(): readonly KubernetesObject[] {
    return [...this.objects.values()];
  }

  /** An event from the API server: updates the cache and tells every handler. */
  emit(o: KubernetesObject, event: ChangeEvent = "update"): void {
    const key = `${o.metadata?.namespace}/${o.metadata?.name}`;
    if (event === "delete") this.objects.delete(key);
    else this.objects.set(key, o);
    this.handlers.forEach((h) => h(o, event));
  }

  /** Holds start() until the returned function is called. */
  hold(): () => void {
    const d = deferred();
    this.gate = d.promise;
    return d.resolve;
  }
}

const noList = async (): Promise<KubernetesListObject<KubernetesObject>> => ({ items: [] });
const spec = (name: string, path: string, labelSelector?: string): SourceSpec => ({ name, path, list: noList, labelSelector });
const ISSUED = spec("issuedcertificates", "/apis/certificates.mesh.gloo.solo.io/v1/issuedcertificates");
const SECRETS = spec("secrets", "/api/v1/secrets", "app.kubernetes.io/managed-by=cert-agent");
const PODS = spec("pods", "/api/v1/pods");

/** A manager over in-memory sources; each reconciler records the keys it ran. */
function setup(opts: Partial<ManagerOptions> = {}) {
  const clock = new FakeClock();
  const logs = new PassThrough();
  logs.resume();
  const registry = new Registry();
  const created: MemorySource[] = [];
  /** Sources by spec name, created when a controller first asks for one (preload with `preload`). */
  const preloads = new Map<string, KubernetesObject[]>();
  const sourceFactory = jest.fn((s: SourceSpec) => {
    const source = new MemorySource(s);
    for (const o of preloads.get(s.name) ?? []) source.objects.set(`${o.metadata?.namespace}/${o.metadata?.name}`, o);
    created.push(source);
    return source;
  });
  const manager = new Manager({ clock, log: createLogger("error", logs), registry, sourceFactory, resyncMs: 600_000, ...opts });
  const reconciled = new Map<string, string[]>();
  const addController = (
    name: string,
    extra: Partial<ControllerSpec> = {},
    reconcile: (key: string, signal: AbortSignal) => Promise<Result | void> = async () => undefined,
  ) => {
    reconciled.set(name, []);
    return manager.addController({
      name,
      for: ISSUED,
      reconciler: {
        reconcile: (key, signal) => {
          reconciled.get(name)!.push(key);
          return reconcile(key, signal);
        },
      },
      ...extra,
    });
  };
  const source = (name: string) => {
    const found = created.find((s) => s.name === name);
    if (!found) throw new Error(`no source ${name}`);
    return found;
  };
  const keys = (controller: string) => reconciled.get(controller) ?? [];
  const total = () => [...reconciled.values()].reduce((n, k) => n + k.length, 0);
  return { clock, registry, manager, sourceFactory, created, preloads, addController, source, keys, total };
}

/** A leader-election factory the test drives by hand. */
function fakeElection() {
  let hooks: Parameters<ElectorFactory>[0] | undefined;
  const elector = { run: jest.fn(() => new Promise<void>(() => {})), release: jest.fn(async () => {}) };
  const factory: ElectorFactory = jest.fn((h) => {
    hooks = h;
    return elector;
  });
  return {
    factory,
    elector,
    lead: () => hooks!.onStartedLeading(),
    lose: () => hooks!.onStoppedLeading(),
  };
}

function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, agent: false }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (body += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

const managers: Manager[] = [];
function track<T extends { manager: Manager }>(t: T): T {
  managers.push(t.manager);
  return t;
}
afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.stop({ deadlineMs: 0 })));
});

describe("Manager: shared sources", () => {
  it("builds one source per path and selector, however many controllers use it; every handler fires", async () => {
    const t = track(setup());
    t.addController("a");
    t.addController("b", { owns: [{ source: SECRETS, ownerKind: "IssuedCertificate" }] });
    t.addController("c", { for: spec("issuedcertificates-again", ISSUED.path), watches: [{ source: SECRETS, map: () => [] }] });
    // another selector on the same path is another informer
    t.addController("d", { for: spec("secrets-all", SECRETS.path) });
    expect(t.sourceFactory.mock.calls.map(([s]) => s.name)).toEqual(["issuedcertificates", "secrets", "secrets-all"]);
    await t.manager.start();
    t.source("issuedcertificates").emit(obj("ns", "ic1"));
    await flush();
    expect([t.keys("a"), t.keys("b"), t.keys("c"), t.keys("d")]).toEqual([["ns/ic1"], ["ns/ic1"], ["ns/ic1"], []]);
  });
});

describe("Manager: what wakes a controller", () => {
  const controllerRef = (kind: string, name: string, controller = true): V1OwnerReference => ({
    apiVersion: "certificates.mesh.gloo.solo.io/v1", kind, name, uid: `uid-${name}`, controller,
  });

  it.each<[string, string, KubernetesObject, string[]]>([
    ["for: the object's own key", "issuedcertificates", obj("ns", "ic1"), ["ns/ic1"]],
    ["for: an object without namespace is ignored", "issuedcertificates", { metadata: { name: "cluster-scoped" } }, []],
    ["owns: the controller ownerReference of the kind", "secrets", obj("ns", "cacerts", [controllerRef("IssuedCertificate", "ic1")]), ["ns/ic1"]],
    ["owns: a non-controller ownerReference is ignored", "secrets", obj("ns", "cacerts", [controllerRef("IssuedCertificate", "ic1", false)]), []],
    ["owns: another kind is ignored", "secrets", obj("ns", "cacerts", [controllerRef("ReplicaSet", "rs1")]), []],
    ["owns: no ownerReferences", "secrets", obj("ns", "cacerts"), []],
    ["watches: the keys of the map function", "pods", obj("istio-system", "istiod-1"), ["istio-system/ic1", "istio-system/ic2"]],
    ["accept: a filtered primary key", "issuedcertificates", obj("elsewhere", "ic1"), []],
    ["accept: filters owned keys too", "secrets", obj("elsewhere", "cacerts", [controllerRef("IssuedCertificate", "ic1")]), []],
    ["accept: filters mapped keys too", "pods", obj("elsewhere", "istiod-1"), []],
  ])("%s", async (_, sourceName, o, expected) => {
    const t = track(setup());
    t.addController("certs", {
      owns: [{ source: SECRETS, ownerKind: "IssuedCertificate" }],
      watches: [{ source: PODS, map: (p) => [`${p.metadata?.namespace}/ic1`, `${p.metadata?.namespace}/ic2`] }],
      accept: (key) => !key.startsWith("elsewhere/"),
    });
    await t.manager.start();
    t.source(sourceName).emit(o);
    await flush();
    expect(t.keys("certs")).toEqual(expected);
  });

  it("the objects an informer lists at start are enqueued like events", async () => {
    const t = track(setup());
    t.preloads.set("issuedcertificates", [obj("ns", "ic1"), obj("ns", "ic2")]);
    t.addController("certs");
    await t.manager.start();
    await flush();
    expect(t.keys("certs").sort()).toEqual(["ns/ic1", "ns/ic2"]);
  });
});

describe("Manager: readiness", () => {
  it("/readyz is 503 naming each informer that has not synced, and 200 once all have", async () => {
    const t = track(setup({ healthProbeBindAddress: "127.0.0.1:0" }));
    t.addController("certs", { owns: [{ source: SECRETS, ownerKind: "IssuedCertificate" }] });
    for (const s of t.created) s.syncOnStart = false;
    await t.manager.start();
    const port = t.manager.healthPort!;
    expect(port).toBeGreaterThan(0);

    let ready = await get(port, "/readyz");
    expect(ready.status).toBe(503);
    expect(ready.body).toContain("informer:issuedcertificates");
    expect(ready.body).toContain("informer:secrets");

    t.source("issuedcertificates").synced = true;
    ready = await get(port, "/readyz");
    expect(ready.status).toBe(503);
    expect(ready.body).not.toContain("informer:issuedcertificates");
    expect(ready.body).toContain("informer:secrets");

    t.source("secrets").synced = true;
    expect(await get(port, "/readyz")).toEqual({ status: 200, body: "ok\n" });
    expect((await get(port, "/healthz")).status).toBe(200);
  });

  it("a standby replica (the Lease never acquired) is ready and has started no informer", async () => {
    const election = fakeElection();
    const t = track(setup({ healthProbeBindAddress: "127.0.0.1:0", leaderElection: election.factory }));
    t.addController("certs");
    await t.manager.start();
    expect(await get(t.manager.healthPort!, "/readyz")).toEqual({ status: 200, body: "ok\n" });
    expect(t.manager.isWorking()).toBe(false);
    expect(t.source("issuedcertificates").history).toEqual([]);
  });
});

describe("Manager: resync", () => {
  it("re-enqueues every accepted primary object every resyncMs, re-arming its timer", async () => {
    const t = track(setup({ resyncMs: 60_000 }));
    t.preloads.set("issuedcertificates", [obj("ns", "ic1"), obj("ns", "ic2"), obj("elsewhere", "ic3")]);
    t.addController("certs", { accept: (key) => key.startsWith("ns/") });
    await t.manager.start();
    await flush();
    expect(t.keys("certs")).toHaveLength(2);
    expect(t.clock.pendingTimers()).toBe(1); // the resync timer

    t.clock.advance(59_999);
    await flush();
    expect(t.keys("certs")).toHaveLength(2);
    t.clock.advance(1);
    await flush();
    expect(t.keys("certs")).toHaveLength(4);
    expect(t.clock.pendingTimers()).toBe(1);

    t.source("issuedcertificates").emit(obj("ns", "ic4"), "add");
    await flush();
    t.clock.advance(60_000);
    await flush();
    expect(t.keys("certs").slice(5).sort()).toEqual(["ns/ic1", "ns/ic2", "ns/ic4"]);
    expect(t.clock.pendingTimers()).toBe(1);
  });
});

describe("Manager: leader election", () => {
  it("starts no informer and no controller until onStartedLeading", async () => {
    const election = fakeElection();
    const t = track(setup({ leaderElection: election.factory }));
    t.preloads.set("issuedcertificates", [obj("ns", "ic1")]);
    t.addController("certs");
    await t.manager.start();
    expect(election.elector.run).toHaveBeenCalledTimes(1);
    t.clock.advance(3_600_000);
    await flush();
    expect(t.source("issuedcertificates").history).toEqual([]);
    expect(t.manager.isWorking()).toBe(false);
    expect(t.total()).toBe(0);
    expect(t.clock.pendingTimers()).toBe(0);

    await election.lead();
    await flush();
    expect(t.manager.isWorking()).toBe(true);
    expect(t.source("issuedcertificates").history).toEqual(["start", "started"]);
    expect(t.keys("certs")).toEqual(["ns/ic1"]);
    expect(t.clock.pendingTimers()).toBe(1); // the resync, armed once informers started
  });

  it("onStoppedLeading calls onLostLeadership", async () => {
    const election = fakeElection();
    const onLostLeadership = jest.fn();
    const t = track(setup({ leaderElection: election.factory, onLostLeadership }));
    t.addController("certs");
    await t.manager.start();
    await election.lead();
    expect(onLostLeadership).not.toHaveBeenCalled();
    await election.lose();
    expect(onLostLeadership).toHaveBeenCalledTimes(1);
  });

  it("defect 7: stop() during a leader-election start leaves no informer running and no timer armed", async () => {
    const election = fakeElection();
    const t = track(setup({ leaderElection: election.factory }));
    t.preloads.set("issuedcertificates", [obj("ns", "ic1"), obj("ns", "ic2")]);
    t.preloads.set("secrets", [obj("ns", "cacerts", [{ apiVersion: "v1", kind: "IssuedCertificate", name: "ic1", uid: "u", controller: true }])]);
    t.addController("certs", { owns: [{ source: SECRETS, ownerKind: "IssuedCertificate" }] });
    const releases = t.created.map((s) => s.hold());
    election.elector.run.mockImplementation(async () => {
      await election.lead(); // the Lease is acquired while the informers' LISTs hang
    });
    await t.manager.start();
    await flush();
    expect(t.created.map((s) => s.history)).toEqual([["start"], ["start"]]);

    const stopped = t.manager.stop({ deadlineMs: 1000 });
    await flush();
    releases.forEach((release) => release()); // the LISTs return, delivering their objects
    await stopped;
    await flush();

    for (const s of t.created) expect(s.history).toEqual(["start", "started", "stop"]);
    expect(t.clock.pendingTimers()).toBe(0);
    expect(t.total()).toBe(0);
    expect(t.manager.isWorking()).toBe(false);
    expect(election.elector.release).toHaveBeenCalledTimes(1);

    // nothing wakes up later either
    t.source("issuedcertificates").emit(obj("ns", "ic3"));
    t.clock.advance(3_600_000);
    await flush();
    expect(t.total()).toBe(0);
    expect(t.clock.pendingTimers()).toBe(0);
  });

  it("stop() while start() is still opening its endpoints leaves no elector campaigning and no endpoint open", async () => {
    const election = fakeElection();
    const t = track(setup({ leaderElection: election.factory, healthProbeBindAddress: "127.0.0.1:0" }));
    t.addController("certs");
    const started = t.manager.start();
    await t.manager.stop({ deadlineMs: 0 });
    await started;
    await flush();
    // the elector is either never built or released
    expect(election.elector.run.mock.calls.length).toBeLessThanOrEqual(election.elector.release.mock.calls.length);
    if (t.manager.healthPort !== undefined) await expect(get(t.manager.healthPort, "/readyz")).rejects.toThrow(/ECONNREFUSED/);
    expect(t.source("issuedcertificates").history).not.toContain("start");
  });

  it("a Lease acquired after stop() starts nothing", async () => {
    const election = fakeElection();
    const t = track(setup({ leaderElection: election.factory }));
    t.addController("certs");
    await t.manager.start();
    await t.manager.stop({ deadlineMs: 0 });
    await election.lead();
    await flush();
    expect(t.source("issuedcertificates").history).toEqual(["stop"]);
    expect(t.manager.isWorking()).toBe(false);
    expect(t.clock.pendingTimers()).toBe(0);
  });
});

describe("Manager.stop", () => {
  it("stops sources and controllers, waits for in-flight reconciles, then releases the Lease and closes the endpoints", async () => {
    const election = fakeElection();
    const t = track(setup({ leaderElection: election.factory, healthProbeBindAddress: "127.0.0.1:0", metricsBindAddress: "127.0.0.1:0" }));
    t.preloads.set("issuedcertificates", [obj("ns", "ic1")]);
    const inflight = deferred();
    let signal: AbortSignal | undefined;
    t.addController("certs", {}, async (_key, s) => {
      signal = s;
      await inflight.promise;
    });
    await t.manager.start();
    await election.lead();
    await flush();
    expect(t.keys("certs")).toEqual(["ns/ic1"]);
    const ports = [t.manager.healthPort!, t.manager.metricsPort!];
    expect((await get(ports[1], "/metrics")).status).toBe(200);

    let done = false;
    const stopped = t.manager.stop({ deadlineMs: 30_000 }).then(() => (done = true));
    await flush();
    expect(t.source("issuedcertificates").history).toEqual(["start", "started", "stop"]);
    expect(election.elector.release).not.toHaveBeenCalled(); // a reconcile is still writing
    expect(done).toBe(false);

    inflight.resolve();
    await stopped;
    expect(signal!.aborted).toBe(false);
    expect(election.elector.release).toHaveBeenCalledTimes(1);
    expect(t.manager.isWorking()).toBe(false);
    for (const port of ports) await expect(get(port, "/readyz")).rejects.toThrow(/ECONNREFUSED/);

    t.source("issuedcertificates").emit(obj("ns", "ic2"));
    await flush();
    expect(t.keys("certs")).toEqual(["ns/ic1"]);
    expect(t.clock.pendingTimers()).toBe(0);
  });
});

describe("Manager: metrics", () => {
  it("counts reconciles by controller and outcome and exports each queue's depth", async () => {
    const t = track(setup());
    t.preloads.set("issuedcertificates", [obj("ns", "ok"), obj("ns", "later"), obj("ns", "broken"), obj("ns", "invalid")]);
    t.addController("certs", {}, async (key) => {
      if (key === "ns/later") return requeueAfter(60_000);
      if (key === "ns/broken") throw new Error("issuer unavailable");
      if (key === "ns/invalid") throw new TerminalError("invalid spec");
    });
    t.addController("idle", { for: spec("pods", PODS.path) });
    await t.manager.start();
    await flush();

    const text = await t.registry.metrics();
    for (const outcome of ["success", "requeue", "error", "terminal"]) {
      expect(text).toContain(`cert_agent_reconcile_total{controller="certs",outcome="${outcome}"} 1`);
    }
    expect(text).toMatch(/cert_agent_reconcile_duration_seconds_count\{controller="certs"\} 4/);
    expect(text).toContain(`cert_agent_workqueue_depth{controller="certs"} 0`);
    expect(text).toContain(`cert_agent_workqueue_depth{controller="idle"} 0`);
  });

  it("the queue depth counts keys waiting behind a busy worker", async () => {
    const t = track(setup());
    const gate = deferred();
    t.addController("certs", { concurrency: 1 }, () => gate.promise);
    await t.manager.start();
    const source = t.source("issuedcertificates");
    ["a", "b", "c"].forEach((name) => source.emit(obj("ns", name)));
    await flush();
    expect(await t.registry.metrics()).toContain(`cert_agent_workqueue_depth{controller="certs"} 2`);
    gate.resolve();
    await flush();
    expect(await t.registry.metrics()).toContain(`cert_agent_workqueue_depth{controller="certs"} 0`);
  });
});

describe("Manager: /healthz, /statusz and the ready and leader gauges, on a fake clock", () => {
  const THRESHOLD = 60_000;
  /** A MemorySource that can say it is failing, like a ResilientInformer whose restarts do not work. */
  const failing = (source: MemorySource, since: Date | undefined, lastError = "connect ECONNREFUSED") => {
    (source as MemorySource & { health: Source<KubernetesObject>["health"] }).health = () => ({ failingSince: since, lastError, restarts: 3 });
  };

  it("a controller whose every reconcile fails: /healthz 503 at the threshold naming it, 200 again after a success", async () => {
    let broken = true;
    const t = track(setup({ healthProbeBindAddress: "127.0.0.1:0", stallThresholdMs: THRESHOLD }));
    t.preloads.set("issuedcertificates", [obj("ns", "ic1")]);
    t.addController("certs", { backoff: { baseMs: 5000, maxMs: 5000 } }, async () => {
      if (broken) throw new Error("the API server is gone");
    });
    await t.manager.start();
    await flush();
    const port = t.manager.healthPort!;
    expect(await get(port, "/healthz")).toEqual({ status: 200, body: "ok\n" });
    for (let s = 5; s < 60; s += 5) {
      t.clock.advance(5000);
      await flush();
    }
    expect((await get(port, "/healthz")).status).toBe(200); // 55 s
    t.clock.advance(5000);
    await flush();
    const red = await get(port, "/healthz");
    expect(red.status).toBe(503);
    expect(red.body).toBe("controller:certs: work owed for 60.0s without a reconcile finishing (stall threshold 60.0s; 0 waiting, 0 running, 1 failing; last progress never)\n");
    // Readiness is another question: the caches are synced.
    expect((await get(port, "/readyz")).status).toBe(200);
    broken = false;
    t.clock.advance(5000);
    await flush();
    expect(await get(port, "/healthz")).toEqual({ status: 200, body: "ok\n" });
  });

  it("an informer failing for the threshold: 503 naming it with its last error; 200 once it works", async () => {
    const t = track(setup({ healthProbeBindAddress: "127.0.0.1:0", stallThresholdMs: THRESHOLD }));
    t.addController("certs", { owns: [{ source: SECRETS, ownerKind: "IssuedCertificate" }] });
    await t.manager.start();
    const port = t.manager.healthPort!;
    failing(t.source("secrets"), t.clock.now());
    t.clock.advance(THRESHOLD - 1);
    expect((await get(port, "/healthz")).status).toBe(200);
    t.clock.advance(1);
    expect(await get(port, "/healthz")).toEqual({
      status: 503,
      body: "informer:secrets: no working list/watch for 60.0s (stall threshold 60.0s, 3 restarts; last error: connect ECONNREFUSED)\n",
    });
    failing(t.source("secrets"), undefined);
    expect((await get(port, "/healthz")).status).toBe(200);
  });

  it("the Lease lost while the process still runs: /healthz and /readyz 503 at once; the gauges follow", async () => {
    const election = fakeElection();
    const t = track(setup({ healthProbeBindAddress: "127.0.0.1:0", leaderElection: election.factory, onLostLeadership: () => {} }));
    t.addController("certs");
    await t.manager.start();
    const port = t.manager.healthPort!;
    const gauges = async () => {
      const text = await t.registry.metrics();
      return [/^cert_agent_ready (\d)$/m.exec(text)?.[1], /^cert_agent_leader (\d)$/m.exec(text)?.[1]];
    };
    expect(await gauges()).toEqual(["1", "0"]); // standing by: ready, not the one working
    await election.lead();
    await flush();
    expect(await gauges()).toEqual(["1", "1"]);
    expect((await get(port, "/healthz")).status).toBe(200);
    await election.lose();
    expect(await get(port, "/healthz")).toEqual({
      status: 503,
      body: "leader-election: the Lease was lost at 2026-01-01T00:00:00.000Z and this replica is still running\n",
    });
    expect(await get(port, "/readyz")).toEqual({ status: 503, body: "leader-election: the Lease was lost\n" });
    expect(await gauges()).toEqual(["0", "0"]);
  });

  it("cert_agent_ready follows /readyz; without leader election cert_agent_leader is 1 once working", async () => {
    const t = track(setup());
    t.addController("certs");
    for (const s of t.created) s.syncOnStart = false;
    await t.manager.start();
    let text = await t.registry.metrics();
    expect(text).toMatch(/^cert_agent_ready 0$/m);
    expect(text).toMatch(/^cert_agent_leader 1$/m);
    t.source("issuedcertificates").synced = true;
    text = await t.registry.metrics();
    expect(text).toMatch(/^cert_agent_ready 1$/m);
  });

  it("/statusz: leadership, controllers with depth and last progress, informers, the API facts and added sections", async () => {
    const election = fakeElection();
    const api = {
      snapshot: () => ({
        lastSuccessAt: new Date("2026-01-01T00:00:04Z"), clockSkewMs: -2000, clockSkewMeasuredAt: new Date("2026-01-01T00:00:04Z"),
        clockSkewWarningMs: 60_000, clockSkewExceeded: false,
      }),
    };
    const t = track(setup({ healthProbeBindAddress: "127.0.0.1:0", leaderElection: election.factory, stallThresholdMs: THRESHOLD, api, identity: "agent-0" }));
    const gate = deferred();
    t.preloads.set("issuedcertificates", [obj("ns", "a"), obj("ns", "b"), obj("ns", "c")]);
    t.addController("certs", { concurrency: 1 }, async (key) => {
      if (key === "ns/a") return;
      await gate.promise;
    });
    t.manager.addStatusSection("certificates", async () => [{ name: "a" }]);
    await t.manager.start();
    const port = t.manager.healthPort!;
    const standby = JSON.parse((await get(port, "/statusz")).body) as Record<string, unknown>;
    expect(standby).toMatchObject({ identity: "agent-0", leadership: "standby", working: false, healthy: true, ready: true, certificates: [{ name: "a" }] });
    // Not started on a standby replica: not synced, and that is fine.
    expect(standby.informers).toEqual([{ name: "issuedcertificates", synced: false, failingSince: null, lastError: null, restarts: 0 }]);

    t.clock.advance(2000);
    await election.lead();
    await flush();
    t.clock.advance(3000);
    const res = await get(port, "/statusz");
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({
      time: "2026-01-01T00:00:05.000Z",
      identity: "agent-0",
      leadership: "leading",
      lostLeadershipTime: null,
      working: true,
      healthy: true,
      healthFailures: [],
      ready: true,
      readyFailures: [],
      stallThresholdSeconds: 60,
      controllers: [{
        name: "certs",
        queueDepth: 1,
        processing: 1,
        failing: 0,
        busySince: "2026-01-01T00:00:02.000Z",
        lastProgressTime: "2026-01-01T00:00:02.000Z",
        noProgressSince: "2026-01-01T00:00:02.000Z",
      }],
      informers: [{ name: "issuedcertificates", synced: true, failingSince: null, lastError: null, restarts: 0 }],
      api: {
        lastSuccessTime: "2026-01-01T00:00:04.000Z",
        lastErrorTime: null,
        lastError: null,
        clockSkewSeconds: -2,
        clockSkewMeasuredTime: "2026-01-01T00:00:04.000Z",
        clockSkewWarningSeconds: 60,
        clockSkewExceeded: false,
      },
      certificates: [{ name: "a" }],
    });
    // Past the threshold without progress (the deadline abandoned b, c runs too), /healthz names the stalled
    // controller and when the API server last answered.
    t.clock.advance(THRESHOLD);
    expect(await get(port, "/healthz")).toEqual({ status: 503, body: "controller:certs: work owed for 63.0s without a reconcile finishing " +
      "(stall threshold 60.0s; 0 waiting, 2 running, 0 failing; last progress 2026-01-01T00:00:02.000Z; the API server last answered 61.0s ago)\n" });
    gate.resolve();
  });

  it("/statusz shows the failing checks and says 'no leader election' without it", async () => {
    const t = track(setup({ healthProbeBindAddress: "127.0.0.1:0", stallThresholdMs: THRESHOLD }));
    t.addController("certs");
    for (const s of t.created) s.syncOnStart = false;
    await t.manager.start();
    failing(t.source("issuedcertificates"), t.clock.now(), "Forbidden");
    t.clock.advance(THRESHOLD);
    const doc = JSON.parse((await get(t.manager.healthPort!, "/statusz")).body) as Record<string, unknown>;
    expect(doc).toMatchObject({
      leadership: "no leader election",
      identity: null,
      api: null,
      healthy: false,
      healthFailures: [{ check: "informer:issuedcertificates", detail: expect.stringContaining("last error: Forbidden") }],
      ready: false,
      readyFailures: [{ check: "informer:issuedcertificates", detail: "informer issuedcertificates has not synced: Forbidden" }],
      informers: [{ name: "issuedcertificates", synced: false, failingSince: "2026-01-01T00:00:00.000Z", lastError: "Forbidden", restarts: 3 }],
    });
  });
});

describe("Manager: /statusz when a section fails", () => {
  it("answers 500 with the error instead of a partial document; /healthz is unaffected", async () => {
    const t = track(setup({ healthProbeBindAddress: "127.0.0.1:0" }));
    t.addController("certs");
    t.manager.addStatusSection("certificates", async () => {
      throw new Error("gauge unreadable");
    });
    await t.manager.start();
    expect(await get(t.manager.healthPort!, "/statusz")).toEqual({ status: 500, body: "statusz failed: Error: gauge unreadable\n" });
    expect((await get(t.manager.healthPort!, "/healthz")).status).toBe(200);
  });
});
