// Which cluster the agent talks to, in the order of controller-runtime's GetConfig (and kubectl's
// loading rules): --kubeconfig, else KUBECONFIG, else in-cluster, else ~/.kube/config.
import { type Cluster, type Context, KubeConfig, type User } from "@kubernetes/client-node";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join } from "node:path";

export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

export interface KubeConfigSources {
  /** KUBECONFIG, KUBERNETES_SERVICE_HOST/_PORT and HOME are read from here. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Where the pod's service-account token, ca.crt and namespace are mounted. */
  serviceAccountDir?: string;
}

/**
 * 1. `--kubeconfig`: one file, which must exist.
 * 2. `KUBECONFIG`: a list separated by path.delimiter (':' on Linux). Files that do not exist are
 *    skipped; the others are merged with kubectl's rule that the FIRST file to set a cluster, user,
 *    context or current-context wins. Relative paths inside a file are relative to that file.
 * 3. In-cluster: KUBERNETES_SERVICE_HOST and _PORT set and the service-account token file present.
 * 4. ~/.kube/config.
 *
 * parseConfig() fills config.kubeconfig from KUBECONFIG when the flag is absent, so a `path` equal
 * to env.KUBECONFIG is taken as the environment variable (a list, step 2), not as the flag.
 */
export function loadKubeConfig(path: string | undefined, sources: KubeConfigSources = {}): KubeConfig {
  const env = sources.env ?? process.env;
  const serviceAccountDir = sources.serviceAccountDir ?? SERVICE_ACCOUNT_DIR;
  const list = env.KUBECONFIG ?? "";
  const flag = path !== undefined && path !== "" && path !== list ? path : undefined;

  let kc: KubeConfig;
  let source: string;
  if (flag !== undefined) {
    if (!existsSync(flag)) throw new Error(`--kubeconfig: file ${flag} does not exist`);
    kc = new KubeConfig();
    kc.loadFromFile(flag);
    source = `--kubeconfig ${flag}`;
  } else if (list !== "") {
    kc = loadMerged(list);
    source = `KUBECONFIG=${list}`;
  } else {
    const inCluster = loadInCluster(env, serviceAccountDir);
    const home = join(env.HOME || homedir(), ".kube", "config");
    if (inCluster) {
      kc = inCluster;
      source = "in-cluster config";
    } else if (existsSync(home)) {
      kc = new KubeConfig();
      kc.loadFromFile(home);
      source = home;
    } else {
      throw new Error(
        `no Kubernetes cluster configured: pass --kubeconfig, set KUBECONFIG, run in a pod ` +
          `(KUBERNETES_SERVICE_HOST and ${join(serviceAccountDir, "token")}) or create ${home}`,
      );
    }
  }
  if (!kc.getCurrentCluster()) {
    const context = kc.getCurrentContext();
    throw new Error(
      context
        ? `${source}: current context ${JSON.stringify(context)} does not name a cluster defined there`
        : `${source}: no current-context set`,
    );
  }
  return kc;
}

/** KUBECONFIG as kubectl reads it: missing files skipped, the first file to define a name wins. */
function loadMerged(list: string): KubeConfig {
  const files = [...new Set(list.split(delimiter).filter((f) => f !== ""))];
  const clusters: Cluster[] = [];
  const users: User[] = [];
  const contexts: Context[] = [];
  let currentContext = "";
  let found = 0;
  for (const file of files) {
    if (!existsSync(file)) continue;
    found += 1;
    // kubectl reads an empty file as an empty config; client-node's parser would throw on it.
    if (readFileSync(file, "utf8").trim() === "") continue;
    const one = new KubeConfig();
    one.loadFromFile(file); // resolves the file's relative paths against its own directory
    const addNew = <T extends { name: string }>(into: T[], from: T[]) => {
      for (const item of from) if (!into.some((i) => i.name === item.name)) into.push(item);
    };
    addNew(clusters, one.getClusters());
    addNew(users, one.getUsers());
    addNew(contexts, one.getContexts());
    if (!currentContext) currentContext = one.getCurrentContext() ?? "";
  }
  if (found === 0) throw new Error(`KUBECONFIG=${list}: none of these files exists`);
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters, users, contexts, currentContext });
  return kc;
}

/**
 * client-go's InClusterConfig. client-node's loadFromCluster() reads process.env and a fixed path
 * (under an optional prefix), and picks http for some ports; this builds the same objects (the
 * "tokenFile" auth provider re-reads the rotated token) from explicit inputs, always over https.
 */
function loadInCluster(env: NodeJS.ProcessEnv, dir: string): KubeConfig | undefined {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  const tokenFile = join(dir, "token");
  if (!host || !port || !existsSync(tokenFile)) return undefined;
  const namespaceFile = join(dir, "namespace");
  const cluster: Cluster = {
    name: "inCluster",
    server: `https://${host.includes(":") ? `[${host}]` : host}:${port}`,
    caFile: join(dir, "ca.crt"),
    skipTLSVerify: false,
  };
  const user: User = { name: "inClusterUser", authProvider: { name: "tokenFile", config: { tokenFile } } };
  const context: Context = {
    name: "inClusterContext",
    cluster: cluster.name,
    user: user.name,
    ...(existsSync(namespaceFile) ? { namespace: readFileSync(namespaceFile, "utf8").trim() } : {}),
  };
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [cluster], users: [user], contexts: [context], currentContext: context.name });
  return kc;
}
