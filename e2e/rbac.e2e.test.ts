// The agent run with exactly the chart's RBAC, and nothing more (issue 9, least privilege): the real
// helm renders the chart (watchNamespace and rbac.secretNamespaces set, as a platform team would),
// its ServiceAccount, Roles and bindings are applied server-side, a TokenRequest token for that
// ServiceAccount is the agent's only credential, and the agent runs with the chart's own arguments.
// Proven: the whole workflow, leader election and a bounce work; an IssuedCertificate whose target is
// outside --secret-namespaces fails SecretNamespaceNotWatched without a key; and what the agent may
// not do is refused by the API server with 403.
import { CoreV1Api, KubeConfig, V1Pod } from "@kubernetes/client-node";
import { FAILURE_REASON_ANNOTATION, KEY_ALGORITHM_ANNOTATION, Reason } from "../agent/constants";
import { podBounceDirective } from "../shared/api/builders";
import { CERTIFICATE_REQUEST, CertificateRequest, POD_BOUNCE_DIRECTIVE, PodBounceDirective } from "../shared/api/types";
import { CustomResourceClient } from "../shared/kube/custom-objects";
import { applyServerSide, chartArgs, chartArgsWithoutListeners, helmTemplate, rbacObjects, serviceAccountKubeConfig, statusOf } from "./chart-rbac";
import { describeWithControlPlane, sharedKubeConfig, sharedKubectl } from "./controlplane/testenv";
import {
  clients,
  Clients,
  createNamespace,
  createSigningSecret,
  decodeSecret,
  fetchText,
  getSecretOrUndefined,
  InProcessAgent,
  newIssuedCertificate,
  opensslCheckBundle,
  startInProcessAgent,
  startIssuer,
  waitFor,
  waitForState,
  forbiddenInLogs,
} from "./harness";
import type { ReferenceIssuer } from "./issuer/issuer";

jest.setTimeout(240_000);

