// The Helm chart, checked with the real helm CLI: `helm lint`, `helm template` with several value
// sets, and values.schema.json rejecting bad values with helm's own error. There is no helm package
// on these machines, so charts/build-helm.sh builds it from the Go module proxy once (~2 min cold)
// into a cache outside the work tree. Nothing here needs a cluster.
import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parse, parseAllDocuments } from "yaml";
import { PassThrough } from "node:stream";
import { parseConfig } from "../agent/config";
import { AgentMetrics } from "../agent/metrics";
import { ApiHealth } from "../shared/controller/api-health";
import { FakeClock } from "../shared/controller/clock";
import { createLogger } from "../shared/controller/logger";
import { Manager } from "../shared/controller/manager";

const repo = resolve(__dirname, "..");
const chartDir = join(repo, "charts", "cert-agent");
const releaseNamespace = "cert-agent";
const release = "ca";
const fullname = "ca-cert-agent";

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}
interface Container {
  name: string;
  image: string;
  command: string[];
  args: string[];
  env: { name: string; value?: string }[];
  ports: { name: string; containerPort: number }[];
  livenessProbe: { httpGet: { path: string; port: string | number } };
  readinessProbe: { httpGet: { path: string; port: string | number } };
  securityContext: Record<string, unknown>;
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
}
interface Deployment extends K8sObject {
  spec: {
    replicas: number;
    strategy: { type: string };
    selector: { matchLabels: Record<string, string> };
    template: {
      metadata: { labels: Record<string, string>; annotations?: Record<string, string> };
      spec: {
        serviceAccountName: string;
        securityContext: Record<string, unknown>;
        terminationGracePeriodSeconds: number;
        containers: Container[];
        nodeSelector?: Record<string, string>;
        tolerations?: unknown[];
      };
    };
  };
}

let helmBin = "";
let work = "";

interface HelmResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

