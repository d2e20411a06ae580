// Unit tests of the Controller (worker pool over a WorkQueue): what each reconcile outcome does to
// the queue, the per-reconcile deadline, and stop(). Time is a FakeClock; only stop()'s own
// deadline runs on Node's timers, which the stop tests fake with Jest.
import { currentSignal } from "./request-signal";
import { PassThrough } from "node:stream";
import { FakeClock } from "./clock";
import { Controller, ControllerOptions, Outcome, requeueAfter, requeueNow, Result, TerminalError } from "./controller";
import { createLogger } from "./logger";

/** Lets every pending promise reaction run (the FakeClock fires timers synchronously). */
async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise(setImmediate);
}

/** A promise settled from outside. */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

type ReconcileFn = (key: string, signal: AbortSignal, call: number) => Promise<Result | void>;

const BACKOFF = { baseMs: 1000, maxMs: 8000, random: () => 0.999999 }; // delays 1000, 2000, 4000, 8000

/** A controller over `reconcile`, recording calls, outcomes and how many runs of each key overlap. */
function harness(reconcile: ReconcileFn, opts: Partial<ControllerOptions> = {}) {
  const clock = new FakeClock();
  const logs = new PassThrough();
  logs.resume();
  const calls: string[] = [];
  const outcomes: Outcome[] = [];
  const durations: number[] = [];
  const signals = new Map<string, AbortSignal>();
  const running = new Map<string, number>();
  let maxOverlap = 0;
  const controller = new Controller({
    name: "test",
    clock,
    log: createLogger("error", logs),
    backoff: BACKOFF,
    timeoutMs: 10_000,
    observe: (outcome, ms) => {
      outcomes.push(outcome);
      durations.push(ms);
    },
    reconciler: {
      async reconcile(key, signal) {
        calls.push(key);
        signals.set(key, signal);
        const now = (running.get(key) ?? 0) + 1;
        running.set(key, now);
        maxOverlap = Math.max(maxOverlap, now);
        try {
          return await reconcile(key, signal, calls.filter((k) => k === key).length);
        } finally {
          running.set(key, (running.get(key) ?? 1) - 1);
        }
      },
    },
    ...opts,
  });
  const count = (key: string) => calls.filter((k) => k === key).length;
  return { clock, controller, calls, outcomes, durations, signals, count, maxOverlap: () => maxOverlap };
}

type Harness = ReturnType<typeof harness>;
const running: Harness[] = [];
function start(reconcile: ReconcileFn, opts: Partial<ControllerOptions> = {}): Harness {
  const h = harness(reconcile, opts);
  h.controller.start();
  running.push(h);
  return h;
}

afterEach(async () => {
  jest.useRealTimers();
  await Promise.all(running.splice(0).map((h) => h.controller.stop(0)));
});

describe("Controller: reconcile results", () => {
  it.each<[string, Result | void, Outcome]>([
    ["no result", undefined, "success"],
    ["requeueAfterMs: 0 (controller-runtime: no requeue)", { requeueAfterMs: 0 }, "success"],
    ["requeueAfterMs negative", { requeueAfterMs: -5 }, "success"],
  ])("%s: done, never requeued", async (_, result, outcome) => {
    const h = start(async () => result);
    h.controller.enqueue("ns/a");
    await flush();
    h.clock.advance(24 * 3_600_000);
    await flush();
    expect(h.count("ns/a")).toBe(1);
    expect(h.outcomes).toEqual([outcome]);
    expect(h.clock.pendingTimers()).toBe(0);
  });

  it("requeueNow runs the key again at once, without the clock moving", async () => {
    const h = start(async (_key, _signal, call) => (call === 1 ? requeueNow : undefined));
    h.controller.enqueue("ns/a");
    await flush();
    expect(h.count("ns/a")).toBe(2);
    expect(h.outcomes).toEqual(["requeue", "success"]);
  });

  it("requeueAfterMs: N runs the key again after exactly N ms", async () => {
    const h = start(async (_key, _signal, call) => (call === 1 ? requeueAfter(5000) : undefined));
    h.controller.enqueue("ns/a");
    await flush();
    expect(h.count("ns/a")).toBe(1);
    h.clock.advance(4999);
    await flush();
    expect(h.count("ns/a")).toBe(1);
    h.clock.advance(1);
    await flush();
    expect(h.count("ns/a")).toBe(2);
    expect(h.outcomes).toEqual(["requeue", "success"]);
  });

  it("an event during a requeueAfter wait runs the key early; the earliest deadline is kept", async () => {
    const h = start(async () => requeueAfter(5000));
    h.controller.enqueue("ns/a");
    await flush();
    h.clock.advance(1000);
    h.controller.enqueue("ns/a");
    await flush();
    expect(h.count("ns/a")).toBe(2);
    h.clock.advance(4000); // the first wait's deadline, not the second's
    await flush();
    expect(h.count("ns/a")).toBe(3);
  });
});

