// A client-node informer that keeps running. client-node relists by itself after a 410 (watch
// expired) but stops for good on any other error (API server restart, network, RBAC); this wrapper
// restarts it after a backoff and reports whether it has synced at least once (readiness).
import { KubeConfig, KubernetesObject, makeInformer, ListPromise } from "@kubernetes/client-node";
import type { Logger } from "winston";
import { backoffDelay, BackoffOptions } from "./backoff";
import { Cancel, Clock } from "./clock";
import { errorMessage } from "./reconciler";

export interface ResilientInformerOptions<T extends KubernetesObject> {
  name: string;
  kc: KubeConfig;
  path: string;
  list: ListPromise<T>;
  labelSelector?: string;
  /** Called for add, update and delete with the object concerned. */
  onChange: (obj: T, event: "add" | "update" | "delete") => void;
  log: Logger;
  clock: Clock;
  backoff?: BackoffOptions;
}

export class ResilientInformer<T extends KubernetesObject> {
  private readonly informer;
  private synced = false;
  private stopped = false;
  private failures = 0;
  private cancelRestart: Cancel | undefined;
  readonly restarts = { count: 0 };

  constructor(private readonly o: ResilientInformerOptions<T>) {
    this.informer = makeInformer<T>(o.kc, o.path, o.list, o.labelSelector);
    this.informer.on("add", (obj) => this.onEvent(obj, "add"));
    this.informer.on("update", (obj) => this.onEvent(obj, "update"));
    this.informer.on("delete", (obj) => this.onEvent(obj, "delete"));
    this.informer.on("connect", () => {
      this.o.log.debug("informer connected", { informer: o.name });
    });
    this.informer.on("error", (err) => this.onError(err));
  }

  private onEvent(obj: T, event: "add" | "update" | "delete"): void {
    this.failures = 0;
    this.o.onChange(obj, event);
  }

  async start(): Promise<void> {
    this.stopped = false;
    await this.informer.start();
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
      this.informer.start().then(
        () => {
          this.synced = true;
        },
        (e) => this.onError(e),
      );
    }, delay);
  }

  hasSynced(): boolean {
    return this.synced;
  }

  list(namespace?: string): readonly T[] {
    return this.informer.list(namespace);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.informer.get(name, namespace);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.cancelRestart?.();
    await this.informer.stop();
  }
}