function helm(args: string[]): HelmResult {
  const r = spawnSync(helmBin, args, {
    encoding: "utf8",
    timeout: 60_000,
    // No cluster and no user config: keep helm away from ~/.kube and ~/.config/helm.
    env: { ...process.env, KUBECONFIG: "/dev/null", HELM_CACHE_HOME: join(work, "cache"), HELM_CONFIG_HOME: join(work, "config"), HELM_DATA_HOME: join(work, "data") },
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

let valuesCount = 0;
function valuesFile(values: Record<string, unknown>): string {
  // JSON is YAML too, and unlike a YAML 1.2 dump it cannot be read differently by helm's YAML 1.1
  // parser (an unquoted `yes` would arrive as a boolean).
  const file = join(work, `values-${++valuesCount}.yaml`);
  writeFileSync(file, JSON.stringify(values, null, 2));
  return file;
}

/** A values file with exactly this YAML text (to show how helm's YAML parser reads it). */
function yamlValuesFile(text: string): string {
  const file = join(work, `values-${++valuesCount}.yaml`);
  writeFileSync(file, text);
  return file;
}

/** `helm template` with the given values (and extra helm arguments, e.g. --set); throws with helm's stderr on failure. */
function render(values: Record<string, unknown> = {}, extra: string[] = []): K8sObject[] {
  const r = helm(["template", release, chartDir, "--namespace", releaseNamespace, "-f", valuesFile(values), ...extra]);
  if (r.status !== 0) throw new Error(`helm template failed (${r.status}): ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`helm template printed invalid YAML: ${doc.errors[0]!.message}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

/** `helm template` expected to fail; returns helm's stderr. */
function renderError(values: Record<string, unknown>, extra: string[] = []): string {
  const r = helm(["template", release, chartDir, "--namespace", releaseNamespace, "-f", valuesFile(values), ...extra]);
  expect(r.status).not.toBe(0);
  return r.stderr;
}

function find<T extends K8sObject = K8sObject>(objects: K8sObject[], kind: string, name?: string, namespace?: string): T {
  const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name) && (namespace === undefined || o.metadata.namespace === namespace));
  if (found.length !== 1) throw new Error(`expected one ${kind} ${namespace ?? "*"}/${name ?? "*"}, found ${found.length}: ${objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`).join(", ")}`);
  return found[0] as T;
}

function container(objects: K8sObject[]): Container {
  const deployment = find<Deployment>(objects, "Deployment");
  expect(deployment.spec.template.spec.containers).toHaveLength(1);
  return deployment.spec.template.spec.containers[0]!;
}

/** Verbs that a set of rules grants on group/resource (union over the matching rules, no resourceNames). */
function granted(rules: Rule[], group: string, resource: string): string[] {
  const verbs = new Set<string>();
  for (const rule of rules) {
    if (rule.resourceNames !== undefined) continue;
    if ((rule.apiGroups.includes(group) || rule.apiGroups.includes("*")) && (rule.resources.includes(resource) || rule.resources.includes("*"))) {
      for (const v of rule.verbs) verbs.add(v);
    }
  }
  return [...verbs].sort();
}

const MESH = "certificates.mesh.gloo.solo.io";
/** Exactly the verbs the agent calls (status written with update, bookkeeping annotations with patch,
 * finalizers for blockOwnerDeletion under OwnerReferencesPermissionEnforcement). */
const meshRules: [string, string, string[]][] = [
  [MESH, "issuedcertificates", ["get", "list", "watch", "patch"]],
  [MESH, "issuedcertificates/status", ["update"]],
  [MESH, "issuedcertificates/finalizers", ["update"]],
  [MESH, "certificaterequests", ["get", "list", "watch", "create", "update"]],
  [MESH, "podbouncedirectives", ["get", "list", "watch", "patch"]],
  [MESH, "podbouncedirectives/status", ["update"]],
  ["", "events", ["create", "patch"]],
];
/** Granted nowhere: the agent never calls them. */
const unusedRules: [string, string, string[]][] = [
  [MESH, "certificaterequests/status", []],
  ["events.k8s.io", "events", []],
];
/** Secrets, and reading the IssuedCertificate named like a target (the staged-key collision check). */
const secretRules: [string, string, string[]][] = [["", "secrets", ["get", "list", "watch", "create", "update", "delete"]]];
const collisionCheck: [string, string, string[]] = [MESH, "issuedcertificates", ["get"]];
/** The default bounce strategy, rollout: restart workloads, evict bare pods, never delete. */
const podRules: [string, string, string[]][] = [
  ["", "pods", ["get", "list", "watch"]],
  ["", "pods/eviction", ["create"]],
  ["apps", "replicasets", ["get"]],
  ["apps", "deployments", ["get", "update"]],
  ["apps", "statefulsets", ["get", "update"]],
  ["apps", "daemonsets", ["get", "update"]],
  ["", "configmaps", ["get", "list", "watch"]],
];

function expectGrants(rules: Rule[], expected: [string, string, string[]][]): void {
  for (const [group, resource, verbs] of expected) {
    expect({ group, resource, verbs: granted(rules, group, resource) }).toEqual({ group, resource, verbs: [...verbs].sort() });
  }
}
function expectNoGrants(rules: Rule[], expected: [string, string, string[]][]): void {
  for (const [group, resource] of expected) expect({ group, resource, verbs: granted(rules, group, resource) }).toEqual({ group, resource, verbs: [] });
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), "cert-agent-chart-"));
  // Prints the cached binary at once, or builds it first (stderr shows progress).
  helmBin = execFileSync("bash", [join(repo, "charts", "build-helm.sh")], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], timeout: 20 * 60_000 }).trim();
}, 21 * 60_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe("chart metadata", () => {
  test("Chart.yaml is apiVersion v2 cert-agent 0.1.0 and helm reads it", () => {
    const chart = parse(readFileSync(join(chartDir, "Chart.yaml"), "utf8")) as Record<string, unknown>;
    expect(chart).toMatchObject({ apiVersion: "v2", name: "cert-agent", version: "0.1.0", appVersion: "0.1.0" });
    const shown = helm(["show", "chart", chartDir]);
    expect(shown.status).toBe(0);
    expect(parse(shown.stdout)).toMatchObject({ name: "cert-agent", version: "0.1.0", appVersion: "0.1.0" });
  });

  test("values.schema.json is strict at the top level and in every nested object it defines", () => {
    const schema = JSON.parse(readFileSync(join(chartDir, "values.schema.json"), "utf8")) as Record<string, unknown>;
    const loose: string[] = [];
    const walk = (node: unknown, path: string): void => {
      if (node === null || typeof node !== "object") return;
      const n = node as Record<string, unknown>;
      if (n.properties !== undefined && n.additionalProperties !== false) loose.push(path || "/");
      for (const [key, child] of Object.entries((n.properties as Record<string, unknown>) ?? {})) walk(child, `${path}/${key}`);
    };
    walk(schema, "");
    expect(loose).toEqual([]);
    expect(schema.additionalProperties).toBe(false);
  });
});

describe("helm lint", () => {
  test("passes --strict with the default values", () => {
    const r = helm(["lint", "--strict", chartDir]);
    expect(r.stderr + r.stdout).toContain("0 chart(s) failed");
    expect(r.status).toBe(0);
  });

  test("passes --strict with watchNamespace, replicas=2, narrowed RBAC and extras", () => {
    const file = valuesFile({
      watchNamespace: "mesh",
      replicas: 2,
      extraArgs: ["--log-level=debug"],
      rbac: { secretNamespaces: ["istio-system"], podNamespaces: ["istio-system", "gateways"] },
      metrics: { enabled: false },
    });
    const r = helm(["lint", "--strict", chartDir, "--namespace", releaseNamespace, "-f", file]);
    expect(r.stderr + r.stdout).toContain("0 chart(s) failed");
    expect(r.status).toBe(0);
  });

  test("passes --strict with every optional object and option on", () => {
    const file = valuesFile({
      image: { digest: `sha256:${"ab".repeat(32)}` },
      imagePullSecrets: [{ name: "regcred" }, "legacy"],
      commonLabels: { team: "mesh" },
      commonAnnotations: { owner: "mesh" },
      podDisruptionBudget: { enabled: true, minAvailable: 1 },
      serviceMonitor: { enabled: true, interval: "30s" },
      prometheusRule: { enabled: true },
      topologySpreadConstraints: [{ maxSkew: 1, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "ScheduleAnyway" }],
      automountServiceAccountToken: false,
      extraVolumes: [{ name: "token", projected: { sources: [{ serviceAccountToken: { path: "token" } }] } }],
      extraVolumeMounts: [{ name: "token", mountPath: "/var/run/cert-agent" }],
      extraArgs: ["--service-account-dir=/var/run/cert-agent"],
    });
    const r = helm(["lint", "--strict", chartDir, "--namespace", releaseNamespace, "-f", file]);
    expect(r.stderr + r.stdout).toContain("0 chart(s) failed");
    expect(r.status).toBe(0);
  });

  test("fails on a value the schema rejects, with helm's schema error", () => {
    const r = helm(["lint", chartDir, "-f", valuesFile({ replicas: -1 })]);
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/at '\/replicas': minimum: got -1, want 0/);
  });
});

describe("helm template with the default values", () => {
  let objects: K8sObject[];
  beforeAll(() => {
    objects = render();
  });

  test("renders exactly the expected objects, namespaced ones in the release namespace", () => {
    const ids = objects.map((o) => `${o.kind}/${o.metadata.namespace ?? ""}/${o.metadata.name}`).sort();
    expect(ids).toEqual(
      [
        `ClusterRole//${fullname}-${releaseNamespace}`,
        `ClusterRoleBinding//${fullname}-${releaseNamespace}`,
        `Deployment/${releaseNamespace}/${fullname}`,
        `Role/${releaseNamespace}/${fullname}-leader-election`,
        `RoleBinding/${releaseNamespace}/${fullname}-leader-election`,
        `Role/${releaseNamespace}/${fullname}`,
        `RoleBinding/${releaseNamespace}/${fullname}`,
        `Role/istio-system/${fullname}`,
        `RoleBinding/istio-system/${fullname}`,
        `Service/${releaseNamespace}/${fullname}-metrics`,
        `ServiceAccount/${releaseNamespace}/${fullname}`,
      ].sort(),
    );
  });

  test("every object carries the standard app.kubernetes.io labels", () => {
    for (const o of objects) {
      expect(o.metadata.labels).toMatchObject({
        "app.kubernetes.io/name": "cert-agent",
        "app.kubernetes.io/instance": release,
        "app.kubernetes.io/version": "0.1.0",
        "app.kubernetes.io/managed-by": "Helm",
        "helm.sh/chart": "cert-agent-0.1.0",
      });
    }
    const deployment = find<Deployment>(objects, "Deployment");
    expect(deployment.spec.selector.matchLabels).toEqual({ "app.kubernetes.io/name": "cert-agent", "app.kubernetes.io/instance": release });
    expect(deployment.spec.template.metadata.labels).toMatchObject(deployment.spec.selector.matchLabels);
  });

  test("the container runs node dist/agent/main.js with the flags from values", () => {
    const c = container(objects);
    expect(c.image).toBe("ghcr.io/cert-agent/cert-agent:0.1.0");
    expect(c.command).toEqual(["node", "dist/agent/main.js"]);
    expect(c.args).toEqual([
      "--log-level=info",
      "--concurrency=4",
      `--secret-namespaces=istio-system,${releaseNamespace}`,
      "--leader-elect",
      `--leader-election-namespace=${releaseNamespace}`,
      `--leader-election-id=${fullname}`,
      "--metrics-bind-address=0.0.0.0:8080",
      "--health-probe-bind-address=0.0.0.0:8081",
      "--stall-threshold=10m",
      "--clock-skew-warning=1m",
      "--retry-base-delay=10s",
      "--retry-max-delay=10m",
      "--resync-period=5m",
      "--bounce-strategy=rollout",
      "--bounce-timeout=10m",
      "--root-change-policy=accept",
      "--root-overlap=25h",
    ]);
    // In-cluster config is the default: the chart never points the agent at a kubeconfig.
    expect(c.args.some((a) => a.startsWith("--kubeconfig"))).toBe(false);
    expect(c.env.some((e) => e.name === "KUBECONFIG")).toBe(false);
    // A small young generation by default (bench:footprint); nodeOptions: "" leaves Node's defaults.
    expect(c.env).toContainEqual({ name: "NODE_OPTIONS", value: "--max-semi-space-size=2" });
    expect(container(render({ nodeOptions: "" })).env.some((e) => e.name === "NODE_OPTIONS")).toBe(false);
    expect(c.args.some((a) => a.startsWith("--namespace"))).toBe(false);
  });

  test("pod and container follow the restricted Pod Security profile", () => {
    const deployment = find<Deployment>(objects, "Deployment");
    const pod = deployment.spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, seccompProfile: { type: "RuntimeDefault" } });
    expect(container(objects).securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      runAsUser: 65532,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    expect(pod.terminationGracePeriodSeconds).toBe(30);
    expect(pod.serviceAccountName).toBe(fullname);
  });

  test("probes hit /healthz and /readyz on the named health port; metrics on 8080", () => {
    const c = container(objects);
    expect(c.ports).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ name: "health", containerPort: 8081 }),
        expect.objectContaining({ name: "metrics", containerPort: 8080 }),
      ]),
    );
    expect(c.livenessProbe.httpGet).toEqual({ path: "/healthz", port: "health" });
    expect(c.readinessProbe.httpGet).toEqual({ path: "/readyz", port: "health" });
    const service = find(objects, "Service") as K8sObject & { spec: { ports: { name: string; port: number; targetPort: string }[]; selector: Record<string, string> } };
    expect(service.spec.ports).toEqual([expect.objectContaining({ name: "metrics", port: 8080, targetPort: "metrics" })]);
    expect(service.spec.selector).toEqual(find<Deployment>(objects, "Deployment").spec.selector.matchLabels);
  });

  test("resources: requests 50m/128Mi, a memory limit and no CPU limit (RSA-4096 keygen)", () => {
    expect(container(objects).resources).toEqual({ requests: { cpu: "50m", memory: "128Mi" }, limits: { memory: "512Mi" } });
  });

  test("one replica, rolled with surge behind the Lease", () => {
    const deployment = find<Deployment>(objects, "Deployment");
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.strategy.type).toBe("RollingUpdate");
  });

  test("the ClusterRole grants exactly the verbs the agent needs, bound to its service account; no Secrets", () => {
    const role = find(objects, "ClusterRole") as K8sObject & { rules: Rule[] };
    expectGrants(role.rules, [...meshRules, ...podRules]);
    expectNoGrants(role.rules, [...secretRules, ...unusedRules]);
    // Nothing broader than asked for.
    for (const rule of role.rules) {
      expect(rule.verbs).not.toContain("*");
      expect(rule.resources).not.toContain("*");
    }
    expect(granted(role.rules, "coordination.k8s.io", "leases")).toEqual([]);
    const binding = find(objects, "ClusterRoleBinding") as K8sObject & { roleRef: { kind: string; name: string }; subjects: { kind: string; name: string; namespace: string }[] };
    expect(binding.roleRef).toMatchObject({ kind: "ClusterRole", name: role.metadata.name });
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: fullname, namespace: releaseNamespace }]);
  });

  test("Secrets: a Role in istio-system and in the release namespace (staged keys next to the IssuedCertificates), bound to its service account", () => {
    for (const ns of ["istio-system", releaseNamespace]) {
      const role = find(objects, "Role", fullname, ns) as K8sObject & { rules: Rule[] };
      expect(role.rules.flatMap((r) => r.resources).sort()).toEqual(["issuedcertificates", "secrets"]);
      expectGrants(role.rules, [...secretRules, collisionCheck]);
      const binding = find(objects, "RoleBinding", fullname, ns) as K8sObject & { roleRef: { kind: string; name: string }; subjects: unknown[] };
      expect(binding.roleRef).toMatchObject({ kind: "Role", name: fullname });
      expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: fullname, namespace: releaseNamespace }]);
    }
  });

  test("leader election: get/create/update on leases in the release namespace only", () => {
    const role = find(objects, "Role", `${fullname}-leader-election`, releaseNamespace) as K8sObject & { rules: Rule[] };
    const verbs = new Set(role.rules.filter((r) => r.apiGroups.includes("coordination.k8s.io") && r.resources.includes("leases")).flatMap((r) => r.verbs));
    expect([...verbs].sort()).toEqual(["create", "get", "update"]);
    // get/update are pinned to the Lease the agent is told to use.
    const pinned = role.rules.find((r) => r.verbs.includes("update"))!;
    expect(pinned.resourceNames).toEqual([fullname]);
    const binding = find(objects, "RoleBinding", `${fullname}-leader-election`, releaseNamespace) as K8sObject & { roleRef: { name: string }; subjects: unknown[] };
    expect(binding.roleRef.name).toBe(role.metadata.name);
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: fullname, namespace: releaseNamespace }]);
  });
});

