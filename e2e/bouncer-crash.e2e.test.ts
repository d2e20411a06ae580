// The real agent process SIGKILLed at each step of a pod bounce resumes without restarting any group
// twice (the original's endless istiod delete loop). The steps, each made to last so the kill lands
// inside it, not by timing:
//   1. between recording a group (status.podsBounced) and restarting it: the first agent runs as a
//      ServiceAccount that may do everything but the restart itself (delete pods / update
//      Deployments), so it records istiod and is stuck on Forbidden when killed;
//   2. after the restart, while waiting for a replacement istiod to become Ready (it takes 4 s);
//   3. while the gateway waits for istiod to publish the new root (the test publishes it only after
//      the kill).
// A pod watch over the whole run records every pod that was ever deleted: that must be exactly the
// pods that ran before the bounce, each group's once; a replacement deleted would be a second restart.
import { AppsV1Api, KubeConfig, RbacAuthorizationV1Api, V1Pod, Watch } from "@kubernetes/client-node";
import { BOUNCE_PROGRESS_ANNOTATION, KEY_ALGORITHM_ANNOTATION } from "../agent/constants";
import { podBounceDirective } from "../shared/api/builders";
import { PodBounceDirective, POD_BOUNCE_DIRECTIVE } from "../shared/api/types";
import { CustomResourceClient } from "../shared/kube/custom-objects";
import { ControlPlaneWithNodes, READY_DELAY_ANNOTATION, startControlPlaneWithNodes } from "./controlplane/nodes";
import { describeWithControlPlane } from "./controlplane/testenv";
import {
  AgentProcess,
  Clients,
  clients,
  createNamespace,
  createSigningSecret,
  decodeSecret,
  getSecretOrUndefined,
  loadKubeConfig,
  newIssuedCertificate,
  spawnAgent,
  startIssuer,
  waitFor,
  waitForState,
} from "./harness";
import { deployment, readyPods as readyPodsOf } from "./workloads";

jest.setTimeout(240_000);

const APPS = [["istiod", 2], ["gateway", 1], ["web", 2]] as const;

// Every pod, replacements included, becomes Ready 4 s after it runs: step 2 lasts that long.
const READY_IN_4S = { [READY_DELAY_ANNOTATION]: "4s" };

/** Everything the agent needs except the restart verbs (pods delete, pods/eviction, workload writes). */
const RULES_WITHOUT_RESTART = [
  { apiGroups: ["certificates.mesh.gloo.solo.io"], resources: ["*"], verbs: ["*"] },
  { apiGroups: [""], resources: ["secrets", "events"], verbs: ["*"] },
  { apiGroups: [""], resources: ["pods", "configmaps"], verbs: ["get", "list", "watch"] },
  { apiGroups: ["apps"], resources: ["replicasets", "deployments", "statefulsets", "daemonsets"], verbs: ["get", "list", "watch"] },
  { apiGroups: ["events.k8s.io"], resources: ["events"], verbs: ["*"] },
];

