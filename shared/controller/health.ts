// The rules behind /healthz and /readyz, as pure functions of what the manager knows and the time,
// so each rule is tested exactly with a fake clock.
//
// Liveness (/healthz) fails only for what a restart of the process can cure, and only after
// --stall-threshold, so that a slow moment is never mistaken for a dead one:
//   - an informer has had no working LIST/WATCH for the threshold (it restarts forever, so "dead"
//     means "its restarts are not working"; see informer.ts);
//   - a controller's queue has owed work for the threshold and no reconcile has ended in success,
//     requeue or a terminal error meanwhile (every reconcile fails or hangs);
//   - the Lease was lost and the process is still running (it should have exited: a replica that
//     may have missed writes must not go on acting).
// Readiness (/readyz): informers synced (a standby replica has started none and is ready: it only
// waits for the Lease), not after losing the Lease, not while stopping.
import type { ApiFacts } from "./api-health";
import type { ControllerProgress } from "./controller";
import type { SourceHealth } from "./informer";

export const DEFAULT_STALL_THRESHOLD_MS = 10 * 60_000;

/** Where this replica stands in leader election. */
export type Leadership = "no leader election" | "standby" | "leading" | "lost";

export interface InformerFacts extends Partial<SourceHealth> {
  name: string;
  synced: boolean;
}

export interface HealthFacts {
  now: Date;
  stallThresholdMs: number;
  /** True while informers and controllers run (at once, or while holding the Lease). */
  working: boolean;
  stopping: boolean;
  leadership: Leadership;
  /** When the Lease was lost (leadership "lost"). */
  lostLeadershipAt?: Date;
  informers: InformerFacts[];
  controllers: ControllerProgress[];
  /** What the API requests say (when the manager has an API observer): a stalled controller's line
   * says when the API server last answered, so a server that hangs is named as what is happening. */
  api?: Pick<ApiFacts, "lastSuccessAt" | "lastErrorAt" | "lastError">;
}

/** A failed check: its name (e.g. "informer:secrets") and what is wrong, in words. */
export interface Failure {
  check: string;
  detail: string;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)}s`;

/** "; the API server last answered 7.3s ago" (and the error since, if any), or "" without API facts. */
function apiServerNote(now: Date, api: HealthFacts["api"]): string {
  if (!api) return "";
  const answered = api.lastSuccessAt ? `last answered ${seconds(now.getTime() - api.lastSuccessAt.getTime())} ago` : "has not answered yet";
  const errorSince = api.lastErrorAt && (!api.lastSuccessAt || api.lastErrorAt > api.lastSuccessAt)
    ? `, failed ${seconds(now.getTime() - api.lastErrorAt.getTime())} ago: ${api.lastError ?? "unknown"}` : "";
  return `; the API server ${answered}${errorSince}`;
}

/** Since when a controller has owed work without progress; undefined when it owes none. */
export function stalledSince(c: ControllerProgress): Date | undefined {
  if (!c.busySince) return undefined;
  // Progress while busy restarts the count: only a stretch with none at all is a stall.
  return c.lastProgressAt && c.lastProgressAt > c.busySince ? c.lastProgressAt : c.busySince;
}

export function livenessFailures(f: HealthFacts): Failure[] {
  const failures: Failure[] = [];
  const overdue = (since: Date | undefined) => since !== undefined && f.now.getTime() - since.getTime() >= f.stallThresholdMs;
  if (f.working) {
    for (const i of f.informers) {
      if (!overdue(i.failingSince)) continue;
      failures.push({
        check: `informer:${i.name}`,
        detail: `no working list/watch for ${seconds(f.now.getTime() - i.failingSince!.getTime())} ` +
          `(stall threshold ${seconds(f.stallThresholdMs)}, ${i.restarts ?? 0} restarts; last error: ${i.lastError ?? "unknown"})`,
      });
    }
    for (const c of f.controllers) {
      const since = stalledSince(c);
      if (!overdue(since)) continue;
      failures.push({
        check: `controller:${c.name}`,
        detail: `work owed for ${seconds(f.now.getTime() - since!.getTime())} without a reconcile finishing ` +
          `(stall threshold ${seconds(f.stallThresholdMs)}; ${c.depth} waiting, ${c.processing} running, ${c.failing} failing; ` +
          `last progress ${c.lastProgressAt?.toISOString() ?? "never"}${apiServerNote(f.now, f.api)})`,
      });
    }
  }
  if (f.leadership === "lost") {
    failures.push({
      check: "leader-election",
      detail: `the Lease was lost at ${f.lostLeadershipAt?.toISOString() ?? "an unknown time"} and this replica is still running`,
    });
  }
  return failures;
}

export function readinessFailures(f: HealthFacts): Failure[] {
  const failures: Failure[] = [];
  if (f.stopping) failures.push({ check: "manager", detail: "stopping" });
  if (f.leadership === "lost") failures.push({ check: "leader-election", detail: "the Lease was lost" });
  // A standby replica (not working) has started no informer: it is ready, it only waits for the Lease.
  if (f.working) {
    for (const i of f.informers) {
      const failing = i.failingSince && i.lastError ? `: ${i.lastError}` : "";
      if (!i.synced) failures.push({ check: `informer:${i.name}`, detail: `informer ${i.name} has not synced${failing}` });
      // RBAC taken away does not heal by waiting: unready at once (with the reason), while the cache
      // is still served. Other errors (the API server away) keep readiness: the stall rule handles them.
      else if (failing && FORBIDDEN.test(i.lastError!)) failures.push({ check: `informer:${i.name}`, detail: `informer ${i.name} is refused${failing}` });
    }
  }
  return failures;
}

const FORBIDDEN = /^403\b|\bforbidden\b/i;