describe("helm template with watchNamespace, replicas=2 and extraArgs", () => {
  let objects: K8sObject[];
  beforeAll(() => {
    objects = render({
      watchNamespace: "mesh",
      replicas: 2,
      logLevel: "warn",
      concurrency: 8,
      retry: { baseDelay: "5s", maxDelay: "1h" },
      extraArgs: ["--log-level=debug", "--resync-period=1m"],
      extraEnv: [{ name: "CERT_AGENT_EXAMPLE", value: "x" }],
      image: { tag: "1.2.3", pullPolicy: "Always" },
      podAnnotations: { "example.com/a": "b" },
      podLabels: { team: "mesh" },
      nodeSelector: { "kubernetes.io/os": "linux" },
      tolerations: [{ key: "dedicated", operator: "Exists", effect: "NoSchedule" }],
    });
  });

  test("container args carry every flag from values, extraArgs last", () => {
    const c = container(objects);
    expect(c.args).toEqual([
      "--log-level=warn",
      "--concurrency=8",
      "--namespace=mesh",
      "--secret-namespaces=istio-system,mesh",
      "--leader-elect",
      `--leader-election-namespace=${releaseNamespace}`,
      `--leader-election-id=${fullname}`,
      "--metrics-bind-address=0.0.0.0:8080",
      "--health-probe-bind-address=0.0.0.0:8081",
      "--stall-threshold=10m",
      "--clock-skew-warning=1m",
      "--retry-base-delay=5s",
      "--retry-max-delay=1h",
      "--resync-period=5m",
      "--bounce-strategy=rollout",
      "--bounce-timeout=10m",
      "--root-change-policy=accept",
      "--root-overlap=25h",
      "--log-level=debug",
      "--resync-period=1m",
    ]);
    expect(c.image).toBe("ghcr.io/cert-agent/cert-agent:1.2.3");
    expect(c.env).toEqual(expect.arrayContaining([{ name: "CERT_AGENT_EXAMPLE", value: "x" }]));
  });

  test("replicas, pod metadata and scheduling come from values", () => {
    const deployment = find<Deployment>(objects, "Deployment");
    expect(deployment.spec.replicas).toBe(2);
    expect(deployment.spec.template.metadata.annotations).toEqual({ "example.com/a": "b" });
    expect(deployment.spec.template.metadata.labels).toMatchObject({ team: "mesh", "app.kubernetes.io/name": "cert-agent" });
    expect(deployment.spec.template.spec.nodeSelector).toEqual({ "kubernetes.io/os": "linux" });
    expect(deployment.spec.template.spec.tolerations).toEqual([{ key: "dedicated", operator: "Exists", effect: "NoSchedule" }]);
  });

  test("mesh resources, Events and Secrets move to a Role in the watched namespace, Secrets also to istio-system; pods and ConfigMaps stay cluster-wide", () => {
    const role = find(objects, "Role", fullname, "mesh") as K8sObject & { rules: Rule[] };
    expectGrants(role.rules, [...meshRules, ...secretRules]);
    expectNoGrants(role.rules, podRules);
    const binding = find(objects, "RoleBinding", fullname, "mesh") as K8sObject & { roleRef: { kind: string; name: string }; subjects: unknown[] };
    expect(binding.roleRef).toMatchObject({ kind: "Role", name: fullname });
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: fullname, namespace: releaseNamespace }]);
    // The target secret (istio-system/cacerts by default) is outside the watched namespace.
    const target = find(objects, "Role", fullname, "istio-system") as K8sObject & { rules: Rule[] };
    expectGrants(target.rules, [...secretRules, collisionCheck]);
    // No Secrets in the release namespace: the IssuedCertificates (and staged keys) are in mesh.
    expect(objects.filter((o) => o.kind === "Role" && o.metadata.namespace === releaseNamespace).map((o) => o.metadata.name)).toEqual([`${fullname}-leader-election`]);

    const clusterRole = find(objects, "ClusterRole") as K8sObject & { rules: Rule[] };
    expectGrants(clusterRole.rules, podRules);
    expectNoGrants(clusterRole.rules, [...meshRules, ...secretRules]);
  });

  test("rbac.allSecretNamespaces: Secrets cluster-wide, and the agent watches them all (no --secret-namespaces)", () => {
    const all = render({ watchNamespace: "mesh", rbac: { allSecretNamespaces: true } });
    expectGrants((find(all, "ClusterRole") as K8sObject & { rules: Rule[] }).rules, [...secretRules, ...podRules]);
    expect(all.filter((o) => o.kind === "Role" && o.metadata.namespace === "istio-system")).toEqual([]);
    expect(container(all).args.filter((a) => a.startsWith("--secret-namespaces"))).toEqual([]);
  });

  test("rbac.secretNamespaces and rbac.podNamespaces narrow the rest to Roles; no ClusterRole is left", () => {
    const narrowed = render({ watchNamespace: "mesh", rbac: { secretNamespaces: ["istio-system"], podNamespaces: ["istio-system", "gateways"] } });
    expect(narrowed.filter((o) => o.kind === "ClusterRole" || o.kind === "ClusterRoleBinding")).toEqual([]);
    const rules = (ns: string): Rule[] => (find(narrowed, "Role", fullname, ns) as K8sObject & { rules: Rule[] }).rules;
    expectGrants(rules("mesh"), [...meshRules, ...secretRules]);
    expectNoGrants(rules("mesh"), podRules);
    expectGrants(rules("istio-system"), [...secretRules, collisionCheck, ...podRules]);
    expectNoGrants(rules("istio-system"), meshRules.filter(([, resource]) => resource !== "issuedcertificates"));
    expectGrants(rules("gateways"), podRules);
    expectNoGrants(rules("gateways"), [...meshRules, ...secretRules]);
    for (const ns of ["mesh", "istio-system", "gateways"]) find(narrowed, "RoleBinding", fullname, ns);
    // The agent watches exactly those namespaces (a cluster-wide watch would be refused).
    expect(parseConfig(container(narrowed).args, {})).toMatchObject({ secretNamespaces: ["istio-system", "mesh"], podNamespaces: ["istio-system", "gateways"] });
  });

  test.each([
    ["evict", [["", "pods", ["get", "list", "watch"]], ["", "pods/eviction", ["create"]]], [["apps", "deployments"], ["apps", "replicasets"]]],
    ["delete", [["", "pods", ["get", "list", "watch", "delete"]]], [["", "pods/eviction"], ["apps", "deployments"], ["apps", "replicasets"]]],
  ] as [string, [string, string, string[]][], [string, string][]][])("bounce.strategy=%s grants only what that strategy calls", (strategy, granted, refused) => {
    const rendered = render({ bounce: { strategy } });
    const clusterRole = find(rendered, "ClusterRole") as K8sObject & { rules: Rule[] };
    expectGrants(clusterRole.rules, [...granted, ["", "configmaps", ["get", "list", "watch"]]]);
    expectNoGrants(clusterRole.rules, refused.map(([g, r]) => [g, r, []]));
    const deployment = find(rendered, "Deployment") as K8sObject & { spec: { template: { spec: { containers: { args: string[] }[] } } } };
    expect(deployment.spec.template.spec.containers[0].args).toContain(`--bounce-strategy=${strategy}`);
  });
});

