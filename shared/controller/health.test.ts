// The /healthz and /readyz rules (health.ts), each on its own with exact times, and the facts they
// read as the real Controller and ResilientInformer produce them under a fake clock.
import { PassThrough } from "node:stream";
import type { Informer, KubeConfig, KubernetesObject, ListPromise } from "@kubernetes/client-node";
import { FakeClock } from "./clock";
import { Controller, ControllerProgress, requeueAfter } from "./controller";
import { HealthFacts, livenessFailures, readinessFailures, stalledSince } from "./health";
import { ResilientInformer } from "./informer";
import { createLogger } from "./logger";

const T0 = new Date("2026-01-01T00:00:00Z").getTime();
const at = (ms: number) => new Date(T0 + ms);
const THRESHOLD = 600_000;
const NOW = 3_600_000;

const facts = (over: Partial<HealthFacts> = {}): HealthFacts => ({
  now: at(NOW),
  stallThresholdMs: THRESHOLD,
  working: true,
  stopping: false,
  leadership: "no leader election",
  informers: [],
  controllers: [],
  ...over,
});
const ctl = (over: Partial<ControllerProgress> = {}): ControllerProgress => ({ name: "certs", depth: 0, processing: 0, failing: 0, ...over });
const checks = (f: HealthFacts) => livenessFailures(f).map((x) => x.check);

describe("liveness rules", () => {
  it.each<[string, Partial<HealthFacts>, string[]]>([
    ["nothing at all", {}, []],
    // controllers
    ["an idle controller that never made progress", { controllers: [ctl()] }, []],
    ["busy exactly the threshold, no progress: stalled", { controllers: [ctl({ busySince: at(NOW - THRESHOLD), failing: 1 })] }, ["controller:certs"]],
    ["busy 1 ms less than the threshold", { controllers: [ctl({ busySince: at(NOW - THRESHOLD + 1), failing: 1 })] }, []],
    ["busy long, but a reconcile finished 1 s ago", { controllers: [ctl({ busySince: at(0), lastProgressAt: at(NOW - 1000), depth: 3 })] }, []],
    ["busy long, last progress exactly the threshold ago", { controllers: [ctl({ busySince: at(0), lastProgressAt: at(NOW - THRESHOLD), processing: 1 })] }, ["controller:certs"]],
    ["progress before the busy stretch does not count", { controllers: [ctl({ busySince: at(NOW - THRESHOLD), lastProgressAt: at(NOW - THRESHOLD - 1) })] }, ["controller:certs"]],
    ["a stalled controller on a standby replica (not working)", { working: false, controllers: [ctl({ busySince: at(0) })] }, []],
    // informers
    ["an informer that works", { informers: [{ name: "secrets", synced: true, restarts: 0 }] }, []],
    ["an informer failing exactly the threshold", { informers: [{ name: "secrets", synced: true, failingSince: at(NOW - THRESHOLD) }] }, ["informer:secrets"]],
    ["an informer failing 1 ms less", { informers: [{ name: "secrets", synced: true, failingSince: at(NOW - THRESHOLD + 1) }] }, []],
    ["an informer that never synced, failing long", { informers: [{ name: "secrets", synced: false, failingSince: at(0) }] }, ["informer:secrets"]],
    ["a failing informer of a standby replica (stopped)", { working: false, informers: [{ name: "secrets", synced: true, failingSince: at(0) }] }, []],
    // leader election
    ["leading", { leadership: "leading" }, []],
    ["standing by", { leadership: "standby", working: false }, []],
    ["the Lease lost, still running: at once, no threshold", { leadership: "lost", lostLeadershipAt: at(NOW) }, ["leader-election"]],
    // all at once, in a stable order
    ["several", {
      leadership: "lost",
      informers: [{ name: "a", synced: true, failingSince: at(0) }, { name: "b", synced: true }],
      controllers: [ctl({ name: "x", busySince: at(0) }), ctl({ name: "y" })],
    }, ["informer:a", "controller:x", "leader-election"]],
  ])("%s", (_name, over, expected) => {
    expect(checks(facts(over))).toEqual(expected);
  });

  it("says what is wrong, with the figures", () => {
    expect(livenessFailures(facts({
      leadership: "lost",
      lostLeadershipAt: at(NOW - 5000),
      informers: [{ name: "secrets", synced: true, failingSince: at(NOW - 612_300), lastError: "connect ECONNREFUSED 127.0.0.1:6443", restarts: 21 }],
      controllers: [ctl({ busySince: at(NOW - 700_000), lastProgressAt: at(NOW - 650_000), depth: 2, processing: 1, failing: 3 })],
    }))).toEqual([
      { check: "informer:secrets", detail: "no working list/watch for 612.3s (stall threshold 600.0s, 21 restarts; last error: connect ECONNREFUSED 127.0.0.1:6443)" },
      { check: "controller:certs", detail: "work owed for 650.0s without a reconcile finishing (stall threshold 600.0s; 2 waiting, 1 running, 3 failing; last progress 2026-01-01T00:49:10.000Z)" },
      { check: "leader-election", detail: "the Lease was lost at 2026-01-01T00:59:55.000Z and this replica is still running" },
    ]);
    expect(livenessFailures(facts({ controllers: [ctl({ busySince: at(0) })] }))[0]!.detail).toContain("last progress never");
  });

  it("a stalled controller's line says when the API server last answered, and how it failed since (a hung or gone server is named)", () => {
    const stalled = ctl({ busySince: at(NOW - THRESHOLD), processing: 2 });
    const detail = (api: HealthFacts["api"]) => livenessFailures(facts({ controllers: [stalled], api }))[0]!.detail;
    const base = "work owed for 600.0s without a reconcile finishing (stall threshold 600.0s; 0 waiting, 2 running, 0 failing; last progress never";
    // Hung: requests sent, none answered, none failed yet.
    expect(detail({ lastSuccessAt: at(NOW - 601_500) })).toBe(`${base}; the API server last answered 601.5s ago)`);
    // Then a request failed (after the last answer).
    expect(detail({ lastSuccessAt: at(NOW - 601_500), lastErrorAt: at(NOW - 2000), lastError: "get: Connect Timeout Error" }))
      .toBe(`${base}; the API server last answered 601.5s ago, failed 2.0s ago: get: Connect Timeout Error)`);
    // An error before the last answer is history: not repeated.
    expect(detail({ lastSuccessAt: at(NOW - 1000), lastErrorAt: at(NOW - 5000), lastError: "get: HTTP 503" }))
      .toBe(`${base}; the API server last answered 1.0s ago)`);
    expect(detail({})).toBe(`${base}; the API server has not answered yet)`);
    expect(detail({ lastErrorAt: at(NOW), lastError: "list: connect ECONNREFUSED 127.0.0.1:6443" }))
      .toBe(`${base}; the API server has not answered yet, failed 0.0s ago: list: connect ECONNREFUSED 127.0.0.1:6443)`);
    // Without an API observer the line is as before; an informer's line never carries it (it has its own last error).
    expect(detail(undefined)).toBe(`${base})`);
    expect(livenessFailures(facts({ informers: [{ name: "s", synced: true, failingSince: at(0), lastError: "x" }], api: { lastSuccessAt: at(0) } }))[0]!.detail)
      .not.toContain("API server");
  });

  it("stalledSince: the later of busySince and the last progress; undefined when idle", () => {
    expect(stalledSince(ctl())).toBeUndefined();
    expect(stalledSince(ctl({ lastProgressAt: at(5) }))).toBeUndefined();
    expect(stalledSince(ctl({ busySince: at(10), lastProgressAt: at(5) }))).toEqual(at(10));
    expect(stalledSince(ctl({ busySince: at(10), lastProgressAt: at(20) }))).toEqual(at(20));
  });
});