describeWithControlPlane("pod bouncer: the agent SIGKILLed at each step of a bounce", () => {
  let cp: ControlPlaneWithNodes;
  let kc: KubeConfig;
  let c: Clients;
  let apps: AppsV1Api;
  let directives: CustomResourceClient<PodBounceDirective>;

  beforeAll(async () => {
    cp = await startControlPlaneWithNodes({ nodes: 3 });
    kc = loadKubeConfig(cp.kubeconfigPath);
    c = clients(kc);
    apps = kc.makeApiClient(AppsV1Api);
    directives = new CustomResourceClient(kc, POD_BOUNCE_DIRECTIVE);
  });
  afterAll(async () => {
    await cp?.stop();
  });

  const readyPods = (namespace: string, app: string) => readyPodsOf(c.core, namespace, app);

  /** A kubeconfig for a ServiceAccount bound to RULES_WITHOUT_RESTART, cluster-wide (the bouncer watches pods everywhere). */
  async function kubeconfigWithoutRestart(ns: string): Promise<string> {
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createClusterRole({ body: { metadata: { name: `${ns}-no-restart` }, rules: RULES_WITHOUT_RESTART } });
    await rbac.createClusterRoleBinding({ body: {
      metadata: { name: `${ns}-no-restart` },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: `${ns}-no-restart` },
      subjects: [{ kind: "ServiceAccount", name: "agent", namespace: ns }],
    } });
    return cp.kubeconfigForServiceAccount(ns, "agent");
  }

  /** Every pod uid ever deleted or marked for deletion in ns, from a watch started now. */
  async function watchDeletions(ns: string): Promise<{ deleted: Set<string>; stop(): void; failure(): unknown }> {
    const deleted = new Set<string>();
    let failure: unknown;
    let stopped = false;
    const { metadata } = await c.core.listNamespacedPod({ namespace: ns });
    const request = await new Watch(kc).watch(`/api/v1/namespaces/${ns}/pods`, { resourceVersion: metadata?.resourceVersion },
      (type: string, pod: V1Pod) => {
        if (type === "DELETED" || pod.metadata?.deletionTimestamp) deleted.add(pod.metadata!.uid!);
      },
      (err: unknown) => {
        if (!stopped) failure = err ?? new Error("the pod watch ended early");
      });
    return { deleted, failure: () => failure, stop: () => { stopped = true; request.abort(); } };
  }

  const progressOf = async (ns: string) => {
    const text = (await directives.get(ns, "istio"))?.metadata.annotations?.[BOUNCE_PROGRESS_ANNOTATION];
    return text ? (JSON.parse(text) as { outcome: string; message: string }) : undefined;
  };

  it.each(["delete", "rollout"])("%s: killed after a record, after a restart and during a wait, every group is restarted exactly once", async (strategy) => {
    const ns = await createNamespace(c, `bounce-kill-${strategy}`);
    await createSigningSecret(c, ns);
    for (const [name, replicas] of APPS) await apps.createNamespacedDeployment({ namespace: ns, body: deployment(name, replicas, READY_IN_4S) });
    const before = new Map<string, string[]>();
    for (const [name, replicas] of APPS) {
      before.set(name, (await waitFor(`${name} ready`, async () => {
        const pods = await readyPods(ns, name);
        return pods.length === replicas ? pods : undefined;
      }, 60_000)).map((p) => p.metadata!.uid!));
    }
    const originals = new Set([...before.values()].flat());
    await directives.create(ns, podBounceDirective("istio", ns, [
      { namespace: ns, labels: { app: "istiod" }, waitForReplicas: 1 },
      { namespace: ns, labels: { app: "gateway" }, rootCertSync: {
        secretRef: { name: "cacerts", namespace: ns }, secretKey: "root-cert.pem",
        configMapRef: { name: "istio-ca-root-cert", namespace: ns }, configMapKey: "root-cert.pem",
      } },
      { namespace: ns, labels: { app: "web" } },
    ]));
    const deletions = await watchDeletions(ns);
    const issuer = await startIssuer(kc, ns);
    const agents: AgentProcess[] = [];
    const run = (kubeconfig: string) => {
      const agent = spawnAgent(kubeconfig, ["--namespace", ns, "--bounce-strategy", strategy]);
      agents.push(agent);
      return agent;
    };
    const kill = async (agent: AgentProcess) => expect(await agent.stop("SIGKILL")).toBeNull();
    try {
      // Step 1: recorded, not restarted (the restart is Forbidden for this agent).
      const first = run(await kubeconfigWithoutRestart(ns));
      await c.issued.create(ns, newIssuedCertificate(ns, "mesh-ca", {
        annotations: { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" },
        podBounceDirective: { name: "istio", namespace: ns },
      }));
      await waitFor("istiod recorded and its restart refused", async () =>
        (await directives.get(ns, "istio"))?.status?.podsBounced?.length === 1 && /forbidden/i.test(first.output()) || undefined, 120_000);
      await kill(first);
      expect(deletions.deleted.size).toBe(0);
      expect((await directives.get(ns, "istio"))!.status!.podsBounced![0].bouncedPods!.length).toBe(2);

      // Step 2: restarted, waiting for a Ready replacement.
      const second = run(cp.kubeconfigPath);
      await waitFor("istiod restarted, the bouncer waiting for it", async () => {
        const progress = await progressOf(ns);
        return progress?.outcome === "waiting" && /app=istiod: (0 of 1 replacement pods Ready|waiting for the rollout)/.test(progress.message) || undefined;
      }, 60_000);
      await kill(second);

      // Step 3: istiod done, the gateway waiting for the new root.
      const third = run(cp.kubeconfigPath);
      await waitFor("the gateway waiting for the root", async () =>
        /app=gateway: waiting for ConfigMap/.test((await progressOf(ns))?.message ?? "") || undefined, 60_000);
      await kill(third);
      expect((await directives.get(ns, "istio"))!.status!.podsBounced).toHaveLength(1);

      // Play istiod: publish the root, then let a last agent finish.
      const root = decodeSecret((await getSecretOrUndefined(c, ns, "cacerts"))!)["root-cert.pem"];
      await c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "istio-ca-root-cert" }, data: { "root-cert.pem": root } } });
      const last = run(cp.kubeconfigPath);
      await waitForState(c, ns, "mesh-ca", "FINISHED", 120_000);
      for (const [name] of APPS) {
        await waitFor(`${name} replaced`, async () => {
          const now = await readyPods(ns, name);
          return now.length > 0 && now.every((p) => !originals.has(p.metadata!.uid!)) || undefined;
        }, 60_000);
      }
      await kill(last);

      // Every original pod went, once; no replacement ever did (that would be a second restart).
      expect(deletions.failure()).toBeUndefined();
      expect([...deletions.deleted].filter((uid) => !originals.has(uid))).toEqual([]);
      expect([...originals].filter((uid) => !deletions.deleted.has(uid))).toEqual([]);
      // Each group reported restarted once, across the four processes.
      const restarts = agents.flatMap((a) => a.output().split("\n")).filter((l) => l.includes('"reason":"PodsRestarted"'))
        .map((l) => /app=(\w+)/.exec(JSON.parse(l).detail)![1]);
      expect(restarts).toEqual(["istiod", "gateway", "web"]);
      if (strategy === "rollout") {
        // One restart per Deployment: the original ReplicaSet and one new one.
        for (const [name] of APPS) {
          const sets = (await apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: `app=${name}` })).items;
          expect(sets).toHaveLength(2);
        }
      }
      expect((await directives.get(ns, "istio"))!.status!.podsBounced).toHaveLength(3);
    } finally {
      deletions.stop();
      for (const agent of agents) await agent.stop("SIGKILL");
      await issuer.stop();
    }
  });
});
