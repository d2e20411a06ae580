// Kubernetes Events for user-visible transitions (`kubectl describe` shows them). Best effort: a
// failed Event is logged, never fails the reconcile. Repeats of the same reason and message on the
// same object are folded into one Event with a count, as client-go's recorder does; when the API
// server has already expired the original (default --event-ttl 1h), the repeat is a new Event.
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

export class KubeEventRecorder implements EventRecorder {
  private readonly api: CoreV1Api;
  private readonly reportingInstance: string;
  /** (object uid, reason, message) -> the Event we created, to bump its count instead of adding more. */
  private readonly recent = new Map<string, { name: string; namespace: string; count: number }>();

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
    const namespace = target.metadata.namespace ?? "default";
    const safeMessage = redactSecrets(message).slice(0, 1024);
    const now = this.clock.now();
    const key = `${target.metadata.uid}/${reason}/${safeMessage}`;
    const previous = this.recent.get(key);
    try {
      if (previous) {
        previous.count += 1;
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
      if (this.recent.size > 1000) this.recent.clear();
      this.recent.set(key, { name: created.metadata?.name ?? "", namespace, count: 1 });
    } catch (err) {
      this.recent.delete(key);
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