const RELEASE = "ca";
const FULLNAME = "ca-cert-agent";
const P256 = { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" };

describeWithControlPlane("the agent with exactly the chart's RBAC (a TokenRequest token, nothing else)", () => {
  let admin: Clients;
  let agentNs: string;
  let meshNs: string;
  let targetNs: string;
  let otherNs: string;
  let sa: KubeConfig;
  let args: string[];
  let agent: InProcessAgent | undefined;
  let issuer: ReferenceIssuer | undefined;

  beforeAll(async () => {
    admin = clients(sharedKubeConfig());
    agentNs = await createNamespace(admin, "rbac-agent");
    meshNs = await createNamespace(admin, "rbac-mesh");
    targetNs = await createNamespace(admin, "rbac-istio");
    otherNs = await createNamespace(admin, "rbac-other");
    const objects = helmTemplate(RELEASE, agentNs, { watchNamespace: meshNs, rbac: { secretNamespaces: [targetNs], podNamespaces: [targetNs] } });
    // The ServiceAccount and every RBAC object, applied server-side as `helm install` would create them.
    const rbac = rbacObjects(objects);
    expect(rbac.map((o) => `${o.kind}/${o.metadata.namespace ?? ""}`).sort()).toEqual([
      "Role/" + agentNs, // the Lease
      "Role/" + meshNs, // mesh resources, Events, staged keys
      "Role/" + targetNs, // target secrets, pods
      "RoleBinding/" + agentNs,
      "RoleBinding/" + meshNs,
      "RoleBinding/" + targetNs,
      "ServiceAccount/" + agentNs,
    ].sort());
    await applyServerSide(sharedKubectl, rbac);
    sa = await serviceAccountKubeConfig(admin.kc, agentNs, FULLNAME);
    args = chartArgs(objects);
    expect(args).toEqual(expect.arrayContaining([`--namespace=${meshNs}`, `--secret-namespaces=${targetNs},${meshNs}`, "--leader-elect", `--leader-election-namespace=${agentNs}`]));
    await createSigningSecret(admin, meshNs);
    issuer = await startIssuer(admin.kc, meshNs);
    // The chart's arguments, with the listeners on free loopback ports (startInProcessAgent's own flags come first; the last wins).
    agent = await startInProcessAgent(sa, chartArgsWithoutListeners(objects));
  });

  afterAll(async () => {
    await agent?.stop();
    await issuer?.stop();
  });

  it("takes the Lease, issues into the target namespace (verified with openssl) and bounces the directive's pods", async () => {
    const lease = await waitFor("the Lease", async () => {
      const out = await sharedKubectl(["get", "lease", "-n", agentNs, FULLNAME, "-o", "jsonpath={.spec.holderIdentity}"]).catch(() => "");
      return out || undefined;
    });
    expect(lease).not.toBe("");

    // A bare pod in the target namespace (no nodes here: it stays Pending, which eviction allows).
    const pod: V1Pod = { metadata: { name: "istiod-0", labels: { app: "istiod" } }, spec: { containers: [{ name: "main", image: "fake.invalid/none" }] } };
    await admin.core.createNamespacedPod({ namespace: targetNs, body: pod });
    const directives = new CustomResourceClient<PodBounceDirective>(admin.kc, POD_BOUNCE_DIRECTIVE);
    await directives.create(meshNs, podBounceDirective("istiod", meshNs, [{ namespace: targetNs, labels: { app: "istiod" } }]));
    await admin.issued.create(meshNs, newIssuedCertificate(meshNs, "mesh-ca", { annotations: P256, target: { name: "cacerts", namespace: targetNs },
      podBounceDirective: { name: "istiod", namespace: meshNs } }));

    await waitForState(admin, meshNs, "mesh-ca", "FINISHED", 120_000);
    const data = decodeSecret((await getSecretOrUndefined(admin, targetNs, "cacerts"))!);
    expect(opensslCheckBundle(data)).toEqual({ verify: "ca-cert.pem: OK", keyMatches: true });
    // The bounce: the pod was evicted (it is gone), and the directive records it.
    await waitFor("the pod to be bounced", async () => (await statusOf(() => admin.core.readNamespacedPod({ name: "istiod-0", namespace: targetNs }))) === 404 || undefined);
    const directive = (await directives.get(meshNs, "istiod"))!;
    expect(JSON.stringify(directive.status?.podsBounced ?? [])).toContain("istiod-0");
    // The staged key was deleted when FINISHED: delete on secrets in the IssuedCertificate's namespace is used.
    expect(await getSecretOrUndefined(admin, meshNs, "mesh-ca")).toBeUndefined();
  });

  it("an IssuedCertificate whose target is outside --secret-namespaces fails SecretNamespaceNotWatched, with no key and no request", async () => {
    await admin.issued.create(meshNs, newIssuedCertificate(meshNs, "elsewhere", { annotations: P256, target: { name: "cacerts", namespace: otherNs } }));
    const failed = await waitForState(admin, meshNs, "elsewhere", "FAILED");
    expect(failed.metadata.annotations?.[FAILURE_REASON_ANNOTATION]).toBe(Reason.SecretNamespaceNotWatched);
    expect(failed.status?.error).toContain(`namespace ${otherNs} of the target secret is not one of --secret-namespaces`);
    expect(await getSecretOrUndefined(admin, meshNs, "elsewhere")).toBeUndefined();
    expect(await admin.requests.get(meshNs, "elsewhere")).toBeUndefined();
    expect(await getSecretOrUndefined(admin, otherNs, "cacerts")).toBeUndefined();
  });

  it("without --secret-namespaces (a cluster-wide Secret watch the Roles do not allow), /readyz fails naming the refused watch", async () => {
    // The chart's arguments minus --secret-namespaces, with the same token: what the chart did before.
    const wide = await startInProcessAgent(sa, [...args.filter((a) => !/^--(metrics|health-probe)-bind-address=|^--secret-namespaces=|^--leader-elect/.test(a)),
      "--health-probe-bind-address", "127.0.0.1:0"]);
    try {
      const ready = await waitFor("/readyz to name the refused watch", async () => {
        const r = await fetchText(wide.healthPort!, "/readyz");
        return r.status === 503 && /secrets/.test(r.body) && /403/.test(r.body) ? r : undefined;
      });
      expect(ready.body).toMatch(/informer secrets has not synced: 403: secrets is forbidden/);
    } finally {
      await wide.stop();
    }
  });

  it("refuses with 403 what the chart does not grant", async () => {
    await admin.core.createNamespacedSecret({ namespace: otherNs, body: { metadata: { name: "not-yours" }, stringData: { k: "v" } } });
    await admin.core.createNamespacedPod({ namespace: targetNs, body: { metadata: { name: "web-0", labels: { app: "web" } }, spec: { containers: [{ name: "main", image: "fake.invalid/none" }] } } });
    const core = sa.makeApiClient(CoreV1Api);
    const requests = new CustomResourceClient<CertificateRequest>(sa, CERTIFICATE_REQUEST);
    const pod = await admin.core.readNamespacedPod({ name: "web-0", namespace: targetNs });
    const results = {
      "read a Secret in a namespace it does not manage": await statusOf(() => core.readNamespacedSecret({ name: "not-yours", namespace: otherNs })),
      "list Secrets cluster-wide": await statusOf(() => core.listSecretForAllNamespaces()),
      "write a Pod's spec": await statusOf(() => core.replaceNamespacedPod({ name: "web-0", namespace: targetNs,
        body: { ...pod, spec: { ...pod.spec!, activeDeadlineSeconds: 5 } } })),
      "read the CertificateRequests of another namespace": await statusOf(() => requests.list(otherNs)),
      "write a Secret in the agent's own namespace": await statusOf(() => core.createNamespacedSecret({ namespace: agentNs, body: { metadata: { name: "x" } } })),
      // ...and what it is granted works with the same token:
      "list its Secrets in the target namespace": await statusOf(() => core.listNamespacedSecret({ namespace: targetNs })),
      "list CertificateRequests in its namespace": await statusOf(() => requests.list(meshNs)),
    };
    expect(results).toEqual({
      "read a Secret in a namespace it does not manage": 403,
      "list Secrets cluster-wide": 403,
      "write a Pod's spec": 403,
      "read the CertificateRequests of another namespace": 403,
      "write a Secret in the agent's own namespace": 403,
      "list its Secrets in the target namespace": 200,
      "list CertificateRequests in its namespace": 200,
    });
    // The agent with the chart's arguments worked throughout without a Forbidden error of its own.
    expect(forbiddenInLogs(agent!.logs())).toEqual([]);
  });
});
