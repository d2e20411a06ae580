// A client-node informer that keeps running. client-node relists by itself after a 410 (watch
// expired) but stops for good on any other error (API server restart, network, RBAC); this wrapper
// restarts it after a backoff. It reports "synced" only once a LIST has really succeeded:
// client-node's start() resolves even when the initial list failed, which would otherwise make
// /readyz green over an empty cache.
import { KubeConfig, KubernetesObject, makeInformer, ListPromise } from "@kubernetes/client-node";
import type { Logger } from "winston";
import { backoffDelay, BackoffOptions } from "./backoff";
import { Cancel, Clock } from "./clock";
import { errorMessage } from "./errors";

export type ChangeEvent = "add" | "update" | "delete";
export type ChangeHandler<T> = (obj: T, event: ChangeEvent) => void;

/** What a controller needs from a stream of objects: the manager shares one per resource and selector. */
export interface Source<T> {
  readonly name: string;
  addHandler(handler: ChangeHandler<T>): void;
  start(): Promise<void>;
  stop(): Promise<void>;
  /** True once a LIST succeeded (the cache holds what the server had). */
  hasSynced(): boolean;
  list(): readonly T[];
}

export interface ResilientInformerOptions<T extends KubernetesObject> {
  name: string;
  kc: KubeConfig;
  path: string;
  list: ListPromise<T>;
  labelSelector?: string;
  log: Logger;
  clock: Clock;
  backoff?: BackoffOptions;
}

export class ResilientInformer<T extends KubernetesObject> implements Source<T> {
  readonly name: string;
  private readonly informer;
  private readonly handlers: ChangeHandler<T>[] = [];
  private synced = false;
  /** Set by the wrapped list function: the only proof that the initial LIST worked. */
  private listed = false;
  private stopped = false;
  private failures = 0;
  private cancelRestart: Cancel | undefined;
  readonly restarts = { count: 0 };

  constructor(private readonly o: ResilientInformerOptions<T>) {
    this.name = o.name;
    const list: ListPromise<T> = async () => {
      const result = await o.list();
      this.listed = true;
      return result;
    };
    this.informer = makeInformer<T>(o.kc, o.path, list, o.labelSelector);
    this.informer.on("add", (obj) => this.onEvent(obj, "add"));
    this.informer.on("update", (obj) => this.onEvent(obj, "update"));
    this.informer.on("delete", (obj) => this.onEvent(obj, "delete"));
    this.informer.on("connect", () => {
      this.o.log.debug("informer connected", { informer: o.name });
    });
    this.informer.on("error", (err) => this.onError(err));
  }

  addHandler(handler: ChangeHandler<T>): void {
    this.handlers.push(handler);
  }

  private onEvent(obj: T, event: ChangeEvent): void {
    this.failures = 0;
    for (const handler of this.handlers) handler(obj, event);
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.listed = false;
    await this.informer.start();
    this.markSyncedIfListed();
  }

  /** Like client-go's HasSynced, "synced" stays true once a LIST worked; the restart backoff resets only then. */
  private markSyncedIfListed(): void {
    if (!this.listed || this.stopped) return;
    this.synced = true;
    this.failures = 0;
  }

  private onError(err: unknown): void {
    if (this.stopped) return;
    this.failures += 1;
    const delay = backoffDelay(this.failures, this.o.backoff ?? { baseMs: 500, maxMs: 30_000 });
    this.o.log.warn("informer stopped, restarting", { informer: this.o.name, error: errorMessage(err), restartInMs: delay });
    this.cancelRestart?.();
    this.cancelRestart = this.o.clock.setTimeout(() => {
      if (this.stopped) return;
      this.restarts.count += 1;
      this.listed = false;
      this.informer.start().then(() => this.markSyncedIfListed(), (e) => this.onError(e));
    }, delay);
  }

  hasSynced(): boolean {
    return this.synced;
  }

  list(): readonly T[] {
    return this.informer.list();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelRestart?.();
    await this.informer.stop();
  }
}
