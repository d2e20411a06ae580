// The pod bouncer, its own reconciler keyed by PodBounceDirective: gather (the selectors' pods,
// root sync and workloads), plan (plan.ts, pure), act (record, restart, report). It works only on a
// cycle the IssuedCertificate reconciler requested (cycle.ts), after the target secret was verified
// and written; waiting is a requeue, woken by Pods and ConfigMaps.
import type { Logger } from "winston";
import { API_VERSION, ISSUED_CERTIFICATE, IssuedCertificate, PodBounceDirective } from "../../shared/api/types";
import { Clock } from "../../shared/controller/clock";
import { Reconciler, requeueAfter, requeueNow, Result } from "../../shared/controller/controller";
import { errorMessage } from "../../shared/controller/errors";
import { EventRecorder } from "../../shared/controller/events";
import { KubeObject, ObjectClient } from "../../shared/kube/api";
import { isConflict } from "../../shared/kube/errors";
import type { Secret } from "../../shared/kube/secrets";
import { BOUNCE_PROGRESS_ANNOTATION, BOUNCED_UIDS_ANNOTATION, Reason, RESTARTED_FOR_ANNOTATION } from "../constants";
import { BounceOutcome, ownerOfCycle, readBounceProgress, readBounceRequest } from "./cycle";
import { BounceStep, describeSelector, OwnerView, planBounce, PodView, RootSync, SelectorView, Strategy } from "./plan";

/** The parts of a Pod the bouncer reads. */
export interface Pod extends KubeObject {
  status?: { conditions?: { type: string; status: string }[] };
}

/** The parts of a Deployment, StatefulSet, DaemonSet or ReplicaSet the bouncer reads and writes. */
export interface Workload extends KubeObject {
  spec?: { replicas?: number; template?: { metadata?: { annotations?: Record<string, string> } } };
  status?: {
    observedGeneration?: number;
    replicas?: number;
    updatedReplicas?: number;
    availableReplicas?: number;
    readyReplicas?: number;
    currentRevision?: string;
    updateRevision?: string;
    desiredNumberScheduled?: number;
    updatedNumberScheduled?: number;
    numberAvailable?: number;
  };
}

export interface ConfigMap extends KubeObject {
  data?: Record<string, string>;
}

/** Eviction goes through a subresource the ObjectClient interface does not have. */
export interface PodEvictor {
  /** "blocked" when a PodDisruptionBudget refuses it now (429). */
  evict(namespace: string, name: string): Promise<"evicted" | "blocked" | "gone">;
}

export interface PodBouncerOptions {
  directives: ObjectClient<PodBounceDirective>;
  issuedCertificates: ObjectClient<IssuedCertificate>;
  pods: ObjectClient<Pod>;
  configMaps: ObjectClient<ConfigMap>;
  secrets: ObjectClient<Secret>;
  workloads: Record<"ReplicaSet" | "Deployment" | "StatefulSet" | "DaemonSet", ObjectClient<Workload>>;
  evictor: PodEvictor;
  strategy: Strategy;
  clock: Clock;
  log: Logger;
  events: EventRecorder;
  /** How often a waiting bounce looks again without an event. */
  pollMs: number;
  /** --pod-namespaces: the only namespaces whose pods (and rootCertSync ConfigMaps) are watched and restarted; undefined = all. */
  podNamespaces?: readonly string[];
}

const ROLLOUT_KINDS = new Set(["Deployment", "StatefulSet", "DaemonSet"]);

export class PodBouncerReconciler implements Reconciler {
  constructor(private readonly d: PodBouncerOptions) {}

  async reconcile(key: string, signal: AbortSignal): Promise<Result | void> {
    const [namespace, name] = key.split("/");
    const directive = await this.d.directives.get(namespace, name);
    const request = readBounceRequest(directive);
    if (!directive || !request) return; // nothing asked of us
    const progress = readBounceProgress(directive);
    try {
      if (progress?.cycle !== request.cycle) {
        // A new cycle: forget what the last one restarted (the original never did, so a rotation
        // restarted nothing). Status first: a crash before the annotation only resets again.
        signal.throwIfAborted();
        const reset = await this.d.directives.replaceStatus({ ...directive, status: { podsBounced: [] } });
        await this.writeProgress(reset, request.cycle, "waiting", "starting", signal);
        return requeueNow;
      }
      if (progress.outcome === "done") return;
      const views = await this.observe(directive, request.cycle);
      const step = planBounce(views, this.d.strategy);
      this.d.log.debug("bounce step", { namespace, name, cycle: request.cycle, step: step.step });
      return await this.act(directive, request.cycle, step, views, signal);
    } catch (err) {
      if (isConflict(err)) return requeueAfter(200);
      throw err;
    }
  }

