// A work queue keyed "namespace/name", like client-go's: a key is never processed by two workers
// at once, adds of a queued key collapse into one, a key added while it is being processed runs
// again afterwards, and delayed adds keep only the earliest deadline per key.
//
// It also knows since when it owes work (busySince), for the stall rule of /healthz: a key waiting,
// being processed, or failing (retried with backoff) is owed; a key merely scheduled for later by a
// successful reconcile (requeueAfter) is not.
import { backoffDelay, BackoffOptions } from "./backoff";
import { Cancel, Clock } from "./clock";

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly processing = new Set<string>();
  /** Keys added while being processed: re-queued when done(). */
  private readonly dirty = new Set<string>();
  private readonly delayed = new Map<string, { at: number; cancel: Cancel }>();
  private readonly failures = new Map<string, number>();
  private waiters: ((key: string | undefined) => void)[] = [];
  private shuttingDown = false;
  /** When the queue last went from owing nothing to owing work (ms); undefined while it owes nothing. */
  private busySinceMs: number | undefined;

  constructor(
    private readonly clock: Clock,
    private readonly backoff: BackoffOptions,
  ) {}

  add(key: string): void {
    if (this.shuttingDown) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.noteBusy();
    const waiter = this.waiters.shift();
    if (waiter) {
      this.processing.add(key);
      waiter(key);
      return;
    }
    this.queued.add(key);
    this.queue.push(key);
  }

  /** Adds key after ms; an earlier pending deadline for the same key wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const at = this.clock.now().getTime() + ms;
    const pending = this.delayed.get(key);
    if (pending && pending.at <= at) return;
    pending?.cancel();
    const cancel = this.clock.setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    this.delayed.set(key, { at, cancel });
  }

  /** Adds key after the backoff for its consecutive failures; returns the delay used. */
  addRateLimited(key: string): number {
    const attempt = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, attempt);
    this.noteBusy();
    const delay = backoffDelay(attempt, this.backoff);
    this.addAfter(key, delay);
    return delay;
  }

  /** Clears the failure count of key (after a success). */
  forget(key: string): void {
    this.failures.delete(key);
    this.noteIdleIfSo();
  }

  failureCount(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  /** Next key to process, or undefined once shut down. Callers must call done(key). */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) {
      this.queued.delete(key);
      this.processing.add(key);
      return Promise.resolve(key);
    }
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.delete(key)) this.add(key);
    this.noteIdleIfSo();
  }

  len(): number {
    return this.queue.length;
  }

  /** Keys being processed now. */
  processingCount(): number {
    return this.processing.size;
  }

  /** Keys whose last reconcile failed and that wait for (or run) their retry. */
  failingCount(): number {
    return this.failures.size;
  }

  /** Since when the queue owes work (a key waiting, processing or failing); undefined while it owes none. */
  busySince(): Date | undefined {
    return this.busySinceMs === undefined ? undefined : new Date(this.busySinceMs);
  }

  private noteBusy(): void {
    this.busySinceMs ??= this.clock.now().getTime();
  }

  private noteIdleIfSo(): void {
    if (this.queue.length === 0 && this.processing.size === 0 && this.failures.size === 0) this.busySinceMs = undefined;
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const { cancel } of this.delayed.values()) cancel();
    this.delayed.clear();
    for (const waiter of this.waiters) waiter(undefined);
    this.waiters = [];
  }
}