describe("the agent accepts what the chart passes", () => {
  // The chart and agent/config.ts must agree on flag names and syntax (e.g. --leader-elect is a
  // boolean flag that rejects "=true"); run the agent's own parser over the rendered args.
  test("default args parse to the intended config", () => {
    const config = parseConfig(container(render()).args, {});
    expect(config).toMatchObject({
      namespace: undefined,
      secretNamespaces: ["istio-system", releaseNamespace],
      kubeconfig: undefined,
      logLevel: "info",
      concurrency: 4,
      leaderElect: true,
      leaderElectionNamespace: releaseNamespace,
      leaderElectionId: fullname,
      metricsBindAddress: "0.0.0.0:8080",
      healthProbeBindAddress: "0.0.0.0:8081",
      retryBaseDelayMs: 10_000,
      retryMaxDelayMs: 600_000,
      resyncMs: 300_000,
    });
  });

  test("watchNamespace and extraArgs parse, extraArgs winning over the chart's flags", () => {
    const args = container(render({ watchNamespace: "mesh", replicas: 2, extraArgs: ["--log-level=debug", "--resync-period=1m"], metrics: { enabled: false } })).args;
    expect(parseConfig(args, {})).toMatchObject({ namespace: "mesh", logLevel: "debug", resyncMs: 60_000, leaderElect: true, metricsBindAddress: "0" });
  });

  test("leaderElection disabled parses to leaderElect false", () => {
    expect(parseConfig(container(render({ leaderElection: { enabled: false } })).args, {})).toMatchObject({ leaderElect: false });
  });
});

describe("other value combinations", () => {
  test("leaderElection.enabled=false: no --leader-elect, no Lease Role, Recreate so two agents never overlap", () => {
    const objects = render({ leaderElection: { enabled: false } });
    const c = container(objects);
    expect(c.args.filter((a) => a.startsWith("--leader-elect"))).toEqual([]);
    expect(objects.filter((o) => o.kind === "Role").map((o) => o.metadata.name)).not.toContain(`${fullname}-leader-election`);
    expect(find<Deployment>(objects, "Deployment").spec.strategy.type).toBe("Recreate");
  });

  test("metrics.enabled=false disables the endpoint, the port and the Service", () => {
    const objects = render({ metrics: { enabled: false } });
    const c = container(objects);
    expect(c.args).toContain("--metrics-bind-address=0");
    expect(c.ports.map((p) => p.name)).toEqual(["health"]);
    expect(objects.filter((o) => o.kind === "Service")).toEqual([]);
  });

  test("serviceAccount.create=false with a name binds that account", () => {
    const objects = render({ serviceAccount: { create: false, name: "existing" } });
    expect(objects.filter((o) => o.kind === "ServiceAccount")).toEqual([]);
    expect(find<Deployment>(objects, "Deployment").spec.template.spec.serviceAccountName).toBe("existing");
    const binding = find(objects, "ClusterRoleBinding") as K8sObject & { subjects: { name: string }[] };
    expect(binding.subjects[0]!.name).toBe("existing");
  });

  test("rbac.create=false renders no RBAC objects", () => {
    const objects = render({ rbac: { create: false } });
    expect(objects.filter((o) => /Role/.test(o.kind))).toEqual([]);
  });

  test("replicas > 1 without leader election is refused with a clear message", () => {
    expect(renderError({ replicas: 2, leaderElection: { enabled: false } })).toContain("replicas > 1 requires leaderElection.enabled=true");
  });
});

interface PrometheusRule extends K8sObject {
  spec: { groups: { name: string; rules: { alert: string; expr: string; for: string; labels: Record<string, string>; annotations: Record<string, string> }[] }[] };
}

/** Every metric name the agent process exports: its own, the manager's and the API observer's. */
async function exportedMetricNames(): Promise<Set<string>> {
  const metrics = new AgentMetrics();
  const log = createLogger("error", new PassThrough());
  new Manager({ clock: new FakeClock(), log, registry: metrics.registry, resyncMs: 60_000 });
  new ApiHealth({ clock: new FakeClock(), log, registry: metrics.registry });
  return new Set((await metrics.registry.getMetricsAsJSON()).map((m) => m.name));
}

