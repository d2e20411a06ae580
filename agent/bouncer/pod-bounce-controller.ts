// The pod-bounce controller: what wakes the bouncer.
//   for      PodBounceDirectives (one namespace with --namespace, else all)
//   watches  Pods (mapped to the directives whose selectors match them: replacements becoming Ready,
//            rollouts progressing) and ConfigMaps (mapped to the directives whose rootCertSync names
//            them: istiod publishing the new root): one informer each per namespace of
//            --pod-namespaces (a Role in each is all the agent needs), else one for all namespaces
import { CoreV1Api, KubeConfig, KubernetesObject } from "@kubernetes/client-node";
import { PodBounceDirective, POD_BOUNCE_DIRECTIVE } from "../../shared/api/types";
import { Manager } from "../../shared/controller/manager";
import { CustomResourceClient } from "../../shared/kube/custom-objects";
import { isNotFound } from "../../shared/kube/errors";
import { GenericClient, keepMetadataOnly } from "../../shared/kube/generic";
import { keyOf } from "../../shared/controller/manager";
import { readBounceRequest } from "./cycle";
import { ConfigMap, Pod, PodBouncerOptions, PodBouncerReconciler, PodEvictor, Workload } from "./pod-bouncer-reconciler";

export const BOUNCER_NAME = "podbouncer";

/** The Eviction API: refused with 429 while a PodDisruptionBudget does not allow it. */
export class KubePodEvictor implements PodEvictor {
  private readonly api: CoreV1Api;
  constructor(kc: KubeConfig) {
    this.api = kc.makeApiClient(CoreV1Api);
  }
  async evict(namespace: string, name: string): Promise<"evicted" | "blocked" | "gone"> {
    try {
      await this.api.createNamespacedPodEviction({ name, namespace, body: { apiVersion: "policy/v1", kind: "Eviction", metadata: { name, namespace } } });
      return "evicted";
    } catch (err) {
      if (isNotFound(err)) return "gone";
      if ((err as { code?: number }).code === 429) return "blocked";
      throw err;
    }
  }
}

export function bouncerClients(kc: KubeConfig): Omit<PodBouncerOptions, "issuedCertificates" | "secrets" | "strategy" | "clock" | "log" | "events" | "pollMs"> & {
  directives: CustomResourceClient<PodBounceDirective>;
  pods: GenericClient<Pod>;
  configMaps: GenericClient<ConfigMap>;
} {
  return {
    directives: new CustomResourceClient<PodBounceDirective>(kc, POD_BOUNCE_DIRECTIVE),
    pods: new GenericClient<Pod>(kc, "v1", "Pod", "pods"),
    configMaps: new GenericClient<ConfigMap>(kc, "v1", "ConfigMap", "configmaps"),
    workloads: {
      ReplicaSet: new GenericClient<Workload>(kc, "apps/v1", "ReplicaSet", "replicasets"),
      Deployment: new GenericClient<Workload>(kc, "apps/v1", "Deployment", "deployments"),
      StatefulSet: new GenericClient<Workload>(kc, "apps/v1", "StatefulSet", "statefulsets"),
      DaemonSet: new GenericClient<Workload>(kc, "apps/v1", "DaemonSet", "daemonsets"),
    },
    evictor: new KubePodEvictor(kc),
  };
}

export function registerPodBounceController(
  manager: Manager,
  namespace: string | undefined,
  o: PodBouncerOptions & { directives: CustomResourceClient<PodBounceDirective>; pods: GenericClient<Pod>; configMaps: GenericClient<ConfigMap> },
): void {
  const directivesSource = {
    name: "podbouncedirectives",
    path: o.directives.watchPath(namespace),
    list: () => o.directives.list(namespace) as never,
  };
  const directives = manager.source<PodBounceDirective & KubernetesObject>(directivesSource);
  /** Directives with a bounce in progress whose selectors (or root syncs) concern obj. */
  const concerned = (test: (d: PodBounceDirective) => boolean) =>
    directives.list().filter((d) => readBounceRequest(d) && test(d)).map((d) => keyOf(d)!).filter(Boolean);
  manager.addController<PodBounceDirective & KubernetesObject>({
    name: BOUNCER_NAME,
    reconciler: new PodBouncerReconciler(o),
    concurrency: 2,
    for: directivesSource,
    watches: (o.podNamespaces ?? [undefined]).flatMap((ns) => [
      {
        // Mapped by namespace and labels only (the reconciler lists what it uses): metadata is all we keep.
        source: { name: ns ? `pods/${ns}` : "pods", path: o.pods.watchPath(ns), list: () => o.pods.list(ns) as never, trim: keepMetadataOnly },
        map: (pod: KubernetesObject) => concerned((d) => (d.spec?.podsToBounce ?? []).some((s) =>
          (s.namespace ?? d.metadata.namespace) === pod.metadata?.namespace &&
          Object.entries(s.labels ?? {}).every(([k, v]) => pod.metadata?.labels?.[k] === v))),
      },
      {
        source: { name: ns ? `configmaps/${ns}` : "configmaps", path: o.configMaps.watchPath(ns), list: () => o.configMaps.list(ns) as never,
          trim: keepMetadataOnly },
        map: (map: KubernetesObject) => concerned((d) => (d.spec?.podsToBounce ?? []).some((s) =>
          s.rootCertSync?.configMapRef?.name === map.metadata?.name && s.rootCertSync?.configMapRef?.namespace === map.metadata?.namespace)),
      },
    ]),
  });
}
