// Workloads for the suites that run pods on the KWOK nodes (the pod bouncer's): a Deployment of
// containerless pods labelled app=<name>, and the Ready pods of an app.
import type { CoreV1Api, V1Deployment, V1Pod } from "@kubernetes/client-node";

/** A Deployment `name` of `replicas` pods labelled app=<name>; `annotations` go on the pod template (e.g. KWOK readiness). */
export function deployment(name: string, replicas: number, annotations: Record<string, string> = {}): V1Deployment {
  return {
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name }, annotations }, spec: { containers: [{ name: "main", image: "fake.invalid/none" }] } },
    },
  };
}

/** The pods of app=<app> in namespace that are Ready and not terminating. */
export async function readyPods(core: CoreV1Api, namespace: string, app: string): Promise<V1Pod[]> {
  return (await core.listNamespacedPod({ namespace, labelSelector: `app=${app}` })).items
    .filter((p) => !p.metadata?.deletionTimestamp && p.status?.conditions?.some((x) => x.type === "Ready" && x.status === "True"));
}