describe("the PrometheusRule (prometheusRule.enabled)", () => {
  const rule = (values: Record<string, unknown> = {}) => find<PrometheusRule>(render({ prometheusRule: { enabled: true, ...values } }), "PrometheusRule");

  test("is off by default", () => {
    expect(render().filter((o) => o.kind === "PrometheusRule")).toEqual([]);
  });

  test("renders the five alerts, each with its expression, duration and severity, in the release namespace", () => {
    const r = rule();
    expect(r).toMatchObject({ apiVersion: "monitoring.coreos.com/v1", metadata: { name: fullname, namespace: releaseNamespace } });
    expect(r.metadata.labels).toMatchObject({ "app.kubernetes.io/name": "cert-agent", "app.kubernetes.io/instance": release });
    expect(r.spec.groups.map((g) => g.name)).toEqual(["cert-agent"]);
    expect(r.spec.groups[0]!.rules.map(({ alert, expr, for: duration, labels }) => ({ alert, expr, for: duration, labels }))).toEqual([
      { alert: "CertAgentCertificateExpiringSoon", expr: "cert_agent_certificate_expiration_timestamp_seconds - time() < 7 * 24 * 3600", for: "15m", labels: { severity: "warning" } },
      { alert: "CertAgentRenewalOverdue", expr: "cert_agent_certificate_renewal_timestamp_seconds < time() - 3600", for: "5m", labels: { severity: "warning" } },
      { alert: "CertAgentNotReady", expr: "cert_agent_ready == 0", for: "10m", labels: { severity: "warning" } },
      { alert: "CertAgentAbsent", expr: "absent(cert_agent_ready)", for: "10m", labels: { severity: "critical" } },
      { alert: "CertAgentNoLeader", expr: "max(cert_agent_leader) == 0", for: "5m", labels: { severity: "critical" } },
    ]);
    // Prometheus' own template syntax reaches the rule untouched by helm.
    expect(r.spec.groups[0]!.rules[0]!.annotations.summary).toBe(
      "The intermediate CA of IssuedCertificate {{ with $labels.exported_namespace }}{{ . }}{{ else }}{{ $labels.namespace }}{{ end }}/{{ $labels.name }} expires within 7 days");
    expect(r.spec.groups[0]!.rules[0]!.annotations.description).toContain("{{ $value | humanizeDuration }}");
  });

  test("every metric an alert reads is one the agent exports", async () => {
    const names = await exportedMetricNames();
    const read = rule().spec.groups[0]!.rules.flatMap((x) => x.expr.match(/cert_agent_[a-z_]+/g) ?? []);
    expect(read.length).toBe(5);
    for (const name of read) expect({ name, exported: names.has(name) }).toEqual({ name, exported: true });
  });

  test("selector narrows every expression; labels, annotations and alertLabels land where they belong", () => {
    const r = rule({ selector: 'job="ca-cert-agent-metrics"', labels: { release: "kube-prometheus" }, annotations: { owner: "mesh" }, alertLabels: { team: "mesh" } });
    const rules = r.spec.groups[0]!.rules;
    expect(rules.map((x) => x.expr)).toEqual([
      'cert_agent_certificate_expiration_timestamp_seconds{job="ca-cert-agent-metrics"} - time() < 7 * 24 * 3600',
      'cert_agent_certificate_renewal_timestamp_seconds{job="ca-cert-agent-metrics"} < time() - 3600',
      'cert_agent_ready{job="ca-cert-agent-metrics"} == 0',
      'absent(cert_agent_ready{job="ca-cert-agent-metrics"})',
      'max(cert_agent_leader{job="ca-cert-agent-metrics"}) == 0',
    ]);
    expect(r.metadata.labels).toMatchObject({ release: "kube-prometheus" });
    expect((r.metadata as { annotations?: Record<string, string> }).annotations).toEqual({ owner: "mesh" });
    for (const x of rules) expect(x.labels).toEqual({ severity: expect.any(String), team: "mesh" });
  });

  test("passes helm lint --strict", () => {
    const r = helm(["lint", "--strict", chartDir, "-f", valuesFile({ prometheusRule: { enabled: true, selector: 'job="x"' } })]);
    expect(r.stderr + r.stdout).toContain("0 chart(s) failed");
  });

  test("is refused without metrics, with a clear message", () => {
    expect(renderError({ prometheusRule: { enabled: true }, metrics: { enabled: false } })).toContain("prometheusRule.enabled=true requires metrics.enabled=true");
  });
});

describe("the health flags the chart passes", () => {
  test("--stall-threshold and --clock-skew-warning from health.*, default 10m and 1m", () => {
    expect(container(render()).args).toEqual(expect.arrayContaining(["--stall-threshold=10m", "--clock-skew-warning=1m"]));
    expect(parseConfig(container(render()).args, {})).toMatchObject({ stallThresholdMs: 600_000, clockSkewWarningMs: 60_000 });
    expect(parseConfig(container(render({ health: { stallThreshold: "15m", clockSkewWarning: "30s" } })).args, {}))
      .toMatchObject({ stallThresholdMs: 900_000, clockSkewWarningMs: 30_000 });
  });
});

describe("values.schema.json rejects bad values with helm's error", () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ["negative replicas", { replicas: -1 }, /at '\/replicas': minimum: got -1, want 0/],
    ["an unknown top-level key", { replicaCount: 2 }, /at '': additional properties 'replicaCount' not allowed/],
    ["an unknown nested key", { image: { name: "x" } }, /at '\/image': additional properties 'name' not allowed/],
    ["a log level outside the enum", { logLevel: "trace" }, /at '\/logLevel': value must be one of/],
    ["concurrency 0", { concurrency: 0 }, /at '\/concurrency': minimum: got 0, want 1/],
    ["a duration without a unit", { retry: { baseDelay: "10" } }, /at '\/retry\/baseDelay'/],
    ["a bad pull policy", { image: { pullPolicy: "Sometimes" } }, /at '\/image\/pullPolicy': value must be one of/],
    ["an invalid namespace name", { watchNamespace: "Not_A_Namespace" }, /at '\/watchNamespace'/],
    ["a port out of range", { metrics: { port: 70000 } }, /at '\/metrics\/port': maximum: got 70,000, want 65,535|at '\/metrics\/port': maximum/],
    ["a string where a bool belongs", { leaderElection: { enabled: "yes" } }, /at '\/leaderElection\/enabled': got string, want boolean/],
    ["a stall threshold without a unit", { health: { stallThreshold: "10" } }, /at '\/health\/stallThreshold'/],
    ["braces in the PromQL selector", { prometheusRule: { selector: '{job="x"}' } }, /at '\/prometheusRule\/selector'/],
    ["an unknown prometheusRule key", { prometheusRule: { severity: "page" } }, /at '\/prometheusRule': additional properties 'severity' not allowed/],
  ];
  test.each(cases)("%s", (_name, values, error) => {
    const stderr = renderError(values);
    expect(stderr).toContain("values don't meet the specifications of the schema");
    expect(stderr).toMatch(error);
  });
});

// ---- issue 9: the chart refuses what the agent would refuse, and the options comparable charts have ----

