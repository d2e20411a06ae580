// The agent run exactly as in a pod (issue 9): the real executable, no kubeconfig anywhere (no flag,
// no KUBECONFIG, an empty HOME), only what the kubelet gives a pod: KUBERNETES_SERVICE_HOST/PORT and
// a service-account directory with a token, ca.crt and namespace. The token comes from the TokenRequest
// API, bound to a Secret so that it can be revoked; then it is rotated the way the kubelet rotates a
// projected token (a new file swapped in atomically) and the old one revoked: the agent keeps working.
// (It also caught the agent process exiting with code 0, in silence, while every request was refused:
// with all connections closed only unref'd retry timers were left; agent/main.ts now holds the process.)
import { CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from "@kubernetes/client-node";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KEY_ALGORITHM_ANNOTATION } from "../agent/constants";
import { describeWithControlPlane, sharedKubeConfig } from "./controlplane/testenv";
import {
  clients,
  createNamespace,
  createSigningSecret,
  decodeSecret,
  getSecretOrUndefined,
  newIssuedCertificate,
  opensslCheckBundle,
  REPO_ROOT,
  startIssuer,
  waitFor,
  waitForState,
  watchProcess,
} from "./harness";

jest.setTimeout(240_000);

const P256 = { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" };

/** A token for namespace/agent bound to Secret `holder` (deleting that Secret revokes it). */
async function boundToken(core: CoreV1Api, namespace: string, holder: string): Promise<string> {
  await core.createNamespacedSecret({ namespace, body: { metadata: { name: holder } } });
  const request = await core.createNamespacedServiceAccountToken({ name: "agent", namespace,
    body: { spec: { audiences: [], expirationSeconds: 600, boundObjectRef: { apiVersion: "v1", kind: "Secret", name: holder } } } });
  return request.status!.token!;
}

/** Whether the API server accepts a token (a GET of the agent's own namespace's IssuedCertificates). */
async function accepted(server: string, caPem: string, token: string, namespace: string): Promise<boolean> {
  const kc = new KubeConfig();
  kc.loadFromOptions({ clusters: [{ name: "c", server, caData: Buffer.from(caPem).toString("base64") }], users: [{ name: "u", token }],
    contexts: [{ name: "x", cluster: "c", user: "u" }], currentContext: "x" });
  try {
    await kc.makeApiClient(CoreV1Api).listNamespacedSecret({ namespace });
    return true;
  } catch (err) {
    if ((err as { code?: number }).code === 401) return false;
    throw err;
  }
}

describeWithControlPlane("the agent run as in a pod: in-cluster config only", () => {
  it("finishes a certificate with a TokenRequest token, and keeps working after the token file is rotated and the old token revoked", async () => {
    const admin = clients(sharedKubeConfig());
    const ns = await createNamespace(admin, "in-cluster");
    await createSigningSecret(admin, ns);
    await admin.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: "agent" } } });
    // Rights in its namespace only (the chart's own RBAC is e2e/rbac.e2e.test.ts's subject).
    const rbac = admin.kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({ namespace: ns, body: { metadata: { name: "agent" }, rules: [{ apiGroups: ["*"], resources: ["*"], verbs: ["*"] }] } });
    await rbac.createNamespacedRoleBinding({ namespace: ns, body: { metadata: { name: "agent" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "agent" }, subjects: [{ kind: "ServiceAccount", name: "agent", namespace: ns }] } });

    // The pod's service-account mount and environment, as the kubelet provides them.
    const cluster = admin.kc.getCurrentCluster()!;
    const caPem = cluster.caData ? Buffer.from(cluster.caData, "base64").toString("utf8") : readFileSync(cluster.caFile!, "utf8");
    const url = new URL(cluster.server);
    const dir = mkdtempSync(join(tmpdir(), "cert-agent-sa-"));
    const first = await boundToken(admin.core, ns, "holder-1");
    writeFileSync(join(dir, "token"), first);
    writeFileSync(join(dir, "ca.crt"), caPem);
    writeFileSync(join(dir, "namespace"), ns);
    const home = mkdtempSync(join(tmpdir(), "cert-agent-home-"));
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: home, KUBERNETES_SERVICE_HOST: url.hostname, KUBERNETES_SERVICE_PORT: url.port,
      CERT_AGENT_SERVICE_ACCOUNT_DIR: dir };
    const child = spawn(process.execPath, [join(REPO_ROOT, "dist", "agent", "main.js"), "--namespace", ns, "--secret-namespaces", ns, "--pod-namespaces", ns,
      "--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--log-level", "debug", "--retry-base-delay", "1s", "--retry-max-delay", "5s"],
    { env, stdio: ["ignore", "pipe", "pipe"] });
    const agent = watchProcess(child);
    const issuer = await startIssuer(admin.kc, ns);
    try {
      await admin.issued.create(ns, newIssuedCertificate(ns, "before", { annotations: P256, target: { name: "cacerts-before", namespace: ns } }));
      await waitForState(admin, ns, "before", "FINISHED", 60_000);
      expect(opensslCheckBundle(decodeSecret((await getSecretOrUndefined(admin, ns, "cacerts-before"))!))).toEqual({ verify: "ca-cert.pem: OK", keyMatches: true });

      // Rotation: the kubelet writes the new token and swaps it in atomically; then the old one is
      // revoked (its bound Secret deleted), so only a re-read token works from now on.
      const second = await boundToken(admin.core, ns, "holder-2");
      writeFileSync(join(dir, "token.new"), second);
      renameSync(join(dir, "token.new"), join(dir, "token"));
      await admin.core.deleteNamespacedSecret({ name: "holder-1", namespace: ns });
      await waitFor("the old token to be refused", async () => !(await accepted(cluster.server, caPem, first, ns)) || undefined, 30_000);
      expect(await accepted(cluster.server, caPem, second, ns)).toBe(true);

      const rotatedAt = Date.now();
      await admin.issued.create(ns, newIssuedCertificate(ns, "after", { annotations: P256, target: { name: "cacerts-after", namespace: ns } }));
      // client-node re-reads a token file every 60 s (as client-go does): within that and a backoff.
      await waitForState(admin, ns, "after", "FINISHED", 120_000);
      console.log(`in-cluster: the certificate created after the token rotation finished in ${Date.now() - rotatedAt} ms`);
      expect(opensslCheckBundle(decodeSecret((await getSecretOrUndefined(admin, ns, "cacerts-after"))!))).toEqual({ verify: "ca-cert.pem: OK", keyMatches: true });
      expect(child.exitCode).toBeNull();
      expect(await agent.stop("SIGTERM")).toBe(0);
      expect(agent.output()).not.toMatch(/PRIVATE KEY/);
      expect(agent.output()).not.toContain(second.slice(-20));
    } finally {
      await agent.stop("SIGKILL");
      await issuer.stop();
    }
  });
});
