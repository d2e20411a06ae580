// The chart installed with the real `helm install` on a local control plane with KWOK nodes (issue 9):
// the CRDs come from the chart's crds/ directory, the release namespace enforces the restricted Pod
// Security Standard (the PodSecurity admission plugin is on by default: checked with a pod it refuses
// there and admits elsewhere), and the Deployment's pod is admitted, scheduled and Running (KWOK plays the kubelet,
// so no image is pulled and no agent runs: the pod's spec is what is checked). The RBAC objects are
// asked what they allow (SubjectAccessReviews as the ServiceAccount), and the ServiceAccount creates
// and renews its Lease as the agent would. Then `helm upgrade` with other values rolls the Deployment
// (new arguments in every new pod, 2 replicas), and `helm uninstall` removes every object of the
// release and leaves the CRDs, the custom resources, a target secret the agent wrote and the Lease.
import { AppsV1Api, AuthorizationV1Api, CoordinationV1Api, CoreV1Api, KubeConfig, V1Pod } from "@kubernetes/client-node";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ISSUED_SECRET_TYPE, KEY_ALGORITHM_ANNOTATION, MANAGED_BY_LABEL, MANAGED_BY_VALUE, OWNER_ANNOTATION } from "../agent/constants";
import { parseConfig } from "../agent/config";
import { CHART_DIR, helmBinary, helmEnv, refusal, writeValues } from "./chart-rbac";
import { ControlPlaneWithNodes, startControlPlaneWithNodes } from "./controlplane/nodes";
import { describeWithControlPlane } from "./controlplane/testenv";
import { clients, Clients, createNamespace, loadKubeConfig, newIssuedCertificate, waitFor } from "./harness";

jest.setTimeout(120_000);

const RELEASE = "ca";
const FULLNAME = "ca-cert-agent";
const INSTANCE = `app.kubernetes.io/instance=${RELEASE}`;
/** Now as a Kubernetes MicroTime (six fractional digits), as a Lease's times are written. */
const microTime = () => new Date().toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
const CRDS = ["certificaterequests.certificates.mesh.gloo.solo.io", "issuedcertificates.certificates.mesh.gloo.solo.io", "podbouncedirectives.certificates.mesh.gloo.solo.io"];