describe("Controller: outcomes reported to observe", () => {
  it.each<[Outcome, string, ReconcileFn]>([
    ["success", "no result", async () => undefined],
    ["requeue", "requeueAfter(1000)", async () => requeueAfter(1000)],
    ["requeue", "requeueNow", async (_key, _signal, call) => (call === 1 ? requeueNow : undefined)],
    ["error", "a thrown Error", async () => Promise.reject(new Error("boom"))],
    ["terminal", "a thrown TerminalError", async () => Promise.reject(new TerminalError("invalid"))],
    ["timeout", "a reconcile past its deadline", () => new Promise(() => {})],
  ])("%s for %s", async (outcome, _, reconcile) => {
    const h = start(reconcile, { timeoutMs: 10_000 });
    h.controller.enqueue("ns/a");
    await flush();
    h.clock.advance(10_000);
    await flush();
    expect(h.outcomes[0]).toBe(outcome);
    // durations come from the injected clock
    expect(h.durations[0]).toBe(outcome === "timeout" ? 10_000 : 0);
  });
});

describe("Controller: errors", () => {
  it("a thrown error is retried with the queue's exponential backoff; success resets it", async () => {
    const h = start(async (_key, _signal, call) => {
      if (call <= 3) throw new Error(`attempt ${call} failed`);
    });
    h.controller.enqueue("ns/a");
    await flush();
    // [advance by, runs so far]: retries after 1000, then 2000, then 4000 ms
    for (const [ms, runs] of [[999, 1], [1, 2], [1999, 2], [1, 3], [3999, 3], [1, 4]]) {
      h.clock.advance(ms);
      await flush();
      expect(h.count("ns/a")).toBe(runs);
    }
    expect(h.outcomes).toEqual(["error", "error", "error", "success"]);
    expect(h.controller.queue.failureCount("ns/a")).toBe(0);
    expect(h.clock.pendingTimers()).toBe(0);
  });

  it("a TerminalError is not retried", async () => {
    const h = start(async () => {
      throw new TerminalError("spec is invalid");
    });
    h.controller.enqueue("ns/a");
    await flush();
    h.clock.advance(24 * 3_600_000);
    await flush();
    expect(h.count("ns/a")).toBe(1);
    expect(h.outcomes).toEqual(["terminal"]);
    expect(h.clock.pendingTimers()).toBe(0);
  });

  it("errors of one key do not delay another", async () => {
    const h = start(async (key) => {
      if (key === "ns/bad") throw new Error("boom");
    });
    h.controller.enqueue("ns/bad");
    h.controller.enqueue("ns/good");
    await flush();
    expect(h.calls).toEqual(["ns/bad", "ns/good"]);
  });
});

