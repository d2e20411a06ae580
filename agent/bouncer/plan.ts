// The pod bouncer's decision, pure: given what one PodBounceDirective's selectors look like now and
// what this cycle has recorded, the one next step. Selectors go in spec order; a selector that waits
// stops the pass (Gloo Mesh's semantics). A group is recorded in status BEFORE it is restarted, and
// restarting acts only on what was recorded (pods still alive, or owners not yet marked for this
// cycle): a crash or a conflict between the two completes the restart, and can never restart a group
// twice in one cycle (the original's endless istiod delete loop).
import type { BounceSelector } from "../../shared/api/types";

export type Strategy = "rollout" | "evict" | "delete";
export const STRATEGIES: readonly Strategy[] = ["rollout", "evict", "delete"];

export interface PodView {
  name: string;
  /** Tells a pod from its same-named replacement (a StatefulSet recreates pods under their names). */
  uid?: string;
  ready: boolean;
  terminating: boolean;
  /** The workload a rollout restart goes through ("Deployment/istiod"); undefined for a bare pod. */
  owner?: string;
}

export interface OwnerView {
  /** "Kind/name". */
  id: string;
  /** The owner's pod template already carries this cycle's restart mark. */
  marked: boolean;
  /** The rollout finished (every replica updated and available). */
  rolledOut: boolean;
}

export type RootSync =
  | { state: "in-sync" }
  | { state: "waiting"; message: string }
  | { state: "error"; message: string };

export interface SelectorView {
  selector: BounceSelector;
  /** Pods matching namespace + labels now. */
  pods: PodView[];
  /** status.podsBounced[i].bouncedPods of THIS cycle; undefined when not yet bounced. */
  bounced?: string[];
  /** The uids of the recorded pods, when known: then a pod counts as recorded by uid, not by name. */
  bouncedUids?: string[];
  /** Undefined when the selector has no rootCertSync. */
  rootSync?: RootSync;
  /** Workloads of the matching and recorded pods (rollout strategy). */
  owners: OwnerView[];
  /** Why the selector's namespace cannot be bounced at all (not one of --pod-namespaces); nothing was read there. */
  refused?: string;
}

export type BounceStep =
  | { step: "done" }
  | { step: "wait"; index: number; message: string }
  | { step: "error"; index: number; message: string }
  /** Write podsBounced[index] = pods, before anything is restarted. */
  | { step: "record"; index: number; pods: string[] }
  /** Restart what was recorded and is not restarted yet: pods to evict or delete, owners to mark. */
  | { step: "restart"; index: number; pods: string[]; owners: string[] };

export function planBounce(selectors: SelectorView[], strategy: Strategy): BounceStep {
  for (const [index, view] of selectors.entries()) {
    const where = describeSelector(view.selector);
    if (view.refused !== undefined) return { step: "error", index, message: `${where}: ${view.refused}` };
    if (view.bounced === undefined) {
      if (view.rootSync?.state === "error") return { step: "error", index, message: `${where}: ${view.rootSync.message}` };
      if (view.rootSync?.state === "waiting") return { step: "wait", index, message: `${where}: ${view.rootSync.message}` };
      const pods = view.pods.filter((p) => !p.terminating).map((p) => p.name).sort();
      return { step: "record", index, pods };
    }
    const uids = view.bouncedUids && new Set(view.bouncedUids);
    const names = new Set(view.bounced);
    const recorded = (p: PodView) => (uids ? uids.has(p.uid ?? "") : names.has(p.name));
    const restart = pendingRestart(view, recorded, strategy);
    if (restart.pods.length > 0 || restart.owners.length > 0) return { step: "restart", index, ...restart };
    const rolling = strategy === "rollout" ? view.owners.filter((o) => !o.rolledOut).map((o) => o.id) : [];
    if (rolling.length > 0) return { step: "wait", index, message: `${where}: waiting for the rollout of ${rolling.join(", ")}` };
    const wanted = view.selector.waitForReplicas ?? 0;
    if (wanted > 0) {
      const fresh = view.pods.filter((p) => p.ready && !p.terminating && !recorded(p)).length;
      if (fresh < wanted) return { step: "wait", index, message: `${where}: ${fresh} of ${wanted} replacement pods Ready` };
    }
  }
  return { step: "done" };
}

/** What of the recorded group has not been restarted yet. */
function pendingRestart(view: SelectorView, recorded: (p: PodView) => boolean, strategy: Strategy): { pods: string[]; owners: string[] } {
  const alive = view.pods.filter((p) => recorded(p) && !p.terminating);
  if (strategy !== "rollout") return { pods: alive.map((p) => p.name).sort(), owners: [] };
  // Pods with a workload are restarted through it (no downtime); bare pods fall back to eviction.
  const owners = view.owners.filter((o) => !o.marked).map((o) => o.id).sort();
  return { pods: alive.filter((p) => !p.owner).map((p) => p.name).sort(), owners };
}

export function describeSelector(s: BounceSelector): string {
  const labels = Object.entries(s.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(",");
  return `pods in ${s.namespace ?? "(no namespace)"}${labels ? ` with ${labels}` : ""}`;
}