describe("the ServiceAccount", () => {
  test("serviceAccount.create=false without a name is refused: it would be the namespace's default account", () => {
    const stderr = renderError({ serviceAccount: { create: false } });
    expect(stderr).toContain("serviceAccount.create=false requires serviceAccount.name");
    expect(stderr).toContain(`the namespace's "default" ServiceAccount`);
    // Even without the chart's RBAC the pod would run as "default".
    expect(renderError({ serviceAccount: { create: false, name: "" }, rbac: { create: false } })).toContain("serviceAccount.create=false requires serviceAccount.name");
  });

  test("create=true without a name uses the full name; with a name, that name everywhere", () => {
    expect(find<Deployment>(render(), "Deployment").spec.template.spec.serviceAccountName).toBe(fullname);
    const named = render({ serviceAccount: { name: "agent" } });
    expect(find(named, "ServiceAccount").metadata.name).toBe("agent");
    expect(find<Deployment>(named, "Deployment").spec.template.spec.serviceAccountName).toBe("agent");
    const binding = find(named, "ClusterRoleBinding") as K8sObject & { subjects: { name: string }[] };
    expect(binding.subjects[0]!.name).toBe("agent");
  });

  test("automountServiceAccountToken: true by default (the agent's in-cluster credentials); false with a token mounted by hand", () => {
    const pod = (objects: K8sObject[]) => find<Deployment>(objects, "Deployment").spec.template.spec as Deployment["spec"]["template"]["spec"] & {
      automountServiceAccountToken: boolean; volumes: { name: string }[]; containers: (Container & { volumeMounts: { name: string; mountPath: string }[] })[];
    };
    expect(pod(render()).automountServiceAccountToken).toBe(true);
    const projected = { name: "token", projected: { sources: [{ serviceAccountToken: { path: "token", expirationSeconds: 3600 } }] } };
    const manual = render({
      automountServiceAccountToken: false,
      extraVolumes: [projected],
      extraVolumeMounts: [{ name: "token", mountPath: "/var/run/cert-agent", readOnly: true }],
      extraArgs: ["--service-account-dir=/var/run/cert-agent"],
    });
    const spec = pod(manual);
    expect(spec.automountServiceAccountToken).toBe(false);
    expect(spec.volumes).toEqual([{ name: "tmp", emptyDir: { sizeLimit: "64Mi" } }, projected]);
    expect(spec.containers[0]!.volumeMounts).toEqual([{ name: "tmp", mountPath: "/tmp" }, { name: "token", mountPath: "/var/run/cert-agent", readOnly: true }]);
    expect(parseConfig(spec.containers[0]!.args, {})).toMatchObject({ serviceAccountDir: "/var/run/cert-agent" });
  });
});

describe("values the agent would refuse at start are refused by the chart", () => {
  const DURATIONS: [string, (v: string) => Record<string, unknown>, string, keyof Exclude<ReturnType<typeof parseConfig>, "help">][] = [
    ["resyncPeriod", (v) => ({ resyncPeriod: v }), "resync-period", "resyncMs"],
    ["retry.baseDelay", (v) => ({ retry: { baseDelay: v, maxDelay: "10h" } }), "retry-base-delay", "retryBaseDelayMs"],
    ["retry.maxDelay", (v) => ({ retry: { baseDelay: "1ms", maxDelay: v } }), "retry-max-delay", "retryMaxDelayMs"],
    ["bounce.timeout", (v) => ({ bounce: { timeout: v } }), "bounce-timeout", "bounceTimeoutMs"],
    ["health.stallThreshold", (v) => ({ health: { stallThreshold: v } }), "stall-threshold", "stallThresholdMs"],
    ["health.clockSkewWarning", (v) => ({ health: { clockSkewWarning: v } }), "clock-skew-warning", "clockSkewWarningMs"],
  ];

  test.each(DURATIONS)("%s: zero and malformed durations are refused by the schema, sub-millisecond ones by the chart", (name, values) => {
    const at = `at '/${name.replace(".", "/")}'`;
    for (const bad of ["0s", "0", "0.0m", "00ms", "10", "1h30m", "-1s", "1e3s", " 5s", "5 s", "5d"]) {
      const stderr = renderError(values(bad));
      expect({ bad, refused: stderr.includes("values don't meet the specifications of the schema") && stderr.includes(at) }).toEqual({ bad, refused: true });
    }
    // Positive to the schema, zero to the agent (it rounds to whole milliseconds).
    expect(renderError(values("0.0004s"))).toContain(`${name}: "0.0004s" is zero (under 1ms): the agent refuses it at start`);
  });

  test.each(DURATIONS)("%s: every duration the chart accepts, the agent parses to the same milliseconds", (_name, values, flag, field) => {
    for (const [text, ms] of [["1ms", 1], ["250ms", 250], ["0.5s", 500], ["0.0005s", 1], ["1.5h", 5_400_000], ["90s", 90_000], ["2m", 120_000], ["007s", 7_000]] as const) {
      const args = container(render(values(text))).args;
      expect(args).toContain(`--${flag}=${text}`);
      expect({ text, ms: (parseConfig(args, {}) as unknown as Record<string, unknown>)[field] }).toEqual({ text, ms });
    }
  });

  test("the schema's duration pattern accepts only what the agent parses as positive (or rounds to zero, which the chart refuses)", () => {
    const schema = JSON.parse(readFileSync(join(chartDir, "values.schema.json"), "utf8")) as { properties: Record<string, { pattern?: string }> };
    const pattern = new RegExp(schema.properties.resyncPeriod!.pattern!);
    let accepted = 0;
    for (const number of ["0", "1", "10", "0.1", "0.0", "1.0", "01", "00", "0.001", "0.0004", "12.50", ".5", "5.", "1e3", "-1", "+1", ""]) {
      for (const unit of ["", "ms", "s", "m", "h", "d", "us", "ns", "S"]) {
        const text = `${number}${unit}`;
        if (!pattern.test(text)) continue;
        accepted++;
        const agent = (() => {
          try {
            return (parseConfig([`--resync-period=${text}`], {}) as { resyncMs: number }).resyncMs;
          } catch {
            return "refused";
          }
        })();
        const subMillisecond = Number(number) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as "ms"] < 0.5;
        expect({ text, agent: subMillisecond ? "refused by the chart" : typeof agent }).toEqual({ text, agent: subMillisecond ? "refused by the chart" : "number" });
      }
    }
    expect(accepted).toBe(32); // 8 positive numbers x 4 units
  });

  test("retry.maxDelay below retry.baseDelay is refused, equal is accepted", () => {
    expect(renderError({ retry: { baseDelay: "1m", maxDelay: "30s" } })).toContain("retry.maxDelay (30s) is below retry.baseDelay (1m): the agent refuses this at start");
    expect(renderError({ retry: { baseDelay: "1.5h", maxDelay: "89m" } })).toContain("retry.maxDelay (89m) is below retry.baseDelay (1.5h)");
    expect(parseConfig(container(render({ retry: { baseDelay: "60s", maxDelay: "1m" } })).args, {})).toMatchObject({ retryBaseDelayMs: 60_000, retryMaxDelayMs: 60_000 });
  });

  test("metrics.port equal to health.port is refused; with metrics disabled the port is unused and accepted", () => {
    expect(renderError({ health: { port: 8080 } })).toContain("metrics.port and health.port are both 8080: the agent cannot listen twice on one port");
    expect(renderError({ metrics: { port: 9000 }, health: { port: 9000 } })).toContain("metrics.port and health.port are both 9000");
    const args = container(render({ metrics: { enabled: false }, health: { port: 8080 } })).args;
    expect(parseConfig(args, {})).toMatchObject({ metricsBindAddress: "0", healthProbeBindAddress: "0.0.0.0:8080" });
  });
});