describe("Controller: the reconcile deadline", () => {
  /** A reconcile of ns/hung that settles only when the test says so (it ignores its signal). */
  function hungOnce(settle: "reject" | "resolve") {
    const hung = deferred<Result | void>();
    const h = start(async (key, _signal, call) => (key === "ns/hung" && call === 1 ? hung.promise : undefined), {
      concurrency: 1,
      timeoutMs: 10_000,
    });
    const release = () => (settle === "reject" ? hung.reject(new Error("aborted by signal")) : hung.resolve(undefined));
    return { h, release };
  }

  it("aborts the signal at timeoutMs and the single worker moves on to other keys", async () => {
    const { h, release } = hungOnce("reject");
    h.controller.enqueue("ns/hung");
    h.controller.enqueue("ns/other");
    await flush();
    expect(h.calls).toEqual(["ns/hung"]);
    h.clock.advance(9999);
    await flush();
    expect(h.signals.get("ns/hung")!.aborted).toBe(false);
    expect(h.calls).toEqual(["ns/hung"]);
    h.clock.advance(1);
    await flush();
    expect(h.signals.get("ns/hung")!.aborted).toBe(true);
    expect(h.calls).toEqual(["ns/hung", "ns/other"]);
    expect(h.outcomes).toEqual(["timeout", "success"]);
    release();
    await flush();
  });

  it("the reconcile's signal is the current request signal throughout it, across awaits (request-signal.ts)", async () => {
    const seen: (AbortSignal | undefined)[] = [];
    const h = start(async (_key, signal) => {
      seen.push(currentSignal());
      await flush();
      seen.push(currentSignal());
      expect(seen).toEqual([signal, signal]);
    }, { concurrency: 1, timeoutMs: 10_000 });
    h.controller.enqueue("ns/a");
    await flush();
    await flush();
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBeInstanceOf(AbortSignal);
    expect(h.outcomes).toEqual(["success"]);
    expect(currentSignal()).toBeUndefined();
  });

  it("never runs the same key twice at once: it stays locked until the hung reconcile settles", async () => {
    const { h, release } = hungOnce("reject");
    h.controller.enqueue("ns/hung");
    await flush();
    h.clock.advance(10_000);
    await flush();
    h.controller.enqueue("ns/hung"); // an event while the abandoned reconcile still runs
    h.clock.advance(60_000);
    await flush();
    expect(h.count("ns/hung")).toBe(1);
    release();
    await flush();
    expect(h.count("ns/hung")).toBe(2); // the event is honoured once the key is free
    expect(h.maxOverlap()).toBe(1);
  });

  it.each<["reject" | "resolve"]>([["reject"], ["resolve"]])(
    "an abandoned reconcile that finally settles (%s) is retried with backoff, counted once as a timeout",
    async (settle) => {
      const { h, release } = hungOnce(settle);
      h.controller.enqueue("ns/hung");
      await flush();
      h.clock.advance(10_000);
      await flush();
      release();
      await flush();
      expect(h.count("ns/hung")).toBe(1);
      h.clock.advance(999);
      await flush();
      expect(h.count("ns/hung")).toBe(1);
      h.clock.advance(1);
      await flush();
      expect(h.count("ns/hung")).toBe(2);
      expect(h.outcomes).toEqual(["timeout", "success"]);
      expect(h.maxOverlap()).toBe(1);
    },
  );

  it("a reconcile that settles in time leaves no deadline timer behind", async () => {
    const h = start(async () => undefined, { timeoutMs: 10_000 });
    h.controller.enqueue("ns/a");
    await flush();
    expect(h.clock.pendingTimers()).toBe(0);
    expect(h.signals.get("ns/a")!.aborted).toBe(false);
  });

  it("with concurrency 2 two keys run in parallel", async () => {
    const gate = deferred();
    const h = start(() => gate.promise, { concurrency: 2 });
    h.controller.enqueue("ns/a");
    h.controller.enqueue("ns/b");
    h.controller.enqueue("ns/c");
    await flush();
    expect(h.calls).toEqual(["ns/a", "ns/b"]);
    gate.resolve();
    await flush();
    expect(h.calls).toEqual(["ns/a", "ns/b", "ns/c"]);
  });
});

describe("Controller.stop", () => {
  beforeEach(() => {
    // stop()'s deadline is a Node timer (it must end even on a stopped fake clock); fake it here.
    jest.useFakeTimers({ doNotFake: ["setImmediate", "nextTick", "queueMicrotask"] });
  });

  it("waits for in-flight reconciles, without aborting those that finish in time", async () => {
    const gate = deferred();
    const h = start((key) => (key === "ns/a" ? gate.promise : Promise.resolve()));
    h.controller.enqueue("ns/a");
    await flush();
    let stopped = false;
    const stopping = h.controller.stop(30_000).then(() => (stopped = true));
    jest.advanceTimersByTime(29_999);
    await flush();
    expect(stopped).toBe(false);
    gate.resolve();
    await stopping;
    expect(h.signals.get("ns/a")!.aborted).toBe(false);
  });

  it("aborts in-flight signals at the deadline and returns even if a reconcile never settles", async () => {
    const h = start(() => new Promise<void>(() => {}));
    h.controller.enqueue("ns/a");
    await flush();
    let stopped = false;
    const stopping = h.controller.stop(5000).then(() => (stopped = true));
    jest.advanceTimersByTime(4999);
    await flush();
    expect(stopped).toBe(false);
    expect(h.signals.get("ns/a")!.aborted).toBe(false);
    jest.advanceTimersByTime(1);
    await stopping;
    expect(h.signals.get("ns/a")!.aborted).toBe(true);
    expect(jest.getTimerCount()).toBe(0);
  });

  it("takes no new keys once stopping: queued keys and later events are not reconciled", async () => {
    const gate = deferred();
    const h = start((key) => (key === "ns/a" ? gate.promise : Promise.resolve()), { concurrency: 1 });
    h.controller.enqueue("ns/a");
    h.controller.enqueue("ns/queued");
    await flush();
    const stopping = h.controller.stop(30_000);
    h.controller.enqueue("ns/late");
    gate.resolve();
    await stopping;
    await flush();
    expect(h.calls).toEqual(["ns/a"]);
  });

  it("after the deadline, the worker freed by an aborted reconcile takes no queued key", async () => {
    const h = start((key, signal) =>
      key === "ns/a"
        ? new Promise<void>((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)))
        : Promise.resolve(),
    { concurrency: 1 });
    h.controller.enqueue("ns/a");
    h.controller.enqueue("ns/queued");
    await flush();
    const stopping = h.controller.stop(1000);
    jest.advanceTimersByTime(1000);
    await stopping;
    await flush();
    expect(h.calls).toEqual(["ns/a"]);
    expect(h.clock.pendingTimers()).toBe(0);
  });
});
