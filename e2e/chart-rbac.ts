// The chart's RBAC on a real API server, for the e2e tests that run the agent with exactly what the
// chart grants: the real helm renders the chart (`helm template`), its ServiceAccount, Roles and
// bindings are applied server-side as `helm install` would create them, a TokenRequest token for that
// ServiceAccount is the agent's only credential, and the agent gets the chart's own arguments.
import { CoreV1Api, KubeConfig } from "@kubernetes/client-node";
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { REPO_ROOT } from "./harness";

export const CHART_DIR = join(REPO_ROOT, "charts", "cert-agent");

/** An object `helm template` printed, with the fields these tests read. */
export interface Rendered {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  rules?: { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }[];
  spec?: { template?: { spec?: { containers?: { args: string[] }[] } } };
  [field: string]: unknown;
}

let helmPath: string | undefined;
/** The real helm binary (charts/build-helm.sh prints the cached one, or builds it first). */
export function helmBinary(): string {
  helmPath ??= execFileSync("bash", [join(REPO_ROOT, "charts", "build-helm.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 20 * 60_000 }).trim();
  return helmPath;
}

/** Environment for helm: its cache, config and data in `dir`, never the user's; KUBECONFIG as given (/dev/null: no cluster). */
export function helmEnv(dir: string, kubeconfig = "/dev/null"): NodeJS.ProcessEnv {
  return { ...process.env, KUBECONFIG: kubeconfig, HELM_CACHE_HOME: join(dir, "cache"), HELM_CONFIG_HOME: join(dir, "config"), HELM_DATA_HOME: join(dir, "data") };
}

/** Values as a file helm reads (JSON is YAML, read the same by helm's YAML 1.1 parser). */
export function writeValues(dir: string, values: Record<string, unknown>, name = "values.json"): string {
  const file = join(dir, name);
  writeFileSync(file, JSON.stringify(values));
  return file;
}

/** `helm template <release> charts/cert-agent --namespace <namespace> -f <values>`, as objects. */
export function helmTemplate(release: string, namespace: string, values: Record<string, unknown>): Rendered[] {
  const dir = mkdtempSync(join(tmpdir(), "cert-agent-helm-template-"));
  const out = execFileSync(helmBinary(), ["template", release, CHART_DIR, "--namespace", namespace, "-f", writeValues(dir, values)], { encoding: "utf8", env: helmEnv(dir) });
  return parseAllDocuments(out).map((d) => d.toJS() as Rendered | null).filter((o): o is Rendered => o !== null);
}

export const RBAC_KINDS = ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"];

/** The ServiceAccount and every RBAC object among rendered objects. */
export function rbacObjects(objects: Rendered[]): Rendered[] {
  return objects.filter((o) => RBAC_KINDS.includes(o.kind));
}

/** Applies objects server-side (field manager "helm"), as one List, with the given kubectl. */
export async function applyServerSide(kubectl: (args: string[]) => Promise<string>, objects: Rendered[]): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "cert-agent-apply-"));
  writeFileSync(join(dir, "objects.json"), JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }));
  await kubectl(["apply", "--server-side", "--field-manager=helm", "-f", join(dir, "objects.json")]);
}

/** The agent container's arguments in the rendered Deployment. */
export function chartArgs(objects: Rendered[]): string[] {
  const deployment = objects.find((o) => o.kind === "Deployment");
  const args = deployment?.spec?.template?.spec?.containers?.[0]?.args;
  if (!args) throw new Error("no Deployment with a container in the rendered chart");
  return args;
}

/** The chart's arguments without its listeners (0.0.0.0:8080/8081), for an agent run in the test process. */
export function chartArgsWithoutListeners(objects: Rendered[]): string[] {
  return chartArgs(objects).filter((a) => !/^--(metrics|health-probe)-bind-address=/.test(a));
}

/** A KubeConfig that authenticates as namespace/name with a token from the TokenRequest API. */
export async function serviceAccountKubeConfig(admin: KubeConfig, namespace: string, name: string): Promise<KubeConfig> {
  const core = admin.makeApiClient(CoreV1Api);
  const token = (await core.createNamespacedServiceAccountToken({ name, namespace, body: { spec: { expirationSeconds: 3600 } } })).status?.token;
  if (!token) throw new Error("TokenRequest returned no token");
  const cluster = admin.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "local", server: cluster.server, caData: cluster.caData, caFile: cluster.caFile }],
    users: [{ name: `${namespace}-${name}`, token }],
    contexts: [{ name: "sa", cluster: "local", user: `${namespace}-${name}` }],
    currentContext: "sa",
  });
  return kc;
}

/** The HTTP status of a request (200 when it succeeds, -1 without an answer). */
export async function statusOf(request: () => Promise<unknown>): Promise<number> {
  try {
    await request();
    return 200;
  } catch (err) {
    return (err as { code?: number; statusCode?: number }).code ?? (err as { statusCode?: number }).statusCode ?? -1;
  }
}

/** The error of a request that must fail (its message with the API server's answer), or throws if it succeeded. */
export async function refusal(request: () => Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await request();
  } catch (err) {
    const e = err as { code?: number; statusCode?: number; body?: unknown; message?: string };
    const body = typeof e.body === "string" ? e.body : JSON.stringify(e.body ?? "");
    return { code: e.code ?? e.statusCode ?? -1, message: `${e.message ?? ""} ${body}` };
  }
  throw new Error("the request succeeded; a refusal was expected");
}
