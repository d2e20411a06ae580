// A controller: a work queue of "namespace/name" keys and a pool of workers that run one reconciler
// over them, like controller-runtime's. The reconciler holds the domain logic; the controller turns
// its four outcomes into queue actions: done, requeue (now or after a delay), retry with backoff
// (an error), and a TerminalError that is logged but not retried. Each reconcile gets an AbortSignal
// that fires at its deadline, so a hung request can never hold a worker forever.
import { runWithSignal } from "./request-signal";
import type { Logger } from "winston";
import { BackoffOptions } from "./backoff";
import { Clock } from "./clock";
import { errorMessage } from "./errors";
import { WorkQueue } from "./workqueue";

/**
 * What a reconcile asks for next. As in controller-runtime, `requeueAfterMs` of 0 (or less) means
 * "no requeue"; "again at once" has its own explicit form, `requeueNow`.
 */
export type Result = { requeueAfterMs: number } | { requeueNow: true };

export const requeueNow: Result = { requeueNow: true };
export const requeueAfter = (ms: number): Result => ({ requeueAfterMs: ms });

export interface Reconciler {
  /** Brings the object named by key ("namespace/name") one step closer to what it asks for. */
  reconcile(key: string, signal: AbortSignal): Promise<Result | void>;
}

/** An error that retrying cannot fix: logged once, not requeued. */
export class TerminalError extends Error {
  override readonly name = "TerminalError";
}

export type Outcome = "success" | "requeue" | "error" | "terminal" | "timeout";

/** Outcomes that count as progress for the stall rule: the reconcile came to an end it chose. An
 * error (retried) or a timeout is not progress: a controller whose every reconcile fails or hangs
 * is stuck, however busy it looks. */
const PROGRESS: ReadonlySet<Outcome> = new Set(["success", "requeue", "terminal"]);

/** What /healthz and /statusz read from a controller. */
export interface ControllerProgress {
  name: string;
  /** Keys waiting for a worker (the cert_agent_workqueue_depth gauge). */
  depth: number;
  /** Keys being reconciled now. */
  processing: number;
  /** Keys whose last reconcile failed, waiting for their retry. */
  failing: number;
  /** Since when the queue owes work (waiting, processing or failing keys); undefined when it owes none. */
  busySince?: Date;
  /** When a reconcile last ended in success, requeue or a terminal error. */
  lastProgressAt?: Date;
}

export interface ControllerOptions {
  name: string;
  reconciler: Reconciler;
  clock: Clock;
  log: Logger;
  /** Keys reconciled in parallel (never the same key twice at once). */
  concurrency?: number;
  /** Deadline of one reconcile; its signal aborts then and the worker moves on. */
  timeoutMs?: number;
  /** Backoff of keys whose reconcile threw. */
  backoff?: BackoffOptions;
  observe?: (outcome: Outcome, durationMs: number) => void;
}

const DEFAULT_TIMEOUT_MS = 60_000;

export class Controller {
  readonly name: string;
  readonly queue: WorkQueue;
  private workers: Promise<void>[] = [];
  /** Reconciles still running, including those abandoned at their deadline. */
  private readonly inflight = new Map<string, { promise: Promise<unknown>; abort: AbortController }>();
  private started = false;
  private stopping = false;
  private lastProgressAt: Date | undefined;

  constructor(private readonly o: ControllerOptions) {
    this.name = o.name;
    this.queue = new WorkQueue(o.clock, o.backoff ?? { baseMs: 200, maxMs: 60_000 });
  }

  progress(): ControllerProgress {
    return {
      name: this.name,
      depth: this.queue.len(),
      processing: this.queue.processingCount(),
      failing: this.queue.failingCount(),
      busySince: this.queue.busySince(),
      lastProgressAt: this.lastProgressAt,
    };
  }

  /** Adds a key now (e.g. from a watch event); duplicates collapse. */
  enqueue(key: string): void {
    this.queue.add(key);
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    for (let i = 0; i < (this.o.concurrency ?? 1); i++) this.workers.push(this.work());
  }