describeWithControlPlane("helm install, upgrade and uninstall of the chart on a control plane with KWOK nodes", () => {
  let cp: ControlPlaneWithNodes;
  let kc: KubeConfig;
  let c: Clients;
  let apps: AppsV1Api;
  let helmHome: string;
  let releaseNs: string;
  let meshNs: string;
  let targetNs: string;
  let values: Record<string, unknown>;

  /** The real helm against this control plane, its own cache/config/data; resolves to stdout, rejects with stderr. */
  function helm(args: string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(helmBinary(), args, { env: helmEnv(helmHome, cp.kubeconfigPath), timeout: 100_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`helm ${args.join(" ")} failed: ${err.message.split("\n")[0]}\n${stderr}`));
        else resolve(stdout);
      });
    });
  }

  /** Can the chart's ServiceAccount do this? (A SubjectAccessReview, the question kubectl auth can-i --as asks.) */
  async function canI(verb: string, resource: string, namespace: string | undefined, name?: string, subresource?: string): Promise<boolean> {
    const [plural, ...group] = resource.split(".");
    const review = await kc.makeApiClient(AuthorizationV1Api).createSubjectAccessReview({ body: { spec: {
      user: `system:serviceaccount:${releaseNs}:${FULLNAME}`,
      groups: ["system:serviceaccounts", `system:serviceaccounts:${releaseNs}`, "system:authenticated"],
      resourceAttributes: { verb, group: group.join("."), resource: plural, subresource, namespace, name },
    } } });
    return review.status?.allowed === true;
  }

  const agentPods = async (): Promise<V1Pod[]> =>
    (await c.core.listNamespacedPod({ namespace: releaseNs, labelSelector: `app.kubernetes.io/name=cert-agent,${INSTANCE}` })).items
      .filter((p) => !p.metadata?.deletionTimestamp);
  const isReady = (p: V1Pod) => p.status?.phase === "Running" && (p.status.conditions ?? []).some((x) => x.type === "Ready" && x.status === "True");

  beforeAll(async () => {
    // The chart's CRDs come from helm (crds/), not from the control plane.
    cp = await startControlPlaneWithNodes({ nodes: 1, crdDir: false });
    kc = loadKubeConfig(cp.kubeconfigPath);
    c = clients(kc);
    apps = kc.makeApiClient(AppsV1Api);
    helmHome = mkdtempSync(join(tmpdir(), "cert-agent-helm-home-"));
    releaseNs = await createNamespace(c, "helm-agent");
    await cp.kubectl(["label", "namespace", releaseNs, "pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/enforce-version=latest"]);
    meshNs = await createNamespace(c, "helm-mesh");
    targetNs = await createNamespace(c, "helm-istio");
    values = {
      // KWOK never pulls an image: any name will do.
      image: { repository: "example.invalid/cert-agent", tag: "e2e" },
      watchNamespace: meshNs,
      rbac: { secretNamespaces: [targetNs], podNamespaces: [targetNs] },
    };
  });

  afterAll(async () => {
    await cp?.stop();
    if (helmHome) rmSync(helmHome, { recursive: true, force: true });
  });

  it("the PodSecurity admission plugin enforces restricted in the release namespace (a pod with default security settings is refused)", async () => {
    // A privileged container would not do: kube-apiserver runs without --allow-privileged, so its
    // validation refuses one in every namespace (422) before Pod Security is asked. A pod with the
    // default security settings is fine for the baseline profile and violates restricted four ways.
    const plain: V1Pod = { metadata: { name: "plain" }, spec: { containers: [{ name: "c", image: "example.invalid/x" }] } };
    const refused = await refusal(() => c.core.createNamespacedPod({ namespace: releaseNs, body: plain }));
    expect(refused.code).toBe(403);
    expect(refused.message).toContain('violates PodSecurity \\"restricted:latest\\"');
    for (const rule of ["allowPrivilegeEscalation != false", "unrestricted capabilities", "runAsNonRoot != true", "seccompProfile"]) expect(refused.message).toContain(rule);
    // The same pod where nothing is enforced is admitted: the label is what refused it.
    await c.core.createNamespacedPod({ namespace: targetNs, body: plain });
    await c.core.deleteNamespacedPod({ namespace: targetNs, name: "plain" });
  });

  it("helm install: the CRDs from crds/, the pod admitted under restricted, scheduled and Running on a KWOK node, the RBAC and Lease rights", async () => {
    const out = await helm(["install", RELEASE, CHART_DIR, "--namespace", releaseNs, "-f", writeValues(helmHome, values, "install.json"), "--wait", "--timeout", "90s"]);
    // NOTES.txt, as printed, names the image that runs and the CRD upgrade.
    expect(out).toContain(`cert-agent (example.invalid/cert-agent:e2e) is installed as ${FULLNAME} in namespace ${releaseNs}.`);
    expect(out).toContain("kubectl apply --server-side -f charts/cert-agent/crds/");
    expect(JSON.parse(await helm(["list", "--namespace", releaseNs, "-o", "json"]))).toEqual([expect.objectContaining({ name: RELEASE, status: "deployed", revision: "1" })]);

    const crds = (await cp.kubectl(["get", "crd", "-o", "jsonpath={.items[*].metadata.name}"])).split(" ").sort();
    expect(crds).toEqual(CRDS);

    const pods = await agentPods();
    expect(pods).toHaveLength(1);
    const pod = pods[0]!;
    expect(cp.nodes.names).toContain(pod.spec!.nodeName);
    expect(isReady(pod)).toBe(true);
    expect(pod.spec!.serviceAccountName).toBe(FULLNAME);
    expect(pod.spec!.automountServiceAccountToken).toBe(true);
    const container = pod.spec!.containers[0]!;
    expect(container.image).toBe("example.invalid/cert-agent:e2e");
    expect(parseConfig(container.args!, {})).toMatchObject({ namespace: meshNs, secretNamespaces: [targetNs, meshNs], podNamespaces: [targetNs], leaderElect: true,
      leaderElectionNamespace: releaseNs, leaderElectionId: FULLNAME, logLevel: "info" });

    // The release's objects, where the chart puts them.
    const ids: string[] = [];
    for (const ns of [releaseNs, meshNs, targetNs]) {
      for (const kind of ["serviceaccounts", "roles", "rolebindings", "services", "deployments"]) {
        const names = (await cp.kubectl(["get", kind, "-n", ns, "-l", INSTANCE, "-o", "jsonpath={.items[*].metadata.name}"])).split(" ").filter(Boolean);
        ids.push(...names.map((n) => `${kind}/${ns === releaseNs ? "release" : ns === meshNs ? "mesh" : "target"}/${n}`));
      }
    }
    expect(ids.sort()).toEqual([
      `deployments/release/${FULLNAME}`,
      `rolebindings/mesh/${FULLNAME}`,
      `rolebindings/release/${FULLNAME}-leader-election`,
      `rolebindings/target/${FULLNAME}`,
      `roles/mesh/${FULLNAME}`,
      `roles/release/${FULLNAME}-leader-election`,
      `roles/target/${FULLNAME}`,
      `serviceaccounts/release/${FULLNAME}`,
      `services/release/${FULLNAME}-metrics`,
    ].sort());
    expect(await cp.kubectl(["get", "clusterroles,clusterrolebindings", "-l", INSTANCE, "-o", "name"])).toBe("");

    // What the installed RBAC lets the ServiceAccount do, and not do.
    expect({
      "create leases (release namespace)": await canI("create", "leases.coordination.k8s.io", releaseNs),
      "update its Lease": await canI("update", "leases.coordination.k8s.io", releaseNs, FULLNAME),
      "update another Lease": await canI("update", "leases.coordination.k8s.io", releaseNs, "other"),
      "update issuedcertificates/finalizers (watched namespace)": await canI("update", "issuedcertificates.certificates.mesh.gloo.solo.io", meshNs, "any", "finalizers"),
      "create secrets (target namespace)": await canI("create", "secrets", targetNs),
      "create secrets (release namespace)": await canI("create", "secrets", releaseNs),
      "list secrets (all namespaces)": await canI("list", "secrets", undefined),
      "delete pods (rollout strategy)": await canI("delete", "pods", targetNs),
      "create pods/eviction (target namespace)": await canI("create", "pods", targetNs, "any", "eviction"),
    }).toEqual({
      "create leases (release namespace)": true,
      "update its Lease": true,
      "update another Lease": false,
      "update issuedcertificates/finalizers (watched namespace)": true,
      "create secrets (target namespace)": true,
      "create secrets (release namespace)": false,
      "list secrets (all namespaces)": false,
      "delete pods (rollout strategy)": false,
      "create pods/eviction (target namespace)": true,
    });

    // The Lease, as the agent takes and renews it, with the ServiceAccount's own rights (impersonated).
    const as = ["--as", `system:serviceaccount:${releaseNs}:${FULLNAME}`];
    const lease = { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: FULLNAME, namespace: releaseNs },
      spec: { holderIdentity: pod.metadata!.name, leaseDurationSeconds: 15, acquireTime: microTime(), renewTime: microTime() } };
    await cp.kubectl([...as, "create", "-f", "-"], { input: JSON.stringify(lease) });
    // Renewed with an update (PUT), the verb the agent uses; the Role grants no patch.
    const created = JSON.parse(await cp.kubectl([...as, "get", "lease", "-n", releaseNs, FULLNAME, "-o", "json"])) as typeof lease;
    await cp.kubectl([...as, "replace", "-f", "-"], { input: JSON.stringify({ ...created, spec: { ...created.spec, renewTime: microTime() } }) });
    await expect(cp.kubectl([...as, "annotate", "lease", "-n", releaseNs, FULLNAME, "patched=yes"])).rejects.toThrow(/cannot patch resource "leases"/);
    await expect(cp.kubectl([...as, "create", "-f", "-"], { input: JSON.stringify({ ...lease, metadata: { ...lease.metadata, name: "x" } }) })).resolves.toContain("created");
    await expect(cp.kubectl([...as, "delete", "lease", "-n", releaseNs, "x"])).rejects.toThrow(/forbidden/);
  });

  it("helm upgrade with logLevel=debug and replicas=2 rolls the Deployment: every new pod carries the new arguments", async () => {
    const before = (await agentPods()).map((p) => p.metadata!.name!);
    const generation = (await apps.readNamespacedDeployment({ name: FULLNAME, namespace: releaseNs })).metadata!.generation!;
    await helm(["upgrade", RELEASE, CHART_DIR, "--namespace", releaseNs, "-f", writeValues(helmHome, { ...values, logLevel: "debug", replicas: 2 }, "upgrade.json"),
      "--wait", "--timeout", "90s"]);
    expect(JSON.parse(await helm(["list", "--namespace", releaseNs, "-o", "json"]))).toEqual([expect.objectContaining({ name: RELEASE, status: "deployed", revision: "2" })]);

    const deployment = await apps.readNamespacedDeployment({ name: FULLNAME, namespace: releaseNs });
    expect(deployment.metadata!.generation).toBeGreaterThan(generation);
    expect(deployment.spec!.template.spec!.containers[0]!.args).toContain("--log-level=debug");
    // The rollout finishes: two ready pods, all of the new template, none of the old.
    const pods = await waitFor("the rollout to finish", async () => {
      const d = await apps.readNamespacedDeployment({ name: FULLNAME, namespace: releaseNs });
      const current = await agentPods();
      return d.status?.observedGeneration === d.metadata!.generation && d.status?.updatedReplicas === 2 && d.status.readyReplicas === 2 &&
        current.length === 2 && current.every(isReady) ? current : undefined;
    }, 60_000);
    for (const pod of pods) {
      expect(before).not.toContain(pod.metadata!.name);
      expect(parseConfig(pod.spec!.containers[0]!.args!, {})).toMatchObject({ logLevel: "debug", leaderElect: true });
    }
  });

  it("helm uninstall removes the release's objects and leaves the CRDs, the custom resources, the agent's target secret and the Lease", async () => {
    // What the agent would have written: an IssuedCertificate's target secret (labelled as the agent's) and its Lease (above).
    await c.issued.create(meshNs, newIssuedCertificate(meshNs, "mesh-ca", { annotations: { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" }, target: { name: "cacerts", namespace: targetNs } }));
    await c.core.createNamespacedSecret({ namespace: targetNs, body: { metadata: { name: "cacerts", labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
      annotations: { [OWNER_ANNOTATION]: `${meshNs}/mesh-ca` } }, type: ISSUED_SECRET_TYPE, stringData: { "ca-cert.pem": "..." } } });

    await helm(["uninstall", RELEASE, "--namespace", releaseNs, "--wait", "--timeout", "90s"]);
    expect(JSON.parse(await helm(["list", "--all", "--namespace", releaseNs, "-o", "json"]))).toEqual([]);
    // What helm created is gone when uninstall --wait returns; the ReplicaSets and pods follow (garbage collector, KWOK).
    for (const ns of [releaseNs, meshNs, targetNs]) {
      expect({ ns, left: await cp.kubectl(["get", "serviceaccounts,roles,rolebindings,services,deployments,poddisruptionbudgets", "-n", ns, "-l", INSTANCE, "-o", "name"]) })
        .toEqual({ ns, left: "" });
    }
    await waitFor("the ReplicaSets and agent pods to be gone", async () =>
      (await cp.kubectl(["get", "replicasets,pods", "-n", releaseNs, "-l", INSTANCE, "-o", "name"])) === "" || undefined);

    // Left behind, on purpose: Helm never deletes crds/, so the custom resources stay too ...
    expect((await cp.kubectl(["get", "crd", "-o", "jsonpath={.items[*].metadata.name}"])).split(" ").sort()).toEqual(CRDS);
    expect(await c.issued.get(meshNs, "mesh-ca")).toBeDefined();
    // ... Istio's CA secret keeps serving ...
    const target = await c.core.readNamespacedSecret({ namespace: targetNs, name: "cacerts" });
    expect(target.metadata!.labels).toMatchObject({ [MANAGED_BY_LABEL]: MANAGED_BY_VALUE });
    // ... and the agent's Lease (the agent creates it, not the chart).
    expect((await kc.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: FULLNAME, namespace: releaseNs })).spec!.holderIdentity).toBeTruthy();
    // The ServiceAccount is gone, and its name has no rights left (the bindings went with the release).
    expect(await canI("create", "leases.coordination.k8s.io", releaseNs)).toBe(false);
    expect(await canI("create", "secrets", targetNs)).toBe(false);
    expect(await kc.makeApiClient(CoreV1Api).listNamespacedServiceAccount({ namespace: releaseNs, fieldSelector: `metadata.name=${FULLNAME}` }).then((l) => l.items)).toEqual([]);
  });
});