describe("readiness rules", () => {
  it.each<[string, Partial<HealthFacts>, string[]]>([
    ["working, every informer synced", { informers: [{ name: "a", synced: true }, { name: "b", synced: true }] }, []],
    ["working, one informer not synced", { informers: [{ name: "a", synced: true }, { name: "b", synced: false }] }, ["informer:b"]],
    ["a standby replica: no informer started, ready", { working: false, leadership: "standby", informers: [{ name: "a", synced: false }] }, []],
    ["leading, synced", { leadership: "leading", informers: [{ name: "a", synced: true }] }, []],
    ["the Lease lost", { leadership: "lost", informers: [{ name: "a", synced: true }] }, ["leader-election"]],
    ["stopping", { stopping: true }, ["manager"]],
    // Readiness has no threshold: a failing but synced informer keeps serving its cache.
    ["a synced informer that is failing now", { informers: [{ name: "a", synced: true, failingSince: at(0), lastError: "connect ECONNREFUSED 127.0.0.1:6443" }] }, []],
    ["a synced informer refused now (RBAC taken away): unready", { informers: [{ name: "a", synced: true, failingSince: at(0), lastError: "403: secrets is forbidden" }] }, ["informer:a"]],
    ["a synced informer that was refused once, working again", { informers: [{ name: "a", synced: true, lastError: "403: secrets is forbidden" }] }, []],
  ])("%s", (_name, over, expected) => {
    expect(readinessFailures(facts(over)).map((f) => f.check)).toEqual(expected);
  });

  it("names the informer that has not synced, with the error that keeps it from syncing", () => {
    expect(readinessFailures(facts({ informers: [{ name: "secrets", synced: false }] }))).toEqual([
      { check: "informer:secrets", detail: "informer secrets has not synced" },
    ]);
    const refused = "403: secrets is forbidden: User \"system:serviceaccount:a:b\" cannot list resource \"secrets\" at the cluster scope";
    expect(readinessFailures(facts({ informers: [{ name: "secrets", synced: false, failingSince: at(0), lastError: refused }] }))).toEqual([
      { check: "informer:secrets", detail: `informer secrets has not synced: ${refused}` },
    ]);
    expect(readinessFailures(facts({ informers: [{ name: "secrets", synced: true, failingSince: at(0), lastError: refused }] }))).toEqual([
      { check: "informer:secrets", detail: `informer secrets is refused: ${refused}` },
    ]);
  });
});

