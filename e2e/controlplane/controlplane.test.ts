// The launcher against real binaries. One private control plane serves every test here (each costs
// seconds and memory); the tests run in order and the last one stops it.
import * as k8s from "@kubernetes/client-node";
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { resolveBinDir } from "./binaries";
import { ComponentExitedError, EXIT_LOG_TAIL_LINES, startControlPlane, type ControlPlane } from "./controlplane";
import { recordComponentExits } from "./jest-global-setup";
import { isAlive } from "./proc";
import { repoRoot } from "./repo";
import {
  assertSharedControlPlaneRunning,
  describeWithControlPlane,
  eventually,
  FAILURE_FILE_ENV,
  sharedControlPlaneFailure,
} from "./testenv";

jest.setTimeout(120_000);

/** Resolves with the next component exit cp reports; rejects if none comes within ms. */
function nextComponentExit(cp: ControlPlane, ms: number): Promise<ComponentExitedError> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      forget();
      reject(new Error(`no component exit reported within ${ms} ms`));
    }, ms);
    const forget = cp.onComponentExit((failure) => {
      clearTimeout(timer);
      forget();
      resolve(failure);
    });
  });
}

function apiErrorCode(e: unknown): number | undefined {
  return e instanceof k8s.ApiException ? e.code : undefined;
}

/** The message of the Status the server answered with (ApiException.body is its raw JSON text). */
function statusMessage(e: unknown): string {
  const body = (e as k8s.ApiException<unknown>).body;
  return (JSON.parse(String(body)) as { message: string }).message;
}

interface WatchOutcome {
  type: string;
  object: { code?: number; reason?: string; message?: string; metadata?: { name?: string } };
}

/** Opens a watch on one ConfigMap from resourceVersion and resolves with the first event. */
async function firstWatchEvent(kc: k8s.KubeConfig, ns: string, name: string, resourceVersion: string): Promise<WatchOutcome> {
  let abort: AbortController | undefined;
  try {
    return await new Promise<WatchOutcome>((resolve, reject) => {
      new k8s.Watch(kc)
        .watch(
          `/api/v1/namespaces/${ns}/configmaps`,
          { resourceVersion, fieldSelector: `metadata.name=${name}` },
          (type, object) => resolve({ type, object: object as WatchOutcome["object"] }),
          (err) => reject(err ?? new Error("watch ended without an event")),
        )
        .then((a) => (abort = a), reject);
    });
  } finally {
    abort?.abort();
  }
}

