// The launcher against real binaries. One private control plane serves every test here (each costs
// seconds and memory); the tests run in order and the last one stops it.
import * as k8s from "@kubernetes/client-node";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { startControlPlane, type ControlPlane } from "./controlplane";
import { isAlive } from "./proc";
import { describeWithControlPlane } from "./testenv";

jest.setTimeout(120_000);

async function eventually<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${String(last)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
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
    const list = await eventually(() => saCore.listNamespacedConfigMap({ namespace: ns }), "the RoleBinding to apply", 20_000);
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
      () =>
        core.readNamespacedConfigMap({ namespace: ns, name: "dependent" }).then(
          () => undefined,
          (e: unknown) => (apiErrorCode(e) === 404 ? true : undefined),
        ),
      "the dependent ConfigMap to be garbage-collected",
    );
  });

  test("namespace deletion completes (the namespace controller empties it)", async () => {
    await core.createNamespace({ body: { metadata: { name: "doomed" } } });
    await core.createNamespacedConfigMap({ namespace: "doomed", body: { metadata: { name: "x" } } });
    await core.deleteNamespace({ name: "doomed" });
    await eventually(
      () =>
        core.readNamespace({ name: "doomed" }).then(
          () => undefined,
          (e: unknown) => (apiErrorCode(e) === 404 ? true : undefined),
        ),
      "namespace doomed to disappear",
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
  });
});