async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise(setImmediate);
}

const quietLog = () => {
  const s = new PassThrough();
  s.resume();
  return createLogger("error", s);
};

describe("a Controller's progress (the stall rule's input)", () => {
  function setup(reconcile: (key: string) => Promise<unknown>) {
    const clock = new FakeClock(at(0));
    const controller = new Controller({
      name: "certs",
      clock,
      log: quietLog(),
      reconciler: { reconcile: (key) => reconcile(key) as never },
      backoff: { baseMs: 1000, maxMs: 1000 },
      timeoutMs: 60_000,
    });
    controller.start();
    return { clock, controller };
  }

  it("idle: not busy, no progress", () => {
    const { controller } = setup(async () => undefined);
    expect(controller.progress()).toEqual({ name: "certs", depth: 0, processing: 0, failing: 0, busySince: undefined, lastProgressAt: undefined });
    void controller.stop(0);
  });

  it("a reconcile that succeeds is progress and leaves the queue owing nothing", async () => {
    const { clock, controller } = setup(async () => undefined);
    clock.advance(5000);
    controller.enqueue("ns/a");
    await flush();
    expect(controller.progress()).toMatchObject({ busySince: undefined, lastProgressAt: at(5000), failing: 0 });
    await controller.stop(0);
  });

  it("requeueAfter is progress, and the key scheduled for later is not work owed", async () => {
    const { controller } = setup(async () => requeueAfter(30_000));
    controller.enqueue("ns/a");
    await flush();
    expect(controller.progress()).toMatchObject({ busySince: undefined, lastProgressAt: at(0) });
    await controller.stop(0);
  });

  it("a key that keeps failing keeps the queue busy from its first add, with no progress, until it succeeds", async () => {
    let fail = true;
    const { clock, controller } = setup(async () => {
      if (fail) throw new Error("connection refused");
    });
    clock.advance(1000);
    controller.enqueue("ns/a");
    await flush();
    expect(controller.progress()).toMatchObject({ busySince: at(1000), lastProgressAt: undefined, failing: 1, depth: 0, processing: 0 });
    // Retried every second (the backoff), failing each time: still busy since the first add.
    for (let i = 0; i < 10; i++) {
      clock.advance(1000);
      await flush();
    }
    const stalled = facts({ now: clock.now(), stallThresholdMs: 10_000, controllers: [controller.progress()] });
    expect(livenessFailures(stalled).map((f) => f.check)).toEqual(["controller:certs"]);
    fail = false;
    clock.advance(1000);
    await flush();
    expect(controller.progress()).toMatchObject({ busySince: undefined, lastProgressAt: at(12_000), failing: 0 });
    expect(livenessFailures(facts({ now: clock.now(), stallThresholdMs: 10_000, controllers: [controller.progress()] }))).toEqual([]);
    await controller.stop(0);
  });

  it("a reconcile that hangs past its deadline is not progress", async () => {
    const { clock, controller } = setup(() => new Promise(() => {}));
    controller.enqueue("ns/a");
    await flush();
    expect(controller.progress()).toMatchObject({ busySince: at(0), processing: 1 });
    clock.advance(60_000);
    await flush();
    expect(controller.progress()).toMatchObject({ busySince: at(0), lastProgressAt: undefined });
    void controller.stop(0);
  });
});

/** A client-node informer whose start() does what the test scripts: list and connect, or fail. */
class ScriptedInformer {
  readonly handlers = new Map<string, ((arg: unknown) => void)[]>();
  /** What each start() does, in order; the last one repeats. */
  script: ("connect" | "list-then-fail-watch" | "fail" | "reject")[] = ["connect"];
  starts = 0;