describeWithControlPlane("startControlPlane", () => {
  let cp: ControlPlane;
  let kc: k8s.KubeConfig;
  let core: k8s.CoreV1Api;
  let ns: string;

  beforeAll(async () => {
    cp = await startControlPlane({ crdDir: false });
    kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
    ns = "cp-test";
    await core.createNamespace({ body: { metadata: { name: ns } } });
  });

  afterAll(async () => {
    await cp?.stop();
  });

  test("serves the API on loopback over TLS to the admin kubeconfig, and kubectl works", async () => {
    expect(cp.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "hello" }, data: { k: "v" } } });
    const got = await core.readNamespacedConfigMap({ namespace: ns, name: "hello" });
    expect(got.data).toEqual({ k: "v" });
    const out = await cp.kubectl(["get", "configmap", "hello", "-n", ns, "-o", "jsonpath={.data.k}"]);
    expect(out).toBe("v");
    // kubectl's errors carry the server's message.
    await expect(cp.kubectl(["get", "configmap", "nope", "-n", ns])).rejects.toThrow(/not found/);
  });

  test("reports the Kubernetes version it was built from: /version, kubectl, the other components, helm", async () => {
    // build.sh stamps it; unstamped, the server said v0.0.0-master+$Format:%H$ and helm refused
    // every chart with a kubeVersion constraint.
    const version = fs.readFileSync(path.join(repoRoot(), "e2e", "controlplane", "K8S_VERSION"), "utf8").trim();
    const [, major, minor] = /^v(\d+)\.(\d+)\.\d+$/.exec(version)!;
    const info = await kc.makeApiClient(k8s.VersionApi).getCode();
    expect(info).toMatchObject({ gitVersion: version, major, minor, gitTreeState: "clean" });
    expect(info.gitCommit).toMatch(/^[0-9a-f]{40}$/);
    expect(info.buildDate).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    const kubectlVersion = JSON.parse(await cp.kubectl(["version", "-o", "json"])) as { serverVersion: { gitVersion: string } };
    expect(kubectlVersion.serverVersion.gitVersion).toBe(version);

    const binDir = await resolveBinDir(undefined, ["kube-controller-manager", "kube-scheduler"]);
    for (const bin of ["kube-apiserver", "kube-controller-manager", "kube-scheduler"]) {
      expect(execFileSync(path.join(binDir, bin), ["--version"], { encoding: "utf8" }).trim()).toBe(`Kubernetes ${version}`);
    }

    // helm checks a chart's kubeVersion against the server's: a chart of its own, so the project's
    // chart (edited elsewhere) does not decide this test.
    const helm = execFileSync("bash", [path.join(repoRoot(), "charts", "build-helm.sh")], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "inherit"],
      timeout: 20 * 60_000,
    }).trim();
    const chart = fs.mkdtempSync(path.join(os.tmpdir(), "cert-agent-kubeversion-chart-"));
    try {
      fs.mkdirSync(path.join(chart, "templates"));
      fs.writeFileSync(path.join(chart, "Chart.yaml"), `apiVersion: v2\nname: needs-kube\nversion: 0.1.0\nkubeVersion: ">=1.25.0-0"\n`);
      fs.writeFileSync(
        path.join(chart, "templates", "cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: needs-kube\ndata:\n  kube: {{ .Capabilities.KubeVersion.Version | quote }}\n",
      );
      const out = execFileSync(helm, ["install", "needs-kube", chart, "--namespace", ns, "--dry-run=server", "--kubeconfig", cp.kubeconfigPath], {
        encoding: "utf8",
        env: { ...process.env, KUBECONFIG: "", HELM_CACHE_HOME: path.join(chart, ".cache"), HELM_CONFIG_HOME: path.join(chart, ".config"), HELM_DATA_HOME: path.join(chart, ".data") },
        timeout: 60_000,
      });
      expect(out).toContain(`kube: "${version}"`);
    } finally {
      fs.rmSync(chart, { recursive: true, force: true });
    }
  }, 21 * 60_000);

  test("an API server restart keeps the port, the certificates and the data", async () => {
    const server = cp.server;
    const before = cp.pids().apiServer;
    await cp.stopApiServer();
    expect(cp.pids().apiServer).toBeUndefined();
    await expect(core.readNamespacedConfigMap({ namespace: ns, name: "hello" })).rejects.toThrow();
    await cp.startApiServer();
    expect(cp.server).toBe(server);
    expect(cp.pids().apiServer).not.toBe(before);
    // Same client, same kubeconfig: the CA and client certificate still verify.
    const got = await core.readNamespacedConfigMap({ namespace: ns, name: "hello" });
    expect(got.data).toEqual({ k: "v" });
    // Asked for: not a failure.
    expect(cp.failure).toBeUndefined();
  });

  test("compactEtcd makes a watch from an older resourceVersion fail with 410 Gone", async () => {
    const created = await core.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: "watched" }, data: { n: "0" } },
    });
    const oldRv = created.metadata!.resourceVersion!;
    await core.patchNamespacedConfigMap(
      { namespace: ns, name: "watched", body: [{ op: "replace", path: "/data/n", value: "1" }] },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.JsonPatch),
    );

    // Control: before compaction the same watch replays the update.
    const replay = await firstWatchEvent(kc, ns, "watched", oldRv);
    expect(replay.type).toBe("MODIFIED");

    const revision = await cp.compactEtcd();
    expect(revision).toBeGreaterThan(Number(oldRv));

    const expired = await firstWatchEvent(kc, ns, "watched", oldRv);
    expect(expired.type).toBe("ERROR");
    expect(expired.object.code).toBe(410);
    expect(expired.object.reason).toBe("Expired");
  });

  test("a service-account kubeconfig is denied without RBAC and allowed after a RoleBinding", async () => {
    const file = await cp.kubeconfigForServiceAccount(ns, "reader");
    expect(fs.existsSync(file)).toBe(true);
    const saKc = new k8s.KubeConfig();
    saKc.loadFromFile(file);
    const saCore = saKc.makeApiClient(k8s.CoreV1Api);

    const denied = await saCore.listNamespacedConfigMap({ namespace: ns }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(apiErrorCode(denied)).toBe(403);
    expect(statusMessage(denied)).toContain(
      `User "system:serviceaccount:${ns}:reader" cannot list resource "configmaps"`,
    );

    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: ns,
      body: {
        metadata: { name: "configmap-reader" },
        rules: [{ apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list"] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns,
      body: {
        metadata: { name: "reader" },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "configmap-reader" },
        subjects: [{ kind: "ServiceAccount", name: "reader", namespace: ns }],
      },
    });
    // The RBAC authorizer reads bindings from an informer: allow it a moment to see the new one.
    const list = await eventually("the RoleBinding to apply", () => saCore.listNamespacedConfigMap({ namespace: ns }), {
      timeoutMs: 20_000,
      controlPlane: cp,
    });
    expect(list.items.map((c) => c.metadata?.name)).toContain("hello");
    // Still only what the Role grants.
    await expect(saCore.deleteNamespacedConfigMap({ namespace: ns, name: "hello" })).rejects.toMatchObject({ code: 403 });
    // The same kubeconfig works for kubectl too.
    expect(await cp.kubectl(["get", "configmaps", "-n", ns, "-o", "name"], { kubeconfig: file })).toContain("configmap/hello");
  });

  test("the garbage collector deletes a ConfigMap whose owner was deleted", async () => {
    const owner = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "owner" } } });
    await core.createNamespacedConfigMap({
      namespace: ns,
      body: {
        metadata: {
          name: "dependent",
          ownerReferences: [{ apiVersion: "v1", kind: "ConfigMap", name: "owner", uid: owner.metadata!.uid! }],
        },
      },
    });
    await core.deleteNamespacedConfigMap({ namespace: ns, name: "owner" });
    await eventually(
      "the dependent ConfigMap to be garbage-collected",
      () =>
        core.readNamespacedConfigMap({ namespace: ns, name: "dependent" }).then(
          () => undefined,
          (e: unknown) => (apiErrorCode(e) === 404 ? true : undefined),
        ),
      { controlPlane: cp },
    );
  });

  test("namespace deletion completes (the namespace controller empties it)", async () => {
    await core.createNamespace({ body: { metadata: { name: "doomed" } } });
    await core.createNamespacedConfigMap({ namespace: "doomed", body: { metadata: { name: "x" } } });
    await core.deleteNamespace({ name: "doomed" });
    await eventually(
      "namespace doomed to disappear",
      () =>
        core.readNamespace({ name: "doomed" }).then(
          () => undefined,
          (e: unknown) => (apiErrorCode(e) === 404 ? true : undefined),
        ),
      { controlPlane: cp },
    );
  });

  test("a component that fails to start is reported with its log, and nothing is left behind", async () => {
    const ownDirs = (): string[] =>
      fs
        .readdirSync(os.tmpdir())
        .filter((e) => e.startsWith("cert-agent-cp-"))
        .filter((e) => {
          try {
            const pidfile = JSON.parse(fs.readFileSync(path.join(os.tmpdir(), e, "pids.json"), "utf8")) as { owner: number };
            return pidfile.owner === process.pid;
          } catch {
            return false;
          }
        });
    const before = ownDirs();
    await expect(
      startControlPlane({ crdDir: false, controllerManager: false, apiServerFlags: ["--no-such-flag"] }),
    ).rejects.toThrow(/kube-apiserver exited with code 1;[^]*unknown flag: --no-such-flag/);
    expect(ownDirs()).toEqual(before);
  });

  test("stop() ends every component and removes the data dir; it is idempotent", async () => {
    const pids = cp.pids();
    const all = [pids.etcd, pids.apiServer, pids.controllerManager];
    expect(all.every((p) => typeof p === "number")).toBe(true);
    const pidfile = JSON.parse(fs.readFileSync(`${cp.dataDir}/pids.json`, "utf8")) as {
      owner: number;
      components: Record<string, number>;
    };
    expect(pidfile.owner).toBe(process.pid);
    expect(Object.values(pidfile.components).sort()).toEqual([...all].sort());

    await cp.stop();
    for (const pid of all) expect(isAlive(pid!)).toBe(false);
    expect(cp.pids()).toEqual({ etcd: undefined, apiServer: undefined, controllerManager: undefined });
    expect(fs.existsSync(cp.dataDir)).toBe(false);
    await cp.stop();
    expect(cp.failure).toBeUndefined();
  });
});

