// The pod bouncer on a control plane where pods really come and go (kube-scheduler, KWOK nodes,
// kube-controller-manager's Deployment/ReplicaSet controllers): istiod, a gateway and a workload
// Deployment restarted in order, the gateway only once its istio-ca-root-cert ConfigMap holds the new
// root (the test plays istiod and writes it late), for each strategy.
import { AppsV1Api, KubeConfig, PolicyV1Api } from "@kubernetes/client-node";
import { KEY_ALGORITHM_ANNOTATION } from "../agent/constants";
import { podBounceDirective } from "../shared/api/builders";
import { PodBounceDirective, POD_BOUNCE_DIRECTIVE } from "../shared/api/types";
import { CustomResourceClient } from "../shared/kube/custom-objects";
import { ControlPlaneWithNodes, READY_DELAY_ANNOTATION, startControlPlaneWithNodes } from "./controlplane/nodes";
import { describeWithControlPlane } from "./controlplane/testenv";
import {
  Clients,
  clients,
  createNamespace,
  createSigningSecret,
  decodeSecret,
  getSecretOrUndefined,
  InProcessAgent,
  loadKubeConfig,
  newIssuedCertificate,
  startInProcessAgent,
  startIssuer,
  waitFor,
  waitForState,
} from "./harness";
import { ReferenceIssuer } from "./issuer/issuer";
import { deployment, readyPods as readyPodsOf } from "./workloads";

jest.setTimeout(240_000);

