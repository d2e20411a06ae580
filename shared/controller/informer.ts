// A client-node informer that keeps running. client-node relists by itself after a 410 (watch
// expired) but stops for good on any other error (API server restart, network, RBAC); this wrapper
// restarts it after a backoff, forever: it never gives up. It reports "synced" only once a LIST has
// really succeeded: client-node's start() resolves even when the initial list failed, which would
// otherwise make /readyz green over an empty cache.
//
// Its health, for /healthz: it is "failing" from the first error after a working connection until a
// start attempt ends without an error (the LIST, if one was needed, and the WATCH request both
// answered) or an event arrives. Since restarts never stop, an informer is dead, for the manager,
// when it has been failing for longer than the stall threshold: its restarts are not working.
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
  /** One cached object (undefined when absent); sources without it are searched with list(). */
  get?(namespace: string, name: string): T | undefined;
  /** Whether its LIST/WATCH works (sources without it count as always working). */
  health?(): SourceHealth;
}

export interface SourceHealth {
  /** Since when it has had no working LIST/WATCH; undefined while it works (or has not started). */
  failingSince?: Date;
  /** The last error, kept after recovery for /statusz. */
  lastError?: string;
  /** Restarts after errors so far. */
  restarts: number;
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
  /** Default client-node's makeInformer (tests pass a scripted one). */
  makeInformer?: typeof makeInformer;
  /** Applied to every object listed or watched before it is cached and handed on (SourceSpec.trim). */
  trim?: (obj: T) => void;
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
  private failingSince: Date | undefined;
  private lastError: string | undefined;
  /** Set by onError while a start attempt runs: that attempt did not connect. */
  private attemptFailed = false;

  constructor(private readonly o: ResilientInformerOptions<T>) {
    this.name = o.name;
    const list: ListPromise<T> = async () => {
      const result = await o.list();
      this.listed = true;
      if (o.trim) result.items.forEach(o.trim);
      return result;
    };
    this.informer = (o.makeInformer ?? makeInformer)<T>(o.kc, o.path, list, o.labelSelector);
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
    // Events flow: the watch works.
    this.failures = 0;
    this.failingSince = undefined;
    // client-node caches this very object (the first handler sees it before anyone reads the cache).
    this.o.trim?.(obj);
    for (const handler of this.handlers) handler(obj, event);
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.attempt();
  }

  /**
   * One start of the client-node informer. It reports a failed LIST or WATCH as an "error" event
   * (onError schedules the next attempt) and resolves anyway; it rejects only when it could not even
   * build the request (e.g. credentials that fail to load), which must restart just the same, or the
   * informer would be dead without anyone noticing.
   */
  private async attempt(): Promise<void> {
    this.listed = false;
    this.attemptFailed = false;
    try {
      await this.informer.start();
    } catch (err) {
      this.onError(err);
      return;
    }
    if (this.stopped) return;
    // Like client-go's HasSynced, "synced" stays true once a LIST worked, even if the WATCH then failed.
    if (this.listed) this.synced = true;
    if (!this.attemptFailed) {
      // Connected: the backoff starts over at the next failure.
      this.failures = 0;
      this.failingSince = undefined;
    }
  }

  private onError(err: unknown): void {
    if (this.stopped) return;
    this.attemptFailed = true;
    this.failingSince ??= this.o.clock.now();
    this.lastError = errorMessage(err);
    this.failures += 1;
    const delay = backoffDelay(this.failures, this.o.backoff ?? { baseMs: 500, maxMs: 30_000 });
    this.o.log.warn("informer stopped, restarting", { informer: this.o.name, error: errorMessage(err), restartInMs: delay });
    this.cancelRestart?.();
    this.cancelRestart = this.o.clock.setTimeout(() => {
      if (this.stopped) return;
      this.restarts.count += 1;
      void this.attempt();
    }, delay);
  }

  hasSynced(): boolean {
    return this.synced;
  }

  health(): SourceHealth {
    return { failingSince: this.failingSince, lastError: this.lastError, restarts: this.restarts.count };
  }

  list(): readonly T[] {
    return this.informer.list();
  }

  get(namespace: string, name: string): T | undefined {
    return this.informer.get(name, namespace);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.failingSince = undefined;
    this.cancelRestart?.();
    await this.informer.stop();
  }
}