  // ---- gather ---------------------------------------------------------------------------------

  private async observe(directive: PodBounceDirective, cycle: string): Promise<SelectorView[]> {
    const bounced = directive.status?.podsBounced ?? [];
    const uidGroups = readBouncedUids(directive, cycle);
    const views: SelectorView[] = [];
    for (const [i, selector] of (directive.spec?.podsToBounce ?? []).entries()) {
      const ns = selector.namespace ?? directive.metadata.namespace!;
      if (this.d.podNamespaces && !this.d.podNamespaces.includes(ns)) {
        views.push({ selector: { ...selector, namespace: ns }, pods: [], owners: [],
          refused: `namespace ${ns} is not one of --pod-namespaces, where this agent may restart pods; add it (chart: rbac.podNamespaces)` });
        continue;
      }
      const labels = Object.entries(selector.labels ?? {}).map(([k, v]) => `${k}=${v}`).join(",");
      const pods = (await this.d.pods.list(ns, labels || undefined)).items;
      const recorded = bounced[i]?.bouncedPods;
      views.push({
        selector: { ...selector, namespace: ns },
        pods: await Promise.all(pods.map((p) => this.podView(p))),
        ...(bounced.length > i ? { bounced: recorded ?? [] } : {}),
        ...(bounced.length > i && uidGroups[i] ? { bouncedUids: uidGroups[i] } : {}),
        ...(selector.rootCertSync ? { rootSync: await this.rootSync(selector.rootCertSync) } : {}),
        owners: this.d.strategy === "rollout" ? await this.ownerViews(pods, cycle) : [],
      });
    }
    return views;
  }

  private async podView(pod: Pod): Promise<PodView> {
    return {
      name: pod.metadata.name!,
      uid: pod.metadata.uid,
      ready: pod.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false,
      terminating: Boolean(pod.metadata.deletionTimestamp),
      owner: this.d.strategy === "rollout" ? (await this.workloadOf(pod))?.id : undefined,
    };
  }

  /** The workload a rollout restart goes through: a Deployment (via its ReplicaSet), StatefulSet or DaemonSet. */
  private async workloadOf(pod: Pod): Promise<{ id: string; kind: keyof PodBouncerOptions["workloads"]; object: Workload } | undefined> {
    const ns = pod.metadata.namespace!;
    let ref = pod.metadata.ownerReferences?.find((r) => r.controller);
    if (ref?.kind === "ReplicaSet") {
      const rs = await this.d.workloads.ReplicaSet.get(ns, ref.name);
      ref = rs?.metadata.ownerReferences?.find((r) => r.controller);
    }
    if (!ref || !ROLLOUT_KINDS.has(ref.kind)) return undefined;
    const kind = ref.kind as "Deployment" | "StatefulSet" | "DaemonSet";
    const object = await this.d.workloads[kind].get(ns, ref.name);
    return object ? { id: `${kind}/${ref.name}`, kind, object } : undefined;
  }

  private async ownerViews(pods: Pod[], cycle: string): Promise<OwnerView[]> {
    const seen = new Map<string, OwnerView>();
    for (const pod of pods) {
      const owner = await this.workloadOf(pod);
      if (!owner || seen.has(owner.id)) continue;
      seen.set(owner.id, {
        id: owner.id,
        marked: owner.object.spec?.template?.metadata?.annotations?.[RESTARTED_FOR_ANNOTATION] === cycle,
        rolledOut: rolledOut(owner.kind, owner.object),
      });
    }
    return [...seen.values()];
  }