describeWithControlPlane("pod bouncer on nodes", () => {
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

  it("evict: a PodDisruptionBudget-blocked eviction is retried and proceeds, waitForReplicas waits for slow replacements, and a second cycle bounces again", async () => {
    const ns = await createNamespace(c, "bounce-pdb");
    await createSigningSecret(c, ns);
    // Replacements take 2 s to become Ready; the PDB lets one of the two go at a time.
    await apps.createNamespacedDeployment({ namespace: ns, body: deployment("istiod", 2, { [READY_DELAY_ANNOTATION]: "2s" }) });
    await kc.makeApiClient(PolicyV1Api).createNamespacedPodDisruptionBudget({ namespace: ns, body: {
      metadata: { name: "istiod" }, spec: { minAvailable: 1, selector: { matchLabels: { app: "istiod" } } },
    } });
    await waitFor("istiod ready", async () => (await readyPods(ns, "istiod")).length === 2 || undefined, 60_000);
    await directives.create(ns, podBounceDirective("istio", ns, [{ namespace: ns, labels: { app: "istiod" }, waitForReplicas: 2 }]));
    const issuer = await startIssuer(kc, ns);
    const agent = await startInProcessAgent(kc, ["--namespace", ns, "--bounce-strategy", "evict"]);
    const bounceLines = () => agent.logs().split("\n").filter(Boolean).map((l) => JSON.parse(l)).filter((l) => l.message === "bounce").map((l) => `${l.reason}: ${l.detail}`);
    try {
      await c.issued.create(ns, newIssuedCertificate(ns, "mesh-ca", {
        annotations: { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" },
        podBounceDirective: { name: "istio", namespace: ns },
      }));
      await waitForState(c, ns, "mesh-ca", "FINISHED", 120_000);
      const first = bounceLines();
      expect(first.some((l) => /blocked by a PodDisruptionBudget; retrying/.test(l))).toBe(true);
      expect(first.some((l) => /[01] of 2 replacement pods Ready/.test(l))).toBe(true);
      expect(first.filter((l) => l.startsWith("PodsRestarted")).join("\n")).toMatch(/Pod\/istiod-/);
      const afterFirst = (await readyPods(ns, "istiod")).map((p) => p.metadata!.uid!);
      expect(afterFirst).toHaveLength(2);

      // A new issuance (a spec change) is a new cycle: podsBounced is reset and istiod restarts again.
      const ic = (await c.issued.get(ns, "mesh-ca"))!;
      ic.spec!.certOptions = { ...ic.spec!.certOptions, ttlDays: 30 };
      await c.issued.replace(ic);
      await waitFor("the second cycle to finish", async () => {
        const now = await c.issued.get(ns, "mesh-ca");
        return now?.status?.state === "FINISHED" && now.status.observedGeneration === 2 ? now : undefined;
      }, 120_000);
      const pods = await readyPods(ns, "istiod");
      expect(pods.every((p) => !afterFirst.includes(p.metadata!.uid!))).toBe(true);
      const directive = (await directives.get(ns, "istio"))!;
      expect(JSON.parse(directive.metadata.annotations!["cert-agent.io/bounce-progress"])).toMatchObject({ cycle: `${ns}/mesh-ca#2`, outcome: "done" });
    } finally {
      await agent.stop();
      await issuer.stop();
    }
  });

  it.each(["rollout", "evict", "delete"])("%s: istiod, then the gateway once its root is published, then the workload; each group once", async (strategy) => {
    const ns = await createNamespace(c, `bounce-${strategy}`);
    await createSigningSecret(c, ns);
    for (const [name, replicas] of [["istiod", 2], ["gateway", 1], ["web", 2]] as const) {
      await apps.createNamespacedDeployment({ namespace: ns, body: deployment(name, replicas) });
    }
    for (const [name, replicas] of [["istiod", 2], ["gateway", 1], ["web", 2]] as const) {
      await waitFor(`${name} ready`, async () => (await readyPods(ns, name)).length === replicas || undefined, 60_000);
    }
    const before = new Map<string, string[]>();
    for (const app of ["istiod", "gateway", "web"]) before.set(app, (await readyPods(ns, app)).map((p) => p.metadata!.uid!));

    await directives.create(ns, podBounceDirective("istio", ns, [
      { namespace: ns, labels: { app: "istiod" }, waitForReplicas: 1 },
      {
        namespace: ns,
        labels: { app: "gateway" },
        rootCertSync: {
          secretRef: { name: "cacerts", namespace: ns },
          secretKey: "root-cert.pem",
          configMapRef: { name: "istio-ca-root-cert", namespace: ns },
          configMapKey: "root-cert.pem",
        },
      },
      { namespace: ns, labels: { app: "web" } },
    ]));
    const issuer: ReferenceIssuer = await startIssuer(kc, ns);
    const agent: InProcessAgent = await startInProcessAgent(kc, ["--namespace", ns, "--bounce-strategy", strategy]);
    // For rollout: istiod (2 replicas, surge 1) must never drop below one Ready pod.
    let minIstiod = Number.POSITIVE_INFINITY;
    let polling = true;
    const poller = (async () => {
      while (polling) minIstiod = Math.min(minIstiod, (await readyPods(ns, "istiod")).length);
    })();
    try {
      const started = Date.now();
      await c.issued.create(ns, newIssuedCertificate(ns, "mesh-ca", {
        annotations: { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" },
        podBounceDirective: { name: "istio", namespace: ns },
      }));
      // The gateway waits for the root istiod publishes: play istiod, late.
      await waitFor("the bouncer to wait for the ConfigMap", async () =>
        /waiting for ConfigMap .*istio-ca-root-cert/.test(agent.logs()) || undefined, 120_000);
      // ... and the IssuedCertificate's status says so while it is ISSUED.
      await waitFor("the wait in status", async () => {
        const status = (await c.issued.get(ns, "mesh-ca"))?.status;
        return status?.state === "ISSUED" && status.error === `pods of PodBounceDirective ${ns}/istio being restarted: pods in ${ns} with app=gateway: waiting for ConfigMap ${ns}/istio-ca-root-cert` || undefined;
      }, 30_000);
      const root = decodeSecret((await getSecretOrUndefined(c, ns, "cacerts"))!)["root-cert.pem"];
      await c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "istio-ca-root-cert" }, data: { "root-cert.pem": root } } });
      await waitForState(c, ns, "mesh-ca", "FINISHED", 180_000);
      console.log(`[figure] ${strategy}: IssuedCertificate created -> FINISHED with a three-group bounce in ${Date.now() - started} ms`);

      // Order: each group restarted once, istiod before the gateway before the workload.
      const restarts = agent.logs().split("\n").filter(Boolean).map((l) => JSON.parse(l))
        .filter((l) => l.message === "bounce" && l.reason === "PodsRestarted").map((l) => String(l.detail));
      const groups = restarts.map((d) => (d.includes("app=istiod") ? "istiod" : d.includes("app=gateway") ? "gateway" : "web"));
      expect([...new Set(groups)]).toEqual(["istiod", "gateway", "web"]);
      const configMapWrittenBefore = restarts.findIndex((d) => d.includes("app=gateway"));
      expect(configMapWrittenBefore).toBeGreaterThan(0);
      // Every pod that ran before the bounce has been replaced.
      for (const app of ["istiod", "gateway", "web"]) {
        await waitFor(`${app} replaced`, async () => {
          const now = await readyPods(ns, app);
          return now.length > 0 && now.every((p) => !before.get(app)!.includes(p.metadata!.uid!)) || undefined;
        }, 60_000);
      }
      const directive = (await directives.get(ns, "istio"))!;
      expect(directive.status?.podsBounced).toHaveLength(3);
      if (strategy === "rollout") expect(minIstiod).toBeGreaterThanOrEqual(1);
    } finally {
      polling = false;
      await poller;
      await agent.stop();
      await issuer.stop();
    }
  });
});
