// The Helm chart, checked with the real helm CLI: `helm lint`, `helm template` with several value
// sets, and values.schema.json rejecting bad values with helm's own error. There is no helm package
// on these machines, so charts/build-helm.sh builds it from the Go module proxy once (~2 min cold)
// into a cache outside the work tree. Nothing here needs a cluster.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
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

/** `helm template` with the given values; throws with helm's stderr on failure. */
function render(values: Record<string, unknown> = {}): K8sObject[] {
  const r = helm(["template", release, chartDir, "--namespace", releaseNamespace, "-f", valuesFile(values)]);
  if (r.status !== 0) throw new Error(`helm template failed (${r.status}): ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`helm template printed invalid YAML: ${doc.errors[0]!.message}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

/** `helm template` expected to fail; returns helm's stderr. */
function renderError(values: Record<string, unknown>): string {
  const r = helm(["template", release, chartDir, "--namespace", releaseNamespace, "-f", valuesFile(values)]);
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
    ]);
    // In-cluster config is the default: the chart never points the agent at a kubeconfig.
    expect(c.args.some((a) => a.startsWith("--kubeconfig"))).toBe(false);
    expect(c.env.some((e) => e.name === "KUBECONFIG")).toBe(false);
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
