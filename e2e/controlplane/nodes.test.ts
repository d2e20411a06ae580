// Pods on KWOK's fake Nodes, scheduled by the real kube-scheduler and owned by the real controllers.
// One private control plane with 3 Nodes serves every test here; the tests run in order.
import * as k8s from "@kubernetes/client-node";
import * as fs from "node:fs";
import * as path from "node:path";
import type { ComponentExitedError } from "./controlplane";
import { NODE_SET_LABEL, READY_ANNOTATION, READY_DELAY_ANNOTATION, startControlPlaneWithNodes, type ControlPlaneWithNodes } from "./nodes";
import { describeWithControlPlane, eventually } from "./testenv";

jest.setTimeout(120_000);

const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);

const isReady = (p: k8s.V1Pod): boolean => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;
const live = (pods: k8s.V1Pod[]): k8s.V1Pod[] => pods.filter((p) => !p.metadata?.deletionTimestamp);
const names = (objects: { metadata?: k8s.V1ObjectMeta }[]): string[] => objects.map((o) => o.metadata!.name!).sort();

function apiErrorCode(e: unknown): number | undefined {
  return e instanceof k8s.ApiException ? e.code : undefined;
}

describeWithControlPlane("startControlPlaneWithNodes (kube-scheduler + KWOK)", () => {
  let cp: ControlPlaneWithNodes;
  let core: k8s.CoreV1Api;
  let apps: k8s.AppsV1Api;
  let policy: k8s.PolicyV1Api;
  const ns = "nodes-test";
  const app = "web";
  const report: string[] = [];

  /** fn's value once it is defined; fails at once if a component (nodes included) has exited. */
  const until = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> =>
    eventually(what, fn, { controlPlane: cp, intervalMs: 25, timeoutMs });

  const pods = async (selector = `app=${app}`): Promise<k8s.V1Pod[]> =>
    (await core.listNamespacedPod({ namespace: ns, labelSelector: selector })).items;

  /** The Deployment's live Pods once there are exactly n, all Ready and none terminating. */
  const readyPods = (n: number, what: string): Promise<k8s.V1Pod[]> =>
    until(what, async () => {
      const all = await pods();
      return all.length === n && all.every((p) => isReady(p) && !p.metadata?.deletionTimestamp) ? all : undefined;
    });

  const evict = (name: string): Promise<unknown> =>
    core.createNamespacedPodEviction({
      name,
      namespace: ns,
      body: { apiVersion: "policy/v1", kind: "Eviction", metadata: { name, namespace: ns } },
    });

  const podSpec = (): k8s.V1PodSpec => ({
    // KWOK runs no containers, so the image is never pulled.
    containers: [{ name: "app", image: "registry.invalid/never-pulled:1" }],
    terminationGracePeriodSeconds: 30,
  });

  beforeAll(async () => {
    const t0 = Date.now();
    cp = await startControlPlaneWithNodes({ crdDir: false, nodes: 3 });
    const total = Date.now() - t0;
    const t = cp.timings;
    report.push(
      `control plane + 3 nodes ready in ${total}ms; the nodes took ${t.nodesReady - t.crdsReady}ms of it, after the rest ` +
        `(kube-scheduler ready ${cp.nodes.timings.schedulerReady}ms, nodes Ready ${cp.nodes.timings.nodesReady}ms)`,
    );
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.kubeconfigPath);
    core = kc.makeApiClient(k8s.CoreV1Api);
    apps = kc.makeApiClient(k8s.AppsV1Api);
    policy = kc.makeApiClient(k8s.PolicyV1Api);
    await core.createNamespace({ body: { metadata: { name: ns } } });
    // The serviceaccount controller creates "default"; Pods are rejected until it exists.
    await until("the default ServiceAccount", async () => (await core.readNamespacedServiceAccount({ name: "default", namespace: ns })) ?? undefined);
  });

  afterAll(async () => {
    await cp?.stop();
    if (report.length > 0) console.log(report.join("\n"));
  });

  test("3 Nodes, Ready, managed by kwok, without taints", async () => {
    const nodes = (await core.listNode({ labelSelector: `${NODE_SET_LABEL}=${cp.nodes.setId}` })).items;
    expect(names(nodes)).toEqual(["kwok-node-0", "kwok-node-1", "kwok-node-2"]);
    for (const n of nodes) {
      expect(n.status?.conditions?.find((c) => c.type === "Ready")?.status).toBe("True");
      expect(n.spec?.taints ?? []).toEqual([]);
      expect(n.metadata?.annotations?.["kwok.x-k8s.io/node"]).toBe("fake");
      expect(n.status?.allocatable).toMatchObject({ cpu: "32", memory: "256Gi", pods: "110" });
    }
    const { scheduler, kwok } = cp.nodes.pids();
    expect(scheduler).toBeGreaterThan(0);
    expect(cp.pids()).toMatchObject({ scheduler, kwok });
    // In the pidfile too, so a run killed outright has them swept by the next start.
    const pidfile = JSON.parse(fs.readFileSync(path.join(cp.dataDir, "pids.json"), "utf8")) as { components: Record<string, number> };
    expect(pidfile.components).toMatchObject({ "kube-scheduler": scheduler, kwok });
  });

  test("a bare Pod is scheduled and goes Pending -> Running -> Ready", async () => {
    const t0 = Date.now();
    await core.createNamespacedPod({ namespace: ns, body: { metadata: { name: "bare", labels: { role: "bare" } }, spec: podSpec() } });
    const running = await until("Pod bare Running", async () => {
      const p = await core.readNamespacedPod({ name: "bare", namespace: ns });
      return p.status?.phase === "Running" ? Date.now() - t0 : undefined;
    });
    const pod = await until("Pod bare Ready", async () => {
      const p = await core.readNamespacedPod({ name: "bare", namespace: ns });
      return isReady(p) ? p : undefined;
    });
    const ready = Date.now() - t0;
    report.push(`bare Pod: Running ${running}ms, Ready ${ready}ms after create (polled every 25 ms)`);
    expect(pod.spec?.nodeName).toMatch(/^kwok-node-\d$/);
    expect(pod.status?.podIP).toMatch(/^10\.244\./);
    expect(pod.status?.containerStatuses?.[0]).toMatchObject({ name: "app", ready: true, started: true });
    expect(ready).toBeLessThan(5_000);
    await core.deleteNamespacedPod({ name: "bare", namespace: ns });
    await until("Pod bare deleted", async () => ((await pods("role=bare")).length === 0 ? true : undefined));
  });

  test("a Deployment of 2 replicas becomes 2 Ready Pods", async () => {
    const t0 = Date.now();
    await apps.createNamespacedDeployment({
      namespace: ns,
      body: {
        metadata: { name: app },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app } },
          template: { metadata: { labels: { app } }, spec: podSpec() },
        },
      },
    });
    const ready = await readyPods(2, "2 Ready Pods of the Deployment");
    report.push(`Deployment of 2: both Pods Ready ${Date.now() - t0}ms after create`);
    expect(ready.every((p) => p.metadata?.ownerReferences?.[0]?.kind === "ReplicaSet")).toBe(true);
    await until("Deployment available", async () => {
      const d = await apps.readNamespacedDeployment({ name: app, namespace: ns });
      return d.status?.availableReplicas === 2 ? d : undefined;
    });
  });

  test("a deleted Pod is replaced by the ReplicaSet", async () => {
    const before = names(await readyPods(2, "2 Ready Pods"));
    const t0 = Date.now();
    await core.deleteNamespacedPod({ name: before[0]!, namespace: ns });
    const after = await until("a replacement, Ready, and the deleted Pod gone", async () => {
      const all = await pods();
      const now = names(all);
      return all.length === 2 && all.every(isReady) && !now.includes(before[0]!) && now.includes(before[1]!) ? now : undefined;
    });
    report.push(`deleted Pod replaced and Ready ${Date.now() - t0}ms after the delete`);
    expect(after).not.toContain(before[0]);
  });

  test(`a Pod annotated ${READY_ANNOTATION}: "false" runs unready until the annotation goes`, async () => {
    await core.createNamespacedPod({
      namespace: ns,
      body: { metadata: { name: "held", labels: { role: "held" }, annotations: { [READY_ANNOTATION]: "false" } }, spec: podSpec() },
    });
    // A twin without the annotation, created after it: once the twin is Ready, KWOK has long played
    // every Stage the held Pod would get (it handles Pods in order, without delay). No sleep needed.
    await core.createNamespacedPod({ namespace: ns, body: { metadata: { name: "twin", labels: { role: "held" } }, spec: podSpec() } });
    await until("Pod twin Ready", async () => (isReady(await core.readNamespacedPod({ name: "twin", namespace: ns })) ? true : undefined));
    const held = await core.readNamespacedPod({ name: "held", namespace: ns });
    expect(held.status?.phase).toBe("Running");
    expect(isReady(held)).toBe(false);
    expect(held.status?.containerStatuses?.[0]).toMatchObject({ ready: false, started: true });

    await core.patchNamespacedPod({ name: "held", namespace: ns, body: { metadata: { annotations: { [READY_ANNOTATION]: null } } } }, merge);
    await until("Pod held Ready once the annotation is removed", async () =>
      isReady(await core.readNamespacedPod({ name: "held", namespace: ns })) ? true : undefined,
    );

    // And back: annotating a Ready Pod makes it unready.
    await core.patchNamespacedPod({ name: "held", namespace: ns, body: { metadata: { annotations: { [READY_ANNOTATION]: "false" } } } }, merge);
    await until("Pod held unready again", async () => {
      const p = await core.readNamespacedPod({ name: "held", namespace: ns });
      return p.status?.phase === "Running" && !isReady(p) ? p : undefined;
    });
    await core.deleteCollectionNamespacedPod({ namespace: ns, labelSelector: "role=held" });
  });

  test(`${READY_DELAY_ANNOTATION} delays readiness; ${READY_ANNOTATION}: "false" set meanwhile withholds it`, async () => {
    const create = (name: string): Promise<unknown> =>
      core.createNamespacedPod({
        namespace: ns,
        body: { metadata: { name, labels: { role: "delay" }, annotations: { [READY_DELAY_ANNOTATION]: "2s" } }, spec: podSpec() },
      });
    // "late" first: its 2 s are up before "slow"'s are.
    await create("late");
    await create("slow");
    const running = await until("Pods slow and late Running", async () => {
      const all = await pods("role=delay");
      return all.length === 2 && all.every((p) => p.status?.phase === "Running") ? Date.now() : undefined;
    });
    await core.patchNamespacedPod({ name: "late", namespace: ns, body: { metadata: { annotations: { [READY_ANNOTATION]: "false" } } } }, merge);
    expect((await pods("role=delay")).filter(isReady)).toEqual([]);
    await until("Pod slow Ready", async () => (isReady(await core.readNamespacedPod({ name: "slow", namespace: ns })) ? true : undefined));
    const waited = Date.now() - running;
    report.push(`ready-delay 2s: Ready ${waited}ms after Running was seen`);
    expect(waited).toBeGreaterThanOrEqual(1_500);
    // The readiness "late" had queued for the same moment was dropped when the annotation came.
    // Not even for a moment: Ready=False since it started (a flip to True and back would have
    // moved lastTransitionTime ~2 s past startTime).
    const late = await core.readNamespacedPod({ name: "late", namespace: ns });
    const readyCondition = late.status?.conditions?.find((c) => c.type === "Ready");
    expect(readyCondition?.status).toBe("False");
    expect(readyCondition?.lastTransitionTime).toEqual(late.status?.startTime);
    await core.deleteCollectionNamespacedPod({ namespace: ns, labelSelector: "role=delay" });
  });

  test("a PodDisruptionBudget (minAvailable 2) refuses an Eviction with 429 at 2 replicas and allows one at 3", async () => {
    await policy.createNamespacedPodDisruptionBudget({
      namespace: ns,
      body: { metadata: { name: app }, spec: { minAvailable: 2, selector: { matchLabels: { app } } } },
    });
    const pdbStatus = (allowed: number, healthy: number): Promise<k8s.V1PodDisruptionBudgetStatus> =>
      until(`PDB status: ${healthy} healthy, ${allowed} disruptions allowed`, async () => {
        const pdb = await policy.readNamespacedPodDisruptionBudget({ name: app, namespace: ns });
        const s = pdb.status;
        return s && s.observedGeneration === pdb.metadata?.generation && s.currentHealthy === healthy && s.disruptionsAllowed === allowed
          ? s
          : undefined;
      });
    await pdbStatus(0, 2);
    const [victim] = names(await readyPods(2, "2 Ready Pods"));
    const refused = await evict(victim!).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(apiErrorCode(refused)).toBe(429);
    expect(String((refused as k8s.ApiException<unknown>).body)).toMatch(/disruption budget/);
    expect(live(await pods()).map((p) => p.metadata!.name)).toContain(victim);

    await apps.patchNamespacedDeployment({ name: app, namespace: ns, body: { spec: { replicas: 3 } } }, merge);
    await readyPods(3, "3 Ready Pods");
    await pdbStatus(1, 3);
    await evict(victim!);
    await until("the evicted Pod replaced, 3 Ready again", async () => {
      const all = await pods();
      return all.length === 3 && all.every(isReady) && !names(all).includes(victim!) ? all : undefined;
    });
  });

  test("a rollout restart (template annotation restartedAt) replaces every Pod", async () => {
    const before = names(await readyPods(3, "3 Ready Pods"));
    const t0 = Date.now();
    await apps.patchNamespacedDeployment(
      {
        name: app,
        namespace: ns,
        body: { spec: { template: { metadata: { annotations: { "kubectl.kubernetes.io/restartedAt": new Date().toISOString() } } } } },
      },
      merge,
    );
    const after = await until("every Pod replaced and the rollout complete", async () => {
      const d = await apps.readNamespacedDeployment({ name: app, namespace: ns });
      const s = d.status;
      if (!(s && s.observedGeneration! >= d.metadata!.generation! && s.updatedReplicas === 3 && s.readyReplicas === 3 && s.replicas === 3)) return undefined;
      const all = await pods();
      return all.length === 3 && all.every(isReady) && names(all).every((n) => !before.includes(n)) ? all : undefined;
    });
    report.push(`rollout restart of 3 Pods complete ${Date.now() - t0}ms after the patch`);
    const rs = (await apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: `app=${app}` })).items;
    expect(rs).toHaveLength(2);
    expect(after.every((p) => p.metadata?.annotations?.["kubectl.kubernetes.io/restartedAt"])).toBe(true);
    expect(cp.failure).toBeUndefined();
  });

  test("kwok exiting on its own is reported at once, with its log tail", async () => {
    const reported = new Promise<ComponentExitedError>((resolve) => cp.onComponentExit(resolve));
    process.kill(cp.nodes.pids().kwok!, "SIGKILL");
    const failure = await reported;
    expect(failure).toMatchObject({ component: "kwok", signal: "SIGKILL", status: "killed by SIGKILL" });
    expect(failure.logTail).toMatch(/Patch pod/);
    expect(cp.failure).toBe(failure);
    await expect(until("anything", async () => undefined)).rejects.toThrow(/gave up waiting for anything: kwok killed by SIGKILL/);
  });
});