  private async rootSync(sync: NonNullable<SelectorView["selector"]["rootCertSync"]>): Promise<RootSync> {
    const secretRef = sync.secretRef;
    const mapRef = sync.configMapRef;
    if (!secretRef?.name || !mapRef?.name || !sync.secretKey || !sync.configMapKey) {
      return { state: "error", message: "rootCertSync needs secretRef, secretKey, configMapRef and configMapKey" };
    }
    const secret = await this.d.secrets.get(secretRef.namespace, secretRef.name);
    const root = secret?.data?.[sync.secretKey];
    if (root === undefined) return { state: "error", message: `secret ${secretRef.namespace}/${secretRef.name} has no key ${sync.secretKey}` };
    const map = await this.d.configMaps.get(mapRef.namespace, mapRef.name);
    if (!map) return { state: "waiting", message: `waiting for ConfigMap ${mapRef.namespace}/${mapRef.name}` };
    const published = map.data?.[sync.configMapKey];
    if (published === undefined) {
      // istiod always writes its key: a ConfigMap without it most likely names the wrong key. Say
      // which keys it has; this is still a wait (the key may come), which --bounce-timeout ends.
      const keys = Object.keys(map.data ?? {}).sort().join(", ") || "none";
      return { state: "waiting", message: `waiting for key ${sync.configMapKey} in ConfigMap ${mapRef.namespace}/${mapRef.name} (its keys: ${keys})` };
    }
    // Exact bytes, as Gloo Mesh compares them: the root istiod publishes must be the one we wrote.
    if (published !== Buffer.from(root, "base64").toString("utf8")) {
      return { state: "waiting", message: `waiting for ConfigMap ${mapRef.namespace}/${mapRef.name} key ${sync.configMapKey} to hold the new root` };
    }
    return { state: "in-sync" };
  }

  // ---- act ------------------------------------------------------------------------------------

  private async act(directive: PodBounceDirective, cycle: string, step: BounceStep, views: SelectorView[], signal: AbortSignal): Promise<Result | void> {
    switch (step.step) {
      case "done":
        await this.writeProgress(directive, cycle, "done", "every selector bounced", signal);
        return;
      case "error": {
        // Once per message, like a wait: every Pod event in the selectors' namespaces wakes us.
        const said = readBounceProgress(directive);
        if (said?.outcome !== "error" || said.message !== step.message) {
          await this.writeProgress(directive, cycle, "error", step.message, signal);
          await this.report(cycle, "Warning", Reason.BounceFailed, step.message);
        }
        return;
      }
      case "wait":
        if (readBounceProgress(directive)?.message !== step.message) {
          await this.writeProgress(directive, cycle, "waiting", step.message, signal);
          await this.report(cycle, "Normal", Reason.BounceWaiting, step.message);
        }
        return requeueAfter(this.d.pollMs);
      case "record": {
        // The uids first (an annotation), then Gloo Mesh's status (names): a crash between them
        // only records the same group again.
        const recorded = views[step.index].pods.filter((p) => step.pods.includes(p.name) && !p.terminating);
        const groups = readBouncedUids(directive, cycle).slice(0, step.index);
        groups[step.index] = recorded.map((p) => p.uid ?? "");
        signal.throwIfAborted();
        const patched = await this.d.directives.patchAnnotations(directive.metadata.namespace!, directive.metadata.name!,
          { [BOUNCED_UIDS_ANNOTATION]: JSON.stringify({ cycle, groups }) }, directive.metadata.resourceVersion);
        const podsBounced = [...(directive.status?.podsBounced ?? []).slice(0, step.index)];
        podsBounced[step.index] = { bouncedPods: step.pods };
        await this.d.directives.replaceStatus({ ...patched, status: { podsBounced } });
        // Not an error (Gloo Mesh goes on too), but most likely a label typo: say so once.
        if (step.pods.length === 0) await this.report(cycle, "Warning", Reason.NoPodsMatched, `${describeSelector(views[step.index].selector)}: no pod matches; nothing to restart`);
        return requeueNow;
      }
      case "restart":
        return this.restart(directive, cycle, step, views[step.index], signal);
    }
  }

