import type { ConfigurationOptions, V1Lease, V1LeaseSpec } from "@kubernetes/client-node";
import { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "winston";
import { FakeClock } from "./clock";
import {
  acquireRetryDelay,
  decideLeaseAction,
  electionTiming,
  heldLeaseSpec,
  LeaderElector,
  leaseDurationSeconds,
  leaseExpired,
  leaseExpiry,
  parseMicroTime,
  releasedLeaseSpec,
  toMicroTime,
  type LeaseAction,
  type LeaseClient,
} from "./leader-election";

const T0 = new Date("2026-01-01T00:00:00.000Z");
const at = (ms: number) => new Date(T0.getTime() + ms);
const micro = (ms: number) => at(ms).toISOString().replace("Z", "000Z");

function lease(spec: V1LeaseSpec | undefined): V1Lease {
  return { metadata: { name: "l", namespace: "ns", resourceVersion: "1" }, spec };
}

describe("parseMicroTime", () => {
  it.each<[string, unknown, number | undefined]>([
    ["a MicroTime string (6 digits)", "2026-01-01T00:00:01.123456Z", T0.getTime() + 1123],
    ["an RFC 3339 string without fraction", "2026-01-01T00:00:01Z", T0.getTime() + 1000],
    ["a Date", at(5), T0.getTime() + 5],
    ["a V1MicroTime", toMicroTime(at(7)), T0.getTime() + 7],
    ["an empty string", "", undefined],
    ["garbage", "yesterday-ish", undefined],
    ["an invalid Date", new Date(NaN), undefined],
    ["undefined", undefined, undefined],
    ["a number", 12345, undefined],
  ])("%s", (_, value, expected) => {
    expect(parseMicroTime(value)?.getTime()).toBe(expected);
  });

  it("toMicroTime serializes with microseconds, as client-node sends MicroTime", () => {
    expect(JSON.stringify({ t: toMicroTime(at(123)) })).toBe(`{"t":"${micro(123)}"}`);
    expect(micro(123)).toBe("2026-01-01T00:00:00.123000Z");
  });
});

describe("leaseExpiry / leaseExpired", () => {
  it.each<[string, V1LeaseSpec | undefined, number, number | undefined, boolean]>([
    // name, spec, now (ms after T0), expiry (ms after T0), expired
    ["no spec", undefined, 0, undefined, true],
    ["no renewTime", { holderIdentity: "a", leaseDurationSeconds: 15 }, 0, undefined, true],
    ["no leaseDurationSeconds", { holderIdentity: "a", renewTime: micro(0) as never }, 0, undefined, true],
    ["leaseDurationSeconds 0", { holderIdentity: "a", renewTime: micro(0) as never, leaseDurationSeconds: 0 }, 0, undefined, true],
    ["unparsable renewTime", { holderIdentity: "a", renewTime: "soon" as never, leaseDurationSeconds: 15 }, 0, undefined, true],
    ["just renewed", { renewTime: micro(0) as never, leaseDurationSeconds: 15 }, 0, 15_000, false],
    ["1 ms before expiry", { renewTime: micro(0) as never, leaseDurationSeconds: 15 }, 14_999, 15_000, false],
    ["exactly at expiry", { renewTime: micro(0) as never, leaseDurationSeconds: 15 }, 15_000, 15_000, true],
    ["after expiry", { renewTime: micro(0) as never, leaseDurationSeconds: 15 }, 60_000, 15_000, true],
    ["renewTime as a Date", { renewTime: toMicroTime(at(1000)), leaseDurationSeconds: 2 }, 2999, 3000, false],
    ["renewTime in the future (skewed writer)", { renewTime: micro(10_000) as never, leaseDurationSeconds: 1 }, 10_500, 11_000, false],
    ["released lease (duration 1)", { holderIdentity: "", renewTime: micro(0) as never, leaseDurationSeconds: 1 }, 1000, 1000, true],
  ])("%s", (_, spec, now, expiry, expired) => {
    expect(leaseExpiry(lease(spec))?.getTime()).toBe(expiry === undefined ? undefined : T0.getTime() + expiry);
    expect(leaseExpired(lease(spec), at(now))).toBe(expired);
  });
});

describe("decideLeaseAction", () => {
  const valid = (holder: string | undefined) => lease({ holderIdentity: holder, renewTime: micro(0) as never, leaseDurationSeconds: 15 });
  const expired = (holder: string) => lease({ holderIdentity: holder, renewTime: micro(-60_000) as never, leaseDurationSeconds: 15 });
  it.each<[string, boolean, LeaseAction, V1Lease | undefined]>([
    ["no lease", false, "create", undefined],
    ["valid lease of another", false, "wait", valid("b")],
    ["expired lease of another", false, "acquire", expired("b")],
    ["released lease (empty holder)", false, "acquire", valid("")],
    ["lease without holder field", false, "acquire", valid(undefined)],
    ["lease without spec", false, "acquire", lease(undefined)],
    ["our own lease (a restarted container)", false, "renew", valid("a")],
    ["our own expired lease", false, "renew", expired("a")],
    ["our lease", true, "renew", valid("a")],
    ["our lease, though expired by the clock", true, "renew", expired("a")],
    ["lease taken by another", true, "lost", valid("b")],
    ["lease released by someone else", true, "lost", valid("")],
    ["lease expired and held by another", true, "lost", expired("b")],
    ["lease deleted", true, "lost", undefined],
  ])("%s (leading: %s) -> %s", (_, leading, expected, l) => {
    expect(decideLeaseAction(l, "a", at(0), leading)).toBe(expected);
  });
});

describe("heldLeaseSpec", () => {
  it.each<[string, V1LeaseSpec | undefined, Partial<Record<keyof V1LeaseSpec, unknown>>]>([
    ["create", undefined, { holderIdentity: "a", leaseTransitions: 0, acquireTime: micro(5000), renewTime: micro(5000), leaseDurationSeconds: 15 }],
    [
      "renew keeps acquireTime (as read) and leaseTransitions",
      { holderIdentity: "a", acquireTime: "2025-12-31T00:00:00.654321Z" as never, renewTime: micro(0) as never, leaseDurationSeconds: 15, leaseTransitions: 3 },
      { holderIdentity: "a", leaseTransitions: 3, acquireTime: "2025-12-31T00:00:00.654321Z", renewTime: micro(5000) },
    ],
    [
      "renew of a record without acquireTime sets it",
      { holderIdentity: "a", leaseDurationSeconds: 15 },
      { holderIdentity: "a", leaseTransitions: 0, acquireTime: micro(5000) },
    ],
    [
      "taking over from another counts a transition",
      { holderIdentity: "b", acquireTime: micro(-9000) as never, renewTime: micro(-1000) as never, leaseDurationSeconds: 2, leaseTransitions: 3 },
      { holderIdentity: "a", leaseTransitions: 4, acquireTime: micro(5000), renewTime: micro(5000), leaseDurationSeconds: 15 },
    ],
    [
      "taking over a released lease counts a transition",
      { holderIdentity: "", leaseDurationSeconds: 1, leaseTransitions: 4 },
      { holderIdentity: "a", leaseTransitions: 5, leaseDurationSeconds: 15 },
    ],
    ["taking over a lease made by kubectl without transitions", { holderIdentity: "b" }, { leaseTransitions: 1 }],
    ["keeps fields it does not manage", { holderIdentity: "b", strategy: "OldestEmulationVersion" }, { strategy: "OldestEmulationVersion" }],
  ])("%s", (_, old, expected) => {
    const spec = JSON.parse(JSON.stringify(heldLeaseSpec(old, "a", at(5000), 15)));
    expect(spec).toMatchObject(expected);
  });
});

describe("releasedLeaseSpec", () => {
  it.each<[string, V1LeaseSpec | undefined, number]>([
    ["keeps leaseTransitions", { holderIdentity: "a", leaseDurationSeconds: 15, leaseTransitions: 7, acquireTime: micro(0) as never }, 7],
    ["without leaseTransitions", { holderIdentity: "a" }, 0],
    ["without a spec", undefined, 0],
  ])("%s", (_, old, transitions) => {
    const spec = JSON.parse(JSON.stringify(releasedLeaseSpec(old, at(9000))));
    expect(spec).toEqual({ holderIdentity: "", leaseDurationSeconds: 1, leaseTransitions: transitions, acquireTime: micro(9000), renewTime: micro(9000) });
    // Anyone may take it at once.
    expect(decideLeaseAction(lease(spec), "b", at(9000), false)).toBe("acquire");
  });
});

describe("acquireRetryDelay / leaseDurationSeconds / electionTiming", () => {
  it.each([
    [2000, 0, 2000],
    [2000, 0.5, 2200],
    [2000, 0.999999, 2400],
    [300, 0.5, 330],
  ])("retry %i ms with random %f waits %i ms", (retry, r, expected) => {
    expect(acquireRetryDelay(retry, () => r)).toBe(expected);
  });

  it.each([
    [15_000, 15],
    [2000, 2],
    [1500, 2],
    [200, 1],
  ])("lease of %i ms is written as %i s (never shorter)", (ms, s) => expect(leaseDurationSeconds(ms)).toBe(s));

  it("defaults like client-go, request timeout half the renew deadline", () => {
    expect(electionTiming({})).toEqual({ leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000, requestTimeoutMs: 5_000 });
  });

  it.each<[string, Parameters<typeof electionTiming>[0], RegExp]>([
    ["renew deadline not below lease duration", { leaseDurationMs: 2000, renewDeadlineMs: 2000 }, /leaseDurationMs \(2000\) must be greater than renewDeadlineMs/],
    ["retry too close to the renew deadline", { leaseDurationMs: 2000, renewDeadlineMs: 1500, retryPeriodMs: 1300 }, /renewDeadlineMs \(1500\) must be greater than 1.2 x retryPeriodMs/],
    ["zero retry", { retryPeriodMs: 0 }, /retryPeriodMs must be a positive number/],
    ["NaN lease", { leaseDurationMs: NaN }, /leaseDurationMs must be a positive number/],
    ["empty identity", { identity: "" }, /identity must not be empty/],
  ])("rejects %s", (_, opts, message) => {
    expect(() => electionTiming(opts)).toThrow(message);
  });
});

// ---- The loop, driven by a FakeClock against an in-memory Lease store ----

class ApiError extends Error {
  constructor(readonly code: number) {
    super(`HTTP ${code}`);
  }
}

/** An in-memory Lease API: resourceVersion checks like the API server, JSON round trips like the
 * wire (so MicroTime fields come back as strings, as with client-node). */
class FakeLeases implements LeaseClient {
  lease: V1Lease | undefined;
  private rv = 0;
  writes: { op: "create" | "replace"; holder: string }[] = [];
  /** Make calls fail: return an error to throw, "hang" to wait until aborted, or undefined. */
  fault: ((op: "read" | "create" | "replace") => Error | "hang" | undefined) | undefined;

  /** While set, every call waits for it. */
  gate: Promise<void> | undefined;

  private async guard(op: "read" | "create" | "replace", options?: ConfigurationOptions) {
    await Promise.resolve();
    if (this.gate) await this.gate;
    const fault = this.fault?.(op);
    if (fault === "hang") {
      let signal: AbortSignal | undefined;
      for (const m of options?.middleware ?? []) m.pre({ setSignal: (s: AbortSignal) => (signal = s) } as never);
      await new Promise((_, reject) => signal!.addEventListener("abort", () => reject(signal!.reason)));
    }
    if (fault) throw fault;
  }

  /** Writes as another party would (kubectl, a rival). */
  set(spec: V1LeaseSpec | undefined) {
    this.lease = JSON.parse(JSON.stringify({ metadata: { name: "l", namespace: "ns", resourceVersion: String(++this.rv) }, spec }));
  }

  readNamespacedLease: LeaseClient["readNamespacedLease"] = async (_p, options) => {
    await this.guard("read", options);
    if (!this.lease) throw new ApiError(404);
    return JSON.parse(JSON.stringify(this.lease));
  };

  createNamespacedLease: LeaseClient["createNamespacedLease"] = async (p, options) => {
    await this.guard("create", options);
    if (this.lease) throw new ApiError(409);
    this.set(JSON.parse(JSON.stringify(p.body.spec)));
    this.writes.push({ op: "create", holder: p.body.spec?.holderIdentity ?? "" });
    return JSON.parse(JSON.stringify(this.lease));
  };

  replaceNamespacedLease: LeaseClient["replaceNamespacedLease"] = async (p, options) => {
    await this.guard("replace", options);
    if (!this.lease) throw new ApiError(404);
    if (p.body.metadata?.resourceVersion !== this.lease.metadata?.resourceVersion) throw new ApiError(409);
    this.set(JSON.parse(JSON.stringify(p.body.spec)));
    this.writes.push({ op: "replace", holder: p.body.spec?.holderIdentity ?? "" });
    return JSON.parse(JSON.stringify(this.lease));
  };
}

interface LogLine {
  level: string;
  message: string;
  [k: string]: unknown;
}

function harness(store: FakeLeases, clock: FakeClock, identity: string, overrides: { random?: () => number } = {}) {
  const lines: LogLine[] = [];
  const log = { log: (level: string, message: string, meta: object) => lines.push({ level, message, ...meta }) } as unknown as Logger;
  const events: { event: "started" | "stopped"; at: number }[] = [];
  const elector = new LeaderElector({
    kc: new KubeConfig(),
    namespace: "ns",
    name: "l",
    identity,
    leaseDurationMs: 4000,
    renewDeadlineMs: 3000,
    retryPeriodMs: 1000,
    clock,
    log,
    random: overrides.random ?? (() => 0),
    client: store,
    onStartedLeading: () => void events.push({ event: "started", at: clock.now().getTime() - T0.getTime() }),
    onStoppedLeading: () => void events.push({ event: "stopped", at: clock.now().getTime() - T0.getTime() }),
  });
  let done = false;
  return {
    elector,
    lines,
    events,
    start() {
      void elector.run().then(() => (done = true));
    },
    get done() {
      return done;
    },
  };
}

/** Lets the fake API's promises settle (no real time passes). */
async function settle() {
  for (let i = 0; i < 50; i++) await Promise.resolve();
}

/** Moves the fake clock forward 1 ms at a time, letting async work settle after each step, so
 * every timer the elector sets is honoured to the millisecond. */
async function advance(clock: FakeClock, ms: number) {
  for (let i = 0; i < ms; i++) {
    clock.advance(1);
    await settle();
  }
}

describe("LeaderElector with a FakeClock", () => {
  let clock: FakeClock;
  let store: FakeLeases;
  beforeEach(() => {
    clock = new FakeClock(T0);
    store = new FakeLeases();
  });

  it("creates an absent Lease at once, then renews every retry period keeping acquireTime", async () => {
    const a = harness(store, clock, "a");
    a.start();
    await settle();
    expect(a.elector.isLeader()).toBe(true);
    expect(a.events).toEqual([{ event: "started", at: 0 }]);
    expect(store.lease?.spec).toEqual({
      holderIdentity: "a",
      leaseDurationSeconds: 4,
      leaseTransitions: 0,
      acquireTime: micro(0),
      renewTime: micro(0),
    });
    await advance(clock, 999);
    expect(store.lease?.spec?.renewTime).toBe(micro(0));
    await advance(clock, 1);
    expect(store.lease?.spec?.renewTime).toBe(micro(1000));
    await advance(clock, 2000);
    expect(store.lease?.spec).toMatchObject({ renewTime: micro(3000), acquireTime: micro(0), leaseTransitions: 0 });
    expect(store.writes).toHaveLength(4);
    const acquired = a.lines.filter((l) => l.message === "acquired leadership");
    expect(acquired).toEqual([expect.objectContaining({ level: "info", identity: "a", lease: "l", namespace: "ns", how: "create" })]);
    await a.elector.release();
  });

  it("waits while another holds a valid Lease and takes it exactly when it expires", async () => {
    store.set({ holderIdentity: "b", renewTime: micro(0) as never, acquireTime: micro(-5000) as never, leaseDurationSeconds: 4, leaseTransitions: 2 });
    const a = harness(store, clock, "a");
    a.start();
    await settle();
    expect(a.elector.isLeader()).toBe(false);
    await advance(clock, 3999);
    expect(a.elector.isLeader()).toBe(false);
    expect(store.writes).toHaveLength(0);
    await advance(clock, 1);
    expect(a.elector.isLeader()).toBe(true);
    expect(a.events).toEqual([{ event: "started", at: 4000 }]);
    expect(store.lease?.spec).toMatchObject({ holderIdentity: "a", leaseTransitions: 3, acquireTime: micro(4000) });
    // One line for the holder seen, not one per attempt.
    expect(a.lines.filter((l) => l.message === "lease held by another candidate, waiting")).toEqual([
      expect.objectContaining({ holder: "b", identity: "a" }),
    ]);
    await a.elector.release();
  });

  it("retries acquiring after the retry period plus jitter", async () => {
    store.set({ holderIdentity: "b", renewTime: micro(0) as never, leaseDurationSeconds: 60 });
    const a = harness(store, clock, "a", { random: () => 0.5 });
    const readsAt: number[] = [];
    store.fault = (op) => void (op === "read" && readsAt.push(clock.now().getTime() - T0.getTime()));
    a.start();
    await settle();
    await advance(clock, 3300);
    expect(readsAt).toEqual([0, 1100, 2200, 3300]);
    await a.elector.stop();
    expect(a.done).toBe(true);
  });

  it("of two candidates racing for an absent Lease exactly one wins; the other gets a 409 and waits", async () => {
    const a = harness(store, clock, "a");
    const b = harness(store, clock, "b");
    a.start();
    b.start();
    await settle();
    expect([a.elector.isLeader(), b.elector.isLeader()].filter(Boolean)).toHaveLength(1);
    expect(store.writes).toHaveLength(1);
    await advance(clock, 10_000);
    expect([a.elector.isLeader(), b.elector.isLeader()].filter(Boolean)).toHaveLength(1);
    await a.elector.release();
    await b.elector.release();
  });

  it("stops leading exactly renewDeadline after the last successful renewal when renewals fail", async () => {
    const a = harness(store, clock, "a");
    a.start();
    await settle();
    await advance(clock, 1000); // renewed at 1000
    store.fault = () => new ApiError(500);
    await advance(clock, 2999);
    expect(a.elector.isLeader()).toBe(true);
    expect(a.events).toEqual([{ event: "started", at: 0 }]);
    await advance(clock, 1);
    expect(a.elector.isLeader()).toBe(false);
    expect(a.events).toEqual([
      { event: "started", at: 0 },
      { event: "stopped", at: 4000 },
    ]);
    await settle();
    expect(a.done).toBe(true);
    expect(a.lines.filter((l) => l.message === "failed to renew lease, will retry")).toHaveLength(2); // at 2000 and 3000
    expect(a.lines.filter((l) => l.message === "leadership lost")).toEqual([
      expect.objectContaining({ level: "error", identity: "a", lease: "l", reason: expect.stringContaining("renew deadline") }),
    ]);
    // Never writes again, even when the API server comes back.
    store.fault = undefined;
    const writes = store.writes.length;
    await advance(clock, 5000);
    expect(store.writes).toHaveLength(writes);
    expect(clock.pendingTimers()).toBe(0);
  });

  it("a renewal that hangs is aborted and the deadline still holds", async () => {
    const a = harness(store, clock, "a");
    a.start();
    await settle();
    store.fault = () => "hang";
    await advance(clock, 2999);
    expect(a.elector.isLeader()).toBe(true);
    await advance(clock, 1);
    expect(a.events.map((e) => e.event)).toEqual(["started", "stopped"]);
    expect(a.events[1].at).toBe(3000);
    await settle();
    expect(a.done).toBe(true);
    expect(clock.pendingTimers()).toBe(0);
  });

  it.each<[string, (store: FakeLeases) => void, string]>([
    ["taken by another", (s) => s.set({ ...s.lease!.spec, holderIdentity: "intruder", renewTime: micro(500) as never }), 'lease is now held by "intruder"'],
    ["released by someone else", (s) => s.set({ ...s.lease!.spec, holderIdentity: "" }), "lease was released by someone else"],
    ["deleted", (s) => (s.lease = undefined), "lease was deleted"],
  ])("a leader whose Lease is %s stops at its next renewal, without writing", async (_, change, reason) => {
    const a = harness(store, clock, "a");
    a.start();
    await settle();
    change(store);
    const writes = store.writes.length;
    await advance(clock, 1000);
    expect(a.elector.isLeader()).toBe(false);
    expect(a.events).toEqual([
      { event: "started", at: 0 },
      { event: "stopped", at: 1000 },
    ]);
    expect(store.writes).toHaveLength(writes);
    expect(a.lines.filter((l) => l.message === "leadership lost")).toEqual([expect.objectContaining({ reason })]);
    await settle();
    expect(a.done).toBe(true);
  });

  it("a 409 on renewal (the Lease changed but is still ours) is retried, leadership kept", async () => {
    const a = harness(store, clock, "a");
    a.start();
    await settle();
    let bumped = false;
    store.fault = (op) => {
      if (op === "replace" && !bumped) {
        bumped = true;
        store.set(store.lease!.spec); // e.g. a label edit: new resourceVersion
      }
      return undefined;
    };
    await advance(clock, 1000);
    expect(bumped).toBe(true);
    expect(store.lease?.spec?.renewTime).toBe(micro(0));
    await advance(clock, 1000);
    expect(store.lease?.spec?.renewTime).toBe(micro(2000));
    expect(a.elector.isLeader()).toBe(true);
    expect(a.events.map((e) => e.event)).toEqual(["started"]);
    await a.elector.release();
  });

  it("release() hands over: empty holder, 1 s duration, no onStoppedLeading; a waiting candidate takes it on its next attempt", async () => {
    const a = harness(store, clock, "a");
    a.start();
    await settle();
    const b = harness(store, clock, "b");
    await advance(clock, 500);
    b.start(); // attempts at 500, 1500, 2500...
    await settle();
    await advance(clock, 1000);
    await a.elector.release();
    expect(a.elector.isLeader()).toBe(false);
    expect(a.done).toBe(true);
    expect(a.events.map((e) => e.event)).toEqual(["started"]);
    expect(store.lease?.spec).toMatchObject({ holderIdentity: "", leaseDurationSeconds: 1, leaseTransitions: 0, renewTime: micro(1500) });
    expect(a.lines.filter((l) => l.message === "released leadership")).toEqual([expect.objectContaining({ level: "info", identity: "a", lease: "l" })]);
    await advance(clock, 999);
    expect(b.elector.isLeader()).toBe(false);
    await advance(clock, 1);
    expect(b.elector.isLeader()).toBe(true);
    expect(b.events).toEqual([{ event: "started", at: 2500 }]);
    expect(store.lease?.spec).toMatchObject({ holderIdentity: "b", leaseTransitions: 1 });
    await b.elector.release();
    expect(clock.pendingTimers()).toBe(0);
  });

  it("release() while a renewal is in flight waits for it and releases with the new resourceVersion", async () => {
    const a = harness(store, clock, "a");
    a.start();
    await settle();
    let open!: () => void;
    store.gate = new Promise((resolve) => (open = resolve));
    await advance(clock, 1000); // the renewal has read nothing yet
    const released = a.elector.release();
    open();
    await released;
    expect(store.lease?.spec?.holderIdentity).toBe("");
    expect(store.writes.map((w) => w.holder)).toEqual(["a", "a", ""]);
  });

  it("release() of a non-leader or before run() writes nothing; stop() leaves the Lease to expire", async () => {
    store.set({ holderIdentity: "b", renewTime: micro(0) as never, leaseDurationSeconds: 4 });
    const a = harness(store, clock, "a");
    a.start();
    await settle();
    await a.elector.release();
    expect(a.done).toBe(true);
    const idle = harness(store, clock, "c");
    await idle.elector.release();
    await expect(idle.elector.run()).resolves.toBeUndefined();

    const fresh = new FakeLeases();
    const d = harness(fresh, clock, "d");
    d.start();
    await settle();
    expect(d.elector.isLeader()).toBe(true);
    await d.elector.stop();
    expect(d.elector.isLeader()).toBe(false);
    expect(fresh.lease?.spec?.holderIdentity).toBe("d");
    expect(fresh.writes).toHaveLength(1);
    expect(d.events.map((e) => e.event)).toEqual(["started"]);
    expect(clock.pendingTimers()).toBe(0);
  });

  it("run() twice is refused; a rejecting onStartedLeading is logged and leadership kept", async () => {
    const lines: LogLine[] = [];
    const log = { log: (level: string, message: string, meta: object) => lines.push({ level, message, ...meta }) } as unknown as Logger;
    const e = new LeaderElector({
      kc: new KubeConfig(),
      namespace: "ns",
      name: "l",
      identity: "a",
      clock,
      log,
      client: store,
      onStartedLeading: async () => {
        throw new Error("informers failed");
      },
      onStoppedLeading: () => {},
    });
    const run = e.run();
    await expect(e.run()).rejects.toThrow(/already called/);
    await settle();
    expect(e.isLeader()).toBe(true);
    expect(lines).toContainEqual(expect.objectContaining({ level: "error", message: "onStartedLeading failed", error: "informers failed" }));
    await e.release();
    await run;
  });

  it("unexpected acquire errors are logged once per distinct message", async () => {
    store.fault = () => new ApiError(403);
    const a = harness(store, clock, "a");
    a.start();
    await advance(clock, 5000);
    expect(a.lines.filter((l) => l.message === "failed to acquire lease, will retry")).toHaveLength(1);
    store.fault = undefined;
    await advance(clock, 1000);
    expect(a.elector.isLeader()).toBe(true);
    await a.elector.release();
  });
});