describe("image", () => {
  const image = (objects: K8sObject[]) => container(objects).image;
  const version = (objects: K8sObject[]) => find(objects, "Deployment").metadata.labels!["app.kubernetes.io/version"];

  test("a tag YAML reads as a number with lost digits (1.20 -> 1.2) is refused with a clear message", () => {
    const r = helm(["template", release, chartDir, "--namespace", releaseNamespace, "-f", yamlValuesFile("image:\n  tag: 1.20\n")]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('image.tag is the number 1.2: YAML read a tag such as 1.20 as a number and dropped its digits; quote it (tag: "1.20") or use --set-string');
  });

  test.each([
    ["quoted in YAML", ["-f", "image:\n  tag: \"1.20\"\n"], "1.20"],
    ["--set (helm keeps 1.20 a string)", ["--set", "image.tag=1.20"], "1.20"],
    ["--set-string", ["--set-string", "image.tag=1.20"], "1.20"],
    ["a whole number in YAML (a build id, not 2.0240101e+07)", ["-f", "image:\n  tag: 20240101\n"], "20240101"],
    ["a whole number with --set", ["--set", "image.tag=20240101"], "20240101"],
    ["a string", ["-f", "image:\n  tag: v1.2.3\n"], "v1.2.3"],
  ])("tag %s renders exactly", (_name, [how, text], tag) => {
    const objects = render({}, how === "-f" ? ["-f", yamlValuesFile(text!)] : [how!, text!]);
    expect(image(objects)).toBe(`ghcr.io/cert-agent/cert-agent:${tag}`);
    expect(version(objects)).toBe(tag);
  });

  test("digest wins over the tag (repository@sha256:...); a malformed digest is refused", () => {
    const digest = `sha256:${"ab".repeat(32)}`;
    expect(image(render({ image: { digest } }))).toBe(`ghcr.io/cert-agent/cert-agent@${digest}`);
    expect(image(render({ image: { repository: "registry.example/agent", tag: "1.2.3", digest } }))).toBe(`registry.example/agent@${digest}`);
    expect(renderError({ image: { digest: "sha256:abc" } })).toMatch(/at '\/image\/digest'/);
    expect(renderError({ image: { digest: `sha512:${"ab".repeat(32)}` } })).toMatch(/at '\/image\/digest'/);
  });

  test("imagePullSecrets take [{name}] as in a pod spec, and plain names", () => {
    const pullSecrets = (objects: K8sObject[]) => (find<Deployment>(objects, "Deployment").spec.template.spec as { imagePullSecrets?: unknown }).imagePullSecrets;
    expect(pullSecrets(render())).toBeUndefined();
    expect(pullSecrets(render({ imagePullSecrets: [{ name: "regcred" }, "legacy"] }))).toEqual([{ name: "regcred" }, { name: "legacy" }]);
    expect(renderError({ imagePullSecrets: [{ nam: "typo" }] })).toMatch(/at '\/imagePullSecrets\/0'/);
    expect(renderError({ imagePullSecrets: [""] })).toMatch(/at '\/imagePullSecrets\/0'/);
  });
});

describe("PodDisruptionBudget (podDisruptionBudget.enabled)", () => {
  interface Pdb extends K8sObject { spec: { minAvailable?: number | string; maxUnavailable?: number | string; selector: { matchLabels: Record<string, string> } } }
  const pdb = (values: Record<string, unknown> = {}) => find<Pdb>(render({ podDisruptionBudget: { enabled: true, ...values } }), "PodDisruptionBudget");

  test("off by default", () => {
    expect(render().filter((o) => o.kind === "PodDisruptionBudget")).toEqual([]);
  });

  test("on: maxUnavailable 1 (never blocks a drain), selecting exactly the agent's pods", () => {
    const objects = render({ podDisruptionBudget: { enabled: true } });
    const p = find<Pdb>(objects, "PodDisruptionBudget");
    expect(p).toMatchObject({ apiVersion: "policy/v1", metadata: { name: fullname, namespace: releaseNamespace } });
    expect(p.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: find<Deployment>(objects, "Deployment").spec.selector.matchLabels } });
  });

  test("minAvailable or maxUnavailable, numbers or percentages; both is refused", () => {
    expect(pdb({ minAvailable: 1 }).spec).toMatchObject({ minAvailable: 1 });
    expect(pdb({ minAvailable: 1 }).spec.maxUnavailable).toBeUndefined();
    expect(pdb({ maxUnavailable: "50%" }).spec).toMatchObject({ maxUnavailable: "50%" });
    expect(pdb({ maxUnavailable: 0 }).spec).toMatchObject({ maxUnavailable: 0 });
    expect(renderError({ podDisruptionBudget: { enabled: true, minAvailable: 1, maxUnavailable: 1 } })).toContain("podDisruptionBudget: set minAvailable or maxUnavailable, not both");
    expect(renderError({ podDisruptionBudget: { enabled: true, minAvailable: "half" } })).toMatch(/at '\/podDisruptionBudget\/minAvailable'/);
    expect(renderError({ podDisruptionBudget: { enabled: true, maxUnavailable: -1 } })).toMatch(/at '\/podDisruptionBudget\/maxUnavailable'/);
  });
});

describe("ServiceMonitor (serviceMonitor.enabled)", () => {
  interface ServiceMonitor extends K8sObject {
    spec: { namespaceSelector: { matchNames: string[] }; selector: { matchLabels: Record<string, string> }; endpoints: Record<string, unknown>[] };
  }

  test("off by default", () => {
    expect(render().filter((o) => o.kind === "ServiceMonitor")).toEqual([]);
  });

  test("on: scrapes /metrics on the metrics Service's named port, and selects that Service only", () => {
    const objects = render({ serviceMonitor: { enabled: true, interval: "30s", scrapeTimeout: "10s", labels: { release: "kube-prometheus" },
      relabelings: [{ targetLabel: "cluster", replacement: "east" }] } });
    const sm = find<ServiceMonitor>(objects, "ServiceMonitor");
    expect(sm).toMatchObject({ apiVersion: "monitoring.coreos.com/v1", metadata: { name: fullname, namespace: releaseNamespace, labels: { release: "kube-prometheus" } } });
    expect(sm.spec.namespaceSelector).toEqual({ matchNames: [releaseNamespace] });
    expect(sm.spec.endpoints).toEqual([{ port: "metrics", path: "/metrics", scheme: "http", interval: "30s", scrapeTimeout: "10s",
      relabelings: [{ targetLabel: "cluster", replacement: "east" }] }]);
    const services = objects.filter((o) => o.kind === "Service" && Object.entries(sm.spec.selector.matchLabels).every(([k, v]) => o.metadata.labels?.[k] === v));
    expect(services.map((o) => o.metadata.name)).toEqual([`${fullname}-metrics`]);
    const port = (services[0] as K8sObject & { spec: { ports: { name: string }[] } }).spec.ports.map((p) => p.name);
    expect(port).toEqual(["metrics"]);
  });

  test("is refused without the metrics endpoint or its Service; a bad interval is refused", () => {
    expect(renderError({ serviceMonitor: { enabled: true }, metrics: { service: { enabled: false } } })).toContain("serviceMonitor.enabled=true requires metrics.enabled=true and metrics.service.enabled=true");
    expect(renderError({ serviceMonitor: { enabled: true }, metrics: { enabled: false } })).toContain("serviceMonitor.enabled=true requires");
    expect(renderError({ serviceMonitor: { enabled: true, interval: "30 seconds" } })).toMatch(/at '\/serviceMonitor\/interval'/);
  });
});