  private async restart(directive: PodBounceDirective, cycle: string, step: Extract<BounceStep, { step: "restart" }>, view: SelectorView, signal: AbortSignal): Promise<Result | void> {
    const ns = view.selector.namespace!;
    const blocked: string[] = [];
    for (const id of step.owners) {
      const [kind, name] = id.split("/") as ["Deployment" | "StatefulSet" | "DaemonSet", string];
      const workload = await this.d.workloads[kind].get(ns, name);
      if (!workload) continue;
      const template = workload.spec?.template ?? {};
      signal.throwIfAborted();
      // kubectl rollout restart's way: a pod-template annotation; the controller replaces pods
      // within the workload's surge and unavailability budget, so a group with spare replicas
      // never goes down. Marked with the cycle, so a second write is a no-op.
      await this.d.workloads[kind].replace({
        ...workload,
        spec: { ...workload.spec, template: { ...template, metadata: { ...template.metadata, annotations: { ...template.metadata?.annotations, [RESTARTED_FOR_ANNOTATION]: cycle } } } },
      });
    }
    for (const pod of step.pods) {
      signal.throwIfAborted();
      if (this.d.strategy === "delete") await this.d.pods.delete(ns, pod);
      else if ((await this.d.evictor.evict(ns, pod)) === "blocked") blocked.push(pod);
    }
    const restarted = [...step.owners, ...step.pods.filter((p) => !blocked.includes(p)).map((p) => `Pod/${p}`)];
    if (restarted.length > 0) {
      await this.report(cycle, "Normal", Reason.PodsRestarted, `${describeSelector(view.selector)}: restarted ${restarted.join(", ")} (${this.d.strategy})`);
    }
    if (blocked.length > 0) {
      const message = `${describeSelector(view.selector)}: eviction of ${blocked.join(", ")} blocked by a PodDisruptionBudget; retrying`;
      // In the progress too: a BounceTimedOut on the IssuedCertificate names the budget, not an older wait.
      if (readBounceProgress(directive)?.message !== message) await this.writeProgress(directive, cycle, "waiting", message, signal);
      await this.report(cycle, "Warning", Reason.BounceWaiting, message);
      return requeueAfter(this.d.pollMs);
    }
    return requeueNow;
  }

  private async writeProgress(directive: PodBounceDirective, cycle: string, outcome: BounceOutcome, message: string, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    await this.d.directives.patchAnnotations(directive.metadata.namespace!, directive.metadata.name!, {
      [BOUNCE_PROGRESS_ANNOTATION]: JSON.stringify({ cycle, outcome, message }),
    });
  }

  /** A log line and an Event on the IssuedCertificate the cycle belongs to. */
  private async report(cycle: string, type: "Normal" | "Warning", reason: string, message: string): Promise<void> {
    const [namespace, name] = ownerOfCycle(cycle).split("/");
    const fields = { namespace, name, cycle, reason, detail: message };
    if (type === "Warning") this.d.log.warn("bounce", fields);
    else this.d.log.info("bounce", fields);
    try {
      const ic = await this.d.issuedCertificates.get(namespace, name);
      if (ic) await this.d.events.record({ ...ic, apiVersion: API_VERSION, kind: ISSUED_CERTIFICATE.kind }, type, reason, message);
    } catch (err) {
      this.d.log.warn("could not report bounce progress", { namespace, name, error: errorMessage(err) });
    }
  }
}

/** The uids recorded per selector for this cycle ([] groups when none or another cycle's). */
function readBouncedUids(directive: PodBounceDirective, cycle: string): (string[] | undefined)[] {
  try {
    const parsed = JSON.parse(directive.metadata.annotations?.[BOUNCED_UIDS_ANNOTATION] ?? "") as { cycle?: string; groups?: unknown };
    if (parsed.cycle !== cycle || !Array.isArray(parsed.groups)) return [];
    return parsed.groups.map((g) => (Array.isArray(g) && g.every((u) => typeof u === "string") ? (g as string[]) : undefined));
  } catch {
    return [];
  }
}

/** kubectl rollout status's test: every replica updated and available, for the latest spec. */
export function rolledOut(kind: string, w: Workload): boolean {
  const s = w.status ?? {};
  if ((s.observedGeneration ?? 0) < (w.metadata.generation ?? 0)) return false;
  if (kind === "DaemonSet") return (s.updatedNumberScheduled ?? 0) >= (s.desiredNumberScheduled ?? 0) && (s.numberAvailable ?? 0) >= (s.desiredNumberScheduled ?? 0);
  const replicas = w.spec?.replicas ?? 1;
  if (kind === "StatefulSet") return (s.updatedReplicas ?? 0) >= replicas && (s.readyReplicas ?? 0) >= replicas && s.currentRevision === s.updateRevision;
  return (s.updatedReplicas ?? 0) >= replicas && (s.availableReplicas ?? 0) >= replicas && (s.replicas ?? 0) <= replicas;
}