  /**
   * Stops taking keys and waits for in-flight reconciles; at the deadline their signals abort and the
   * controller stops waiting (a reconcile checks its signal before each write).
   */
  async stop(deadlineMs = 30_000): Promise<void> {
    this.stopping = true;
    this.queue.shutDown();
    const all = Promise.all([...this.workers, ...[...this.inflight.values()].map((f) => f.promise)]);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, deadlineMs);
    });
    await Promise.race([all, deadline]);
    clearTimeout(timer);
    for (const { abort } of this.inflight.values()) abort.abort(new Error(`controller ${this.name} stopped`));
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      // A shut-down queue still hands out the keys it holds: after stop() a worker takes none (it
      // would reconcile past the deadline, perhaps after the Lease was released).
      if (this.stopping) {
        this.queue.done(key);
        return;
      }
      await this.runOne(key);
    }
  }

  private async runOne(key: string): Promise<void> {
    const started = this.o.clock.now().getTime();
    const elapsed = () => this.o.clock.now().getTime() - started;
    const abort = new AbortController();
    const timeoutMs = this.o.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    let timedOut = false;
    // The key stays "processing" until the reconcile really settles, even after its deadline, so no
    // second worker can run the same key while an abandoned one might still write. An abandoned
    // reconcile is retried however it ends: one that saw its aborted signal and returned early did
    // not finish its work.
    // The signal also reaches every API request the reconcile makes (request-signal.ts).
    const promise = runWithSignal(abort.signal, () => this.o.reconciler.reconcile(key, abort.signal)).then(
      (result) => timedOut
        ? this.handleError(key, new Error(`reconcile of ${key} exceeded its deadline`), elapsed(), true)
        : this.handleResult(key, result ?? undefined, elapsed()),
      (err) => this.handleError(key, err, elapsed(), abort.signal.aborted),
    ).finally(() => {
      this.inflight.delete(key);
      this.queue.done(key);
    });
    this.inflight.set(key, { promise, abort });
    let cancelTimer = () => {};
    const deadline = new Promise<"timeout">((resolve) => {
      cancelTimer = this.o.clock.setTimeout(() => resolve("timeout"), timeoutMs);
    });
    const first = await Promise.race([promise, deadline]);
    cancelTimer();
    if (first === "timeout") {
      timedOut = true;
      abort.abort(new Error(`reconcile of ${key} exceeded its deadline of ${timeoutMs} ms`));
      this.o.log.warn("reconcile exceeded its deadline, aborted", { controller: this.name, key, timeoutMs });
      this.observe("timeout", elapsed());
      // The worker moves on now; the key is retried with backoff once the abandoned reconcile settles.
    }
  }

  private observe(outcome: Outcome, ms: number): void {
    if (PROGRESS.has(outcome)) this.lastProgressAt = this.o.clock.now();
    this.o.observe?.(outcome, ms);
  }

  private handleResult(key: string, result: Result | undefined, ms: number): void {
    this.queue.forget(key);
    if (result && "requeueNow" in result) {
      this.queue.addAfter(key, 0);
      this.observe("requeue", ms);
    } else if (result && result.requeueAfterMs > 0) {
      this.queue.addAfter(key, result.requeueAfterMs);
      this.observe("requeue", ms);
    } else {
      this.observe("success", ms);
    }
  }

  private handleError(key: string, err: unknown, ms: number, timedOut: boolean): void {
    if (err instanceof TerminalError) {
      this.queue.forget(key);
      this.o.log.error("reconcile failed permanently", { controller: this.name, key, error: errorMessage(err) });
      this.observe("terminal", ms);
      return;
    }
    const delayMs = this.queue.addRateLimited(key);
    this.o.log.warn("reconcile failed, will retry", { controller: this.name, key, error: errorMessage(err), retryInMs: delayMs });
    if (!timedOut) this.observe("error", ms);
  }
}