  constructor(private readonly listFn: ListPromise<KubernetesObject>) {}

  on(event: string, cb: (arg: unknown) => void): void {
    this.handlers.set(event, [...(this.handlers.get(event) ?? []), cb]);
  }

  emit(event: string, arg: unknown): void {
    for (const cb of this.handlers.get(event) ?? []) cb(arg);
  }

  async start(): Promise<void> {
    const step = this.script[Math.min(this.starts++, this.script.length - 1)];
    if (step === "reject") throw new Error("could not load credentials");
    if (step === "fail") return this.emit("error", new Error("connect ECONNREFUSED"));
    await this.listFn();
    if (step === "list-then-fail-watch") this.emit("error", Object.assign(new Error("Forbidden"), { statusCode: 403 }));
  }

  async stop(): Promise<void> {}
  list(): KubernetesObject[] {
    return [];
  }
}

describe("a ResilientInformer's health (the informer rule's input)", () => {
  function setup(script: ScriptedInformer["script"]) {
    const clock = new FakeClock(at(0));
    let scripted!: ScriptedInformer;
    const informer = new ResilientInformer<KubernetesObject>({
      name: "secrets",
      kc: {} as KubeConfig,
      path: "/api/v1/secrets",
      list: async () => ({ items: [] }),
      log: quietLog(),
      clock,
      // Exactly 1 s between restarts: without `random` the equal jitter makes it 0.5-1 s, and a third
      // restart could fall inside two advances of 1 s (the flake seen in a CI run).
      backoff: { baseMs: 1000, maxMs: 1000, random: () => 1 },
      makeInformer: ((_kc: KubeConfig, _path: string, list: ListPromise<KubernetesObject>) => {
        scripted = new ScriptedInformer(list);
        scripted.script = script;
        return scripted as unknown as Informer<KubernetesObject>;
      }) as never,
    });
    return { clock, informer, scripted: () => scripted };
  }

  it("connected at once: synced, never failing", async () => {
    const { informer } = setup(["connect"]);
    await informer.start();
    expect(informer.hasSynced()).toBe(true);
    expect(informer.health()).toEqual({ failingSince: undefined, lastError: undefined, restarts: 0 });
  });

  it("failing from the first error until a restart connects; the last error stays for /statusz", async () => {
    const { clock, informer } = setup(["fail", "fail", "fail", "connect"]);
    clock.advance(500);
    await informer.start();
    expect(informer.hasSynced()).toBe(false);
    expect(informer.health()).toEqual({ failingSince: at(500), lastError: "connect ECONNREFUSED", restarts: 0 });
    clock.advance(1000);
    await flush();
    clock.advance(1000);
    await flush();
    expect(informer.health()).toMatchObject({ failingSince: at(500), restarts: 2 });
    clock.advance(1000);
    await flush();
    expect(informer.hasSynced()).toBe(true);
    expect(informer.health()).toEqual({ failingSince: undefined, lastError: "connect ECONNREFUSED", restarts: 3 });
    await informer.stop();
  });

  it("a start that rejects (credentials that fail to load) restarts too, instead of leaving the informer dead", async () => {
    const { clock, informer, scripted } = setup(["reject", "connect"]);
    await expect(informer.start()).resolves.toBeUndefined();
    expect(informer.health().failingSince).toEqual(at(0));
    expect(clock.pendingTimers()).toBe(1);
    clock.advance(1000);
    await flush();
    expect(scripted().starts).toBe(2);
    expect(informer.hasSynced()).toBe(true);
    expect(informer.health().failingSince).toBeUndefined();
    await informer.stop();
  });

  it("a LIST that works with a WATCH that fails: synced (the cache is filled) but failing", async () => {
    const { informer } = setup(["list-then-fail-watch"]);
    await informer.start();
    expect(informer.hasSynced()).toBe(true);
    expect(informer.health()).toMatchObject({ failingSince: at(0), lastError: "Forbidden" });
    await informer.stop();
  });

  it("an event proves the watch works", async () => {
    const { clock, informer, scripted } = setup(["list-then-fail-watch"]);
    await informer.start();
    clock.advance(200);
    scripted().emit("add", { metadata: { namespace: "ns", name: "s" } });
    expect(informer.health().failingSince).toBeUndefined();
    await informer.stop();
  });

  it("stop() ends the failing state: a stopped informer is not dead, it was asked to stop", async () => {
    const { informer } = setup(["fail"]);
    await informer.start();
    expect(informer.health().failingSince).toEqual(at(0));
    await informer.stop();
    expect(informer.health().failingSince).toBeUndefined();
  });
});
