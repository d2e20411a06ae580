// The /statusz document: the facts behind /healthz and /readyz and what the API server's answers
// say, in one JSON object. Times are RFC 3339 strings, or null for "never"/"unknown", so every
// field is always present and a script need not guess whether a missing one means never or absent.
import type { ApiFacts } from "./api-health";
import { Failure, HealthFacts, Leadership, stalledSince } from "./health";

export interface ControllerStatus {
  name: string;
  /** Keys waiting for a worker (cert_agent_workqueue_depth). */
  queueDepth: number;
  processing: number;
  /** Keys whose last reconcile failed, waiting for their retry. */
  failing: number;
  /** Since when the queue has owed work; null when it owes none. */
  busySince: string | null;
  /** When a reconcile last ended in success, requeue or a terminal error; null: never. */
  lastProgressTime: string | null;
  /** Since when it has owed work with no reconcile finishing (what the stall rule measures against
   * the threshold); null when it owes none. */
  noProgressSince: string | null;
}

export interface InformerStatus {
  name: string;
  synced: boolean;
  /** Since when it has had no working list/watch; null while it works. */
  failingSince: string | null;
  lastError: string | null;
  restarts: number;
}

export interface ApiStatus {
  lastSuccessTime: string | null;
  lastErrorTime: string | null;
  lastError: string | null;
  /** Our clock minus the API server's, from the Date header (positive: ours is ahead); null: not measured yet. */
  clockSkewSeconds: number | null;
  clockSkewMeasuredTime: string | null;
  clockSkewWarningSeconds: number;
  clockSkewExceeded: boolean;
}

export interface ManagerStatus {
  time: string;
  /** This replica's name (the Lease holder identity when leader election is on); null when not given. */
  identity: string | null;
  leadership: Leadership;
  lostLeadershipTime: string | null;
  /** Informers and controllers run (always without leader election; while leading with it). */
  working: boolean;
  healthy: boolean;
  /** The failing /healthz checks. */
  healthFailures: Failure[];
  ready: boolean;
  /** The failing /readyz checks. */
  readyFailures: Failure[];
  stallThresholdSeconds: number;
  controllers: ControllerStatus[];
  informers: InformerStatus[];
  /** null when the manager was built without an API observer. */
  api: ApiStatus | null;
}

const iso = (d: Date | undefined): string | null => d?.toISOString() ?? null;

export function managerStatus(o: { facts: HealthFacts; identity?: string; api?: ApiFacts; liveness: Failure[]; readiness: Failure[] }): ManagerStatus {
  const { facts, api } = o;
  const stallThreshold = facts.stallThresholdMs;
  return {
    time: facts.now.toISOString(),
    identity: o.identity ?? null,
    leadership: facts.leadership,
    lostLeadershipTime: iso(facts.lostLeadershipAt),
    working: facts.working,
    healthy: o.liveness.length === 0,
    healthFailures: o.liveness,
    ready: o.readiness.length === 0,
    readyFailures: o.readiness,
    stallThresholdSeconds: stallThreshold / 1000,
    controllers: facts.controllers.map((c) => ({
      name: c.name,
      queueDepth: c.depth,
      processing: c.processing,
      failing: c.failing,
      busySince: iso(c.busySince),
      lastProgressTime: iso(c.lastProgressAt),
      noProgressSince: iso(stalledSince(c)),
    })),
    informers: facts.informers.map((i) => ({
      name: i.name,
      synced: i.synced,
      failingSince: iso(i.failingSince),
      lastError: i.lastError ?? null,
      restarts: i.restarts ?? 0,
    })),
    api: api
      ? {
          lastSuccessTime: iso(api.lastSuccessAt),
          lastErrorTime: iso(api.lastErrorAt),
          lastError: api.lastError ?? null,
          clockSkewSeconds: api.clockSkewMs === undefined ? null : api.clockSkewMs / 1000,
          clockSkewMeasuredTime: iso(api.clockSkewMeasuredAt),
          clockSkewWarningSeconds: api.clockSkewWarningMs / 1000,
          clockSkewExceeded: api.clockSkewExceeded,
        }
      : null,
  };
}
