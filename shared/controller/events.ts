// Kubernetes Events for user-visible transitions (`kubectl describe` shows them). Best effort: a
// failed Event is logged, never fails the reconcile. Repeats of the same type, reason and message
// on the same object are folded into one core/v1 Event whose count and lastTimestamp go up, as
// client-go's recorder does (kubectl shows "(x5 over 3m)"; events.k8s.io/v1 shows the same Event
// with deprecatedCount and deprecatedLastTimestamp); when the API server has already expired the
// original (default --event-ttl 1h), the repeat is a new Event. Repeats of one Event are written one
// after the other, so concurrent ones neither create two Events nor write the count out of order.
import { CoreV1Api, CoreV1Event, KubeConfig, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { hostname } from "node:os";
import type { Logger } from "winston";
import { Clock } from "./clock";
import { errorMessage } from "./errors";
import { redactSecrets } from "./logger";
import { isNotFound } from "../kube/errors";

export interface EventTarget {
  apiVersion: string;
  kind: string;
  metadata: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

export type EventType = "Normal" | "Warning";

export interface EventRecorder {
  /** Resolves once written (or given up on, which is logged); never rejects. */
  record(target: EventTarget, type: EventType, reason: string, message: string): Promise<void>;
}

export interface KubeEventRecorderOptions {
  /** This replica, for reportingInstance and source.host. Default: defaultReportingInstance(). */
  reportingInstance?: string;
}

/** The pod name (POD_NAME, from the downward API) or else the host name, which is the pod name in a pod. */
export function defaultReportingInstance(env: NodeJS.ProcessEnv = process.env): string {
  return env.POD_NAME || hostname();
}

/** The API server refuses a reportingInstance longer than 128 characters. */
const REPORTING_INSTANCE_MAX = 128;

/** Events remembered for folding repeats; the least recently recorded is forgotten first. */
export const RECENT_EVENTS_MAX = 1000;

export class KubeEventRecorder implements EventRecorder {
  private readonly api: CoreV1Api;
  private readonly reportingInstance: string;
  /** (object uid, type, reason, message) -> the Event we created, to bump its count instead of adding
   * more. In recording order (a Map keeps insertion order): the first entry is the one to forget. */
  private readonly recent = new Map<string, { name: string; namespace: string; count: number }>();
  /** The write in flight per key: a repeat waits for it, so it finds the Event it must fold into. */
  private readonly pending = new Map<string, Promise<void>>();

  constructor(
    kc: KubeConfig,
    private readonly component: string,
    private readonly clock: Clock,
    private readonly log: Logger,
    options: KubeEventRecorderOptions = {},
  ) {
    this.api = kc.makeApiClient(CoreV1Api);
    this.reportingInstance = (options.reportingInstance || defaultReportingInstance()).slice(0, REPORTING_INSTANCE_MAX);
  }

  async record(target: EventTarget, type: EventType, reason: string, message: string): Promise<void> {
    const safeMessage = redactSecrets(message).slice(0, 1024);
    const key = `${target.metadata.uid}/${type}/${reason}/${safeMessage}`;
    const now = this.clock.now();
    const write = (this.pending.get(key) ?? Promise.resolve()).then(() => this.write(key, now, target, type, reason, safeMessage));
    this.pending.set(key, write);
    try {
      await write;
    } finally {
      if (this.pending.get(key) === write) this.pending.delete(key);
    }
  }

  /**
   * Waits for the Event writes in flight, at most `withinMs` (an API server that does not answer must
   * not hold a shutdown): callers need not await record(), the agent flushes when it stops.
   */
  async flush(withinMs = 5_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => { timer = setTimeout(resolve, withinMs); });
    const all = (async () => {
      while (this.pending.size > 0) await Promise.all(this.pending.values());
    })();
    await Promise.race([all, late]);
    clearTimeout(timer);
  }

  /** Creates the Event, or bumps the count of the one recorded before. Never rejects. */
  private async write(key: string, now: Date, target: EventTarget, type: EventType, reason: string, safeMessage: string): Promise<void> {
    const namespace = target.metadata.namespace ?? "default";
    const previous = this.recent.get(key);
    try {
      if (previous) {
        previous.count += 1;
        // Most recently used last: the oldest entry is the one forgotten when the map is full.
        this.recent.delete(key);
        this.recent.set(key, previous);
        try {
          await this.api.patchNamespacedEvent({
            name: previous.name,
            namespace: previous.namespace,
            body: { count: previous.count, lastTimestamp: now.toISOString() },
          }, setMergePatch());
          return;
        } catch (err) {
          // Expired (or deleted): record the repeat as a new Event, as client-go does.
          if (!isNotFound(err)) throw err;
          this.recent.delete(key);
        }
      }
      const event: CoreV1Event = {
        metadata: { generateName: `${target.metadata.name}.`, namespace },
        involvedObject: {
          apiVersion: target.apiVersion,
          kind: target.kind,
          name: target.metadata.name,
          namespace,
          uid: target.metadata.uid,
          resourceVersion: target.metadata.resourceVersion,
        },
        type,
        reason,
        message: safeMessage,
        source: { component: this.component, host: this.reportingInstance },
        reportingComponent: this.component,
        reportingInstance: this.reportingInstance,
        firstTimestamp: now,
        lastTimestamp: now,
        count: 1,
      };
      const created = await this.api.createNamespacedEvent({ namespace, body: event });
      this.recent.set(key, { name: created.metadata?.name ?? "", namespace, count: 1 });
      if (this.recent.size > RECENT_EVENTS_MAX) this.recent.delete(this.recent.keys().next().value!);
    } catch (err) {
      // A failed PATCH keeps the entry: its count includes this occurrence, which the next repeat writes.
      this.log.warn("could not record event", { reason, namespace, name: target.metadata.name, error: errorMessage(err) });
    }
  }
}

/** client-node 2.x picks the patch content type from a per-call header option. */
function setMergePatch() {
  return setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
}

/** Records in memory, for unit tests. */
export class MemoryEventRecorder implements EventRecorder {
  readonly events: { name?: string; type: EventType; reason: string; message: string }[] = [];
  async record(target: EventTarget, type: EventType, reason: string, message: string): Promise<void> {
    this.events.push({ name: target.metadata.name, type, reason, message });
  }
}
