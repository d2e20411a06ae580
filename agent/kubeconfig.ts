import { KubeConfig } from "@kubernetes/client-node";
import { existsSync } from "node:fs";

/** --kubeconfig if given; else in-cluster; else KUBECONFIG / ~/.kube/config (client-node's default). */
export function loadKubeConfig(path: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) {
    if (!existsSync(path)) throw new Error(`--kubeconfig: file ${path} does not exist`);
    kc.loadFromFile(path);
  } else if (process.env.KUBERNETES_SERVICE_HOST && existsSync("/var/run/secrets/kubernetes.io/serviceaccount/token")) {
    kc.loadFromCluster();
  } else {
    kc.loadFromDefault();
  }
  if (!kc.getCurrentCluster()) throw new Error("no Kubernetes cluster configured: pass --kubeconfig or run in a cluster");
  return kc;
}