describeWithControlPlane("a control plane whose component exits", () => {
  let cp: ControlPlane;
  let failureFile: string;
  let reported: ComponentExitedError;
  const envBefore = process.env[FAILURE_FILE_ENV];

  beforeAll(async () => {
    cp = await startControlPlane({ crdDir: false });
    // Wired as the Jest global setup wires the shared control plane, so testenv's helpers can be
    // pointed at this one.
    failureFile = recordComponentExits(cp, path.join(cp.dataDir, "component-exit.txt"));
  });

  afterAll(async () => {
    if (envBefore === undefined) delete process.env[FAILURE_FILE_ENV];
    else process.env[FAILURE_FILE_ENV] = envBefore;
    await cp?.stop();
  });

  // The flake's cause: kube-controller-manager gives up and exits (code 1, "Error building controller
  // context ... failed to wait for apiserver being healthy") when the API server is unhealthy for
  // 10 s before its controllers are built. start() used to return before that point, so an API
  // server restart right after it (slow on a busy machine) could kill it. start() now waits for it.
  test("kube-controller-manager outlives an API server that is down for longer than its 10 s start-up allowance", async () => {
    const pid = cp.pids().controllerManager;
    await cp.stopApiServer();
    // A deliberate outage of a fixed length (longer than kube-controller-manager's 10 s), not a wait
    // for something; an exit meanwhile makes startApiServer() reject at once with its log tail.
    await new Promise((r) => setTimeout(r, 11_000));
    await cp.startApiServer();
    expect(cp.failure).toBeUndefined();
    expect(cp.pids().controllerManager).toBe(pid);
  });

  test("a component that exits is reported at once with its log tail", async () => {
    const pid = cp.pids().controllerManager!;
    const log = path.join(cp.dataDir, "kube-controller-manager.log");
    expect(cp.failure).toBeUndefined();

    const report = nextComponentExit(cp, 3_000); // the bound: rejects unless reported within 3 s
    process.kill(pid, "SIGKILL");
    reported = await report;

    expect(reported).toBeInstanceOf(ComponentExitedError);
    expect(reported.component).toBe("kube-controller-manager");
    expect(reported.signal).toBe("SIGKILL");
    expect(reported.code).toBeNull();
    expect(reported.logFile).toBe(log);
    // Exactly the last lines of its log (which no longer changes), klog lines of its own among them.
    const lines = fs.readFileSync(log, "utf8").trimEnd().split("\n");
    expect(reported.logTail).toBe(lines.slice(-EXIT_LOG_TAIL_LINES).join("\n"));
    expect(reported.logTail).toMatch(/^[IWE]\d{4} /m);
    expect(reported.message).toMatch(/^kube-controller-manager killed by SIGKILL; \S+kube-controller-manager\.log ends with:\n/);
    expect(reported.message.endsWith(reported.logTail)).toBe(true);
    // The same report stays on the control plane; the other components keep running.
    expect(cp.failure).toBe(reported);
    expect(cp.pids().controllerManager).toBeUndefined();
    expect(isAlive(cp.pids().apiServer!)).toBe(true);
    expect(isAlive(cp.pids().etcd!)).toBe(true);
  });

  test("waits fail at once with that report instead of timing out", async () => {
    expect(reported).toBeDefined();
    const started = Date.now();
    const waiting = eventually("something that never happens", async () => undefined, { controlPlane: cp });
    await expect(waiting).rejects.toThrow(/^gave up waiting for something that never happens: kube-controller-manager killed by SIGKILL/);
    await expect(waiting).rejects.toThrow(reported.logTail);
    expect(Date.now() - started).toBeLessThan(1_000);

    // Across processes, as Jest workers see the shared control plane: the report is in the file.
    expect(fs.readFileSync(failureFile, "utf8")).toBe(reported.message);
    process.env[FAILURE_FILE_ENV] = failureFile;
    expect(sharedControlPlaneFailure()).toBe(reported.message);
    expect(() => assertSharedControlPlaneRunning()).toThrow(/kube-controller-manager killed by SIGKILL/);
    await expect(eventually("something that never happens", async () => undefined)).rejects.toThrow(reported.message);
    expect(Date.now() - started).toBeLessThan(1_000);
  });
});
