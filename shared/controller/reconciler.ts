// Runs a reconcile function over a WorkQueue with N workers and turns its four outcomes into queue
// actions, like controller-runtime: done, requeue after a delay, retry with backoff (an error),
// and a TerminalError that is logged but not retried.
import type { Logger } from "winston";
import { WorkQueue } from "./workqueue";

export interface Result {
  /** Reconcile again after this many milliseconds (waiting is a requeue, never a sleep). */
  requeueAfterMs?: number;
}

export type ReconcileFn = (key: string) => Promise<Result | void>;

/** An error that retrying cannot fix: logged once, not requeued. */
export class TerminalError extends Error {
  override readonly name = "TerminalError";
}

export interface ReconcileOutcomeObserver {
  (outcome: "success" | "requeue" | "error" | "terminal", durationMs: number): void;
}

export class Reconciler {
  private workers: Promise<void>[] = [];

  constructor(
    private readonly name: string,
    readonly queue: WorkQueue,
    private readonly reconcile: ReconcileFn,
    private readonly log: Logger,
    private readonly observe: ReconcileOutcomeObserver = () => {},
  ) {}

  start(concurrency: number): void {
    for (let i = 0; i < concurrency; i++) this.workers.push(this.work());
  }

  /** Stops taking keys and waits for in-flight reconciles to finish. */
  async stop(): Promise<void> {
    this.queue.shutDown();
    await Promise.all(this.workers);
  }

  private async work(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      const started = Date.now();
      try {
        const result = await this.reconcile(key);
        this.queue.forget(key);
        if (result?.requeueAfterMs !== undefined) {
          this.queue.addAfter(key, result.requeueAfterMs);
          this.observe("requeue", Date.now() - started);
        } else {
          this.observe("success", Date.now() - started);
        }
      } catch (err) {
        if (err instanceof TerminalError) {
          this.queue.forget(key);
          this.log.error("reconcile failed permanently", { controller: this.name, key, error: errorMessage(err) });
          this.observe("terminal", Date.now() - started);
        } else {
          const delayMs = this.queue.addRateLimited(key);
          this.log.warn("reconcile failed, will retry", { controller: this.name, key, error: errorMessage(err), retryInMs: delayMs });
          this.observe("error", Date.now() - started);
        }
      } finally {
        this.queue.done(key);
      }
    }
  }
}

/** A one-line message for logs and status; client-node ApiExceptions carry the server's message in body. */
export function errorMessage(err: unknown): string {
  if (err && typeof err === "object") {
    const e = err as { code?: number; body?: unknown; message?: string };
    if (typeof e.code === "number" && e.body !== undefined) {
      const body = typeof e.body === "string" ? safeParse(e.body) : e.body;
      const message = (body as { message?: string } | undefined)?.message;
      if (message) return `${e.code}: ${message}`;
    }
    if (typeof e.message === "string") return e.message.split("\n")[0];
  }
  return String(err);
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 200) };
  }
}