describe("topologySpreadConstraints", () => {
  test("passed to the pod; one without a labelSelector gets the release's pod selector", () => {
    const objects = render({ topologySpreadConstraints: [
      { maxSkew: 1, topologyKey: "topology.kubernetes.io/zone", whenUnsatisfiable: "ScheduleAnyway" },
      { maxSkew: 2, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "DoNotSchedule", labelSelector: { matchLabels: { app: "x" } } },
    ] });
    const deployment = find<Deployment>(objects, "Deployment");
    expect((deployment.spec.template.spec as { topologySpreadConstraints?: unknown }).topologySpreadConstraints).toEqual([
      { maxSkew: 1, topologyKey: "topology.kubernetes.io/zone", whenUnsatisfiable: "ScheduleAnyway", labelSelector: { matchLabels: deployment.spec.selector.matchLabels } },
      { maxSkew: 2, topologyKey: "kubernetes.io/hostname", whenUnsatisfiable: "DoNotSchedule", labelSelector: { matchLabels: { app: "x" } } },
    ]);
    expect((find<Deployment>(render(), "Deployment").spec.template.spec as { topologySpreadConstraints?: unknown }).topologySpreadConstraints).toBeUndefined();
    expect(renderError({ topologySpreadConstraints: [{ maxSkew: 1, topologyKey: "zone" }] })).toMatch(/at '\/topologySpreadConstraints\/0'/);
  });
});

describe("commonLabels and commonAnnotations", () => {
  const everything = {
    commonLabels: { team: "mesh", "app.kubernetes.io/name": "not-the-chart" },
    commonAnnotations: { "example.com/owner": "mesh", "example.com/shared": "common" },
    prometheusRule: { enabled: true, annotations: { "example.com/shared": "rule" } },
    serviceMonitor: { enabled: true },
    podDisruptionBudget: { enabled: true },
    serviceAccount: { annotations: { "eks.amazonaws.com/role-arn": "arn:x" } },
    metrics: { service: { annotations: { "example.com/shared": "service" } } },
  };

  test("on every rendered object; the chart's own labels and each object's own annotations win", () => {
    const objects = render(everything);
    expect(new Set(objects.map((o) => o.kind))).toEqual(new Set(["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Deployment", "Service",
      "PrometheusRule", "ServiceMonitor", "PodDisruptionBudget"]));
    for (const o of objects) {
      const id = `${o.kind}/${o.metadata.name}`;
      expect({ id, labels: o.metadata.labels }).toEqual({ id, labels: expect.objectContaining({ team: "mesh", "app.kubernetes.io/name": "cert-agent" }) });
      expect({ id, owner: (o.metadata as { annotations?: Record<string, string> }).annotations?.["example.com/owner"] }).toEqual({ id, owner: "mesh" });
    }
    const annotations = (kind: string) => (find(objects, kind).metadata as unknown as { annotations: Record<string, string> }).annotations;
    expect(annotations("PrometheusRule")["example.com/shared"]).toBe("rule");
    expect(annotations("Service")["example.com/shared"]).toBe("service");
    expect(annotations("Deployment")["example.com/shared"]).toBe("common");
    expect(annotations("ServiceAccount")).toEqual({ "eks.amazonaws.com/role-arn": "arn:x", "example.com/owner": "mesh", "example.com/shared": "common" });
  });

  test("pods get commonLabels (not in the immutable selector) but not commonAnnotations", () => {
    const deployment = find<Deployment>(render(everything), "Deployment");
    expect(deployment.spec.selector.matchLabels).toEqual({ "app.kubernetes.io/name": "cert-agent", "app.kubernetes.io/instance": release });
    expect(deployment.spec.template.metadata.labels).toMatchObject({ team: "mesh", "app.kubernetes.io/name": "cert-agent" });
    expect(deployment.spec.template.metadata.annotations).toBeUndefined();
  });

  test("none by default: no empty annotations blocks", () => {
    for (const o of render({ prometheusRule: { enabled: true }, serviceMonitor: { enabled: true }, podDisruptionBudget: { enabled: true } })) {
      expect({ id: `${o.kind}/${o.metadata.name}`, annotations: (o.metadata as { annotations?: unknown }).annotations }).toEqual({ id: `${o.kind}/${o.metadata.name}`, annotations: undefined });
    }
  });
});

describe("NOTES.txt and Chart.yaml say only what the agent does", () => {
  /** NOTES.txt as `helm install` prints it: rendered through a copy of the chart that outputs it as a ConfigMap. */
  function notes(values: Record<string, unknown> = {}): string {
    const copy = join(work, `notes-chart-${++valuesCount}`);
    cpSync(chartDir, copy, { recursive: true });
    writeFileSync(join(copy, "templates", "_notes-under-test.tpl"), `{{- define "notes-under-test" -}}\n${readFileSync(join(chartDir, "templates", "NOTES.txt"), "utf8")}{{- end }}\n`);
    writeFileSync(join(copy, "templates", "notes-under-test.yaml"), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: notes\ndata:\n  notes: {{ include "notes-under-test" . | toJson }}\n');
    const r = helm(["template", release, copy, "--namespace", releaseNamespace, "-f", valuesFile(values), "--show-only", "templates/notes-under-test.yaml"]);
    if (r.status !== 0) throw new Error(r.stderr);
    return (parse(r.stdout) as { data: { notes: string } }).data.notes;
  }

  test("the defaults: the image that runs, what happens per IssuedCertificate, where Secrets are, the CRD upgrade", () => {
    const text = notes();
    expect(text).toMatch(/^cert-agent \(ghcr\.io\/cert-agent\/cert-agent:0\.1\.0\) is installed as ca-cert-agent in namespace cert-agent\./);
    // The agent writes the secret the IssuedCertificate names; nothing defaults it.
    expect(text).not.toMatch(/by default istio-system\/cacerts/);
    expect(text).toContain("spec.issuedCertificateSecret names");
    expect(text).toContain(`Secrets: read and written only in istio-system, ${releaseNamespace} (--secret-namespaces).`);
    expect(text).toContain("kubectl apply --server-side -f charts/cert-agent/crds/");
    expect(text).toContain("restarts the pods that directive selects (rollout)");
    expect(text).not.toContain("Pods: restarted only in");
    expect(text).not.toContain("automountServiceAccountToken is false");
  });

  test("follows the values: image digest, watchNamespace, podNamespaces, no token, bounce strategy", () => {
    const digest = `sha256:${"cd".repeat(32)}`;
    const text = notes({ image: { digest }, watchNamespace: "mesh", rbac: { podNamespaces: ["istio-system", "gw"] }, automountServiceAccountToken: false, bounce: { strategy: "evict" } });
    expect(text).toContain(`(ghcr.io/cert-agent/cert-agent@${digest})`);
    expect(text).toContain("in namespace mesh.");
    expect(text).toContain("kubectl get issuedcertificates -n mesh");
    expect(text).toContain("Pods: restarted only in istio-system, gw (--pod-namespaces)");
    expect(text).toContain("automountServiceAccountToken is false");
    expect(text).toContain("(evict)");
  });

  test("Chart.yaml's kubeVersion admits the Kubernetes the e2e tests install on, and refuses older than 1.25", () => {
    const tested = readFileSync(join(repo, "e2e", "controlplane", "K8S_VERSION"), "utf8").trim();
    expect(helm(["template", release, chartDir, "--kube-version", tested]).status).toBe(0);
    const old = helm(["template", release, chartDir, "--kube-version", "v1.24.9"]);
    expect(old.status).not.toBe(0);
    expect(old.stderr).toContain("chart requires kubeVersion: >=1.25.0-0");
    const chart = parse(readFileSync(join(chartDir, "Chart.yaml"), "utf8")) as { description: string };
    // It names what the agent writes and restarts, not a fixed secret nor every pod.
    expect(chart.description).toContain("writes the secret the IssuedCertificate names");
    expect(chart.description).toContain("restarts the pods its PodBounceDirective selects");
  });
});
