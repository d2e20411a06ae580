// The agent with the chart's RBAC on an API server with the OwnerReferencesPermissionEnforcement
// admission plugin (issue 9). The plugin refuses an object whose ownerReference sets
// blockOwnerDeletion unless its author may update the owner's finalizers subresource; the agent sets
// it on the staged key and the CertificateRequest, owned by their IssuedCertificate, so the chart
// grants issuedcertificates/finalizers update. Proven here, each on its own control plane namespace
// set, with a TokenRequest token for the chart's ServiceAccount as the agent's only credential and the
// chart's own arguments:
//   - with the chart's RBAC the agent issues (FINISHED, verified with openssl), with no 403;
//   - with that one rule removed from the applied Role, the same ServiceAccount is refused (403) a
//     CertificateRequest with blockOwnerDeletion but not one without it (the rule is what the plugin
//     asks for), the agent's staged-key create is refused, the IssuedCertificate goes FAILED
//     APIRequestForbidden naming the request, and /readyz (and /statusz) fails saying so;
//   - the rule put back, the retry gets through: FINISHED and ready again.
import { KEY_ALGORITHM_ANNOTATION, FAILURE_REASON_ANNOTATION, Reason } from "../agent/constants";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { API_VERSION, CERTIFICATE_REQUEST, CertificateRequest } from "../shared/api/types";
import { CustomResourceClient } from "../shared/kube/custom-objects";
import { applyServerSide, chartArgsWithoutListeners, helmTemplate, rbacObjects, refusal, Rendered, serviceAccountKubeConfig } from "./chart-rbac";
import { ControlPlane, startControlPlane } from "./controlplane/controlplane";
import { describeWithControlPlane } from "./controlplane/testenv";
import {
  clients,
  Clients,
  createNamespace,
  createSigningSecret,
  decodeSecret,
  fetchText,
  getSecretOrUndefined,
  InProcessAgent,
  loadKubeConfig,
  newIssuedCertificate,
  opensslCheckBundle,
  startInProcessAgent,
  startIssuer,
  waitFor,
  waitForState,
  forbiddenInLogs,
} from "./harness";
import type { ReferenceIssuer } from "./issuer/issuer";
import type { KubeConfig } from "@kubernetes/client-node";

jest.setTimeout(120_000);

const PLUGIN = "OwnerReferencesPermissionEnforcement";
const RELEASE = "ca";
const FULLNAME = "ca-cert-agent";
const P256 = { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" };

interface Release {
  agentNs: string;
  meshNs: string;
  targetNs: string;
  objects: Rendered[];
  sa: KubeConfig;
}

/** The Role of the watched namespace without the issuedcertificates/finalizers rule. */
function withoutFinalizers(objects: Rendered[], meshNs: string): Rendered[] {
  return objects.map((o) => {
    if (o.kind !== "Role" || o.metadata.namespace !== meshNs) return o;
    const rules = o.rules!.filter((r) => !r.resources.includes("issuedcertificates/finalizers"));
    expect(rules.length).toBe(o.rules!.length - 1);
    return { ...o, rules };
  });
}

describeWithControlPlane(`the agent with the chart's RBAC under ${PLUGIN}`, () => {
  let cp: ControlPlane;
  let admin: Clients;
  const agents: InProcessAgent[] = [];
  const issuers: ReferenceIssuer[] = [];

  beforeAll(async () => {
    cp = await startControlPlane({ apiServerFlags: [`--enable-admission-plugins=${PLUGIN}`] });
    admin = clients(loadKubeConfig(cp.kubeconfigPath));
  });

  afterAll(async () => {
    for (const a of agents) await a.stop();
    for (const i of issuers) await i.stop();
    await cp?.stop();
  });

  /** Namespaces, the chart rendered for them (fast retries), its RBAC applied (edited by `edit`), a token, a signing secret and an issuer. */
  async function release(prefix: string, edit: (objects: Rendered[], meshNs: string) => Rendered[] = (o) => o): Promise<Release> {
    const agentNs = await createNamespace(admin, `${prefix}-agent`);
    const meshNs = await createNamespace(admin, `${prefix}-mesh`);
    const targetNs = await createNamespace(admin, `${prefix}-istio`);
    const objects = helmTemplate(RELEASE, agentNs, {
      watchNamespace: meshNs,
      rbac: { secretNamespaces: [targetNs], podNamespaces: [targetNs] },
      // A FAILED retried within seconds, so the test sees the retry after the RBAC is fixed.
      retry: { baseDelay: "1s", maxDelay: "2s" },
    });
    await applyServerSide((args) => cp.kubectl(args), edit(rbacObjects(objects), meshNs));
    const sa = await serviceAccountKubeConfig(admin.kc, agentNs, FULLNAME);
    await createSigningSecret(admin, meshNs);
    issuers.push(await startIssuer(admin.kc, meshNs));
    return { agentNs, meshNs, targetNs, objects, sa };
  }

  async function startChartAgent(r: Release): Promise<InProcessAgent> {
    const agent = await startInProcessAgent(r.sa, [...chartArgsWithoutListeners(r.objects), "--health-probe-bind-address", "127.0.0.1:0"]);
    agents.push(agent);
    return agent;
  }

  it(`the API server runs with ${PLUGIN}`, () => {
    // kube-apiserver logs the validating admission plugins it loaded, in order, at start.
    const log = readFileSync(join(cp.dataDir, "kube-apiserver.log"), "utf8");
    const loaded = /Loaded \d+ validating admission controller\(s\) successfully in the following order: (\S+)\./.exec(log);
    expect(loaded?.[1].split(",")).toContain(PLUGIN);
  });

  it("with the chart's RBAC the agent issues: FINISHED, verified with openssl, and no 403", async () => {
    const r = await release("orpe-ok");
    const agent = await startChartAgent(r);
    await admin.issued.create(r.meshNs, newIssuedCertificate(r.meshNs, "mesh-ca", { annotations: P256, target: { name: "cacerts", namespace: r.targetNs } }));
    await waitForState(admin, r.meshNs, "mesh-ca", "FINISHED", 90_000);
    expect(opensslCheckBundle(decodeSecret((await getSecretOrUndefined(admin, r.targetNs, "cacerts"))!))).toEqual({ verify: "ca-cert.pem: OK", keyMatches: true });
    // The CertificateRequest it created carries the blocking ownerReference the plugin checked.
    const cr = (await admin.requests.get(r.meshNs, "mesh-ca"))!;
    expect(cr.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: "IssuedCertificate", name: "mesh-ca", blockOwnerDeletion: true, controller: true })]);
    expect((await fetchText(agent.healthPort!, "/readyz")).status).toBe(200);
    expect(forbiddenInLogs(agent.logs())).toEqual([]);
  });

  it("without issuedcertificates/finalizers: the staged-key create is refused (403), FAILED APIRequestForbidden, /readyz fails; the rule back, it issues", async () => {
    const r = await release("orpe-no-fin", withoutFinalizers);
    await admin.issued.create(r.meshNs, newIssuedCertificate(r.meshNs, "mesh-ca", { annotations: P256, target: { name: "cacerts", namespace: r.targetNs } }));
    const ic = (await admin.issued.get(r.meshNs, "mesh-ca"))!;

    // The rule is exactly what the plugin asks for: the same token may create a CertificateRequest
    // owned by the IssuedCertificate, but not with blockOwnerDeletion.
    const requests = new CustomResourceClient<CertificateRequest>(r.sa, CERTIFICATE_REQUEST);
    const owned = (name: string, blockOwnerDeletion: boolean): CertificateRequest => ({
      apiVersion: API_VERSION, kind: CERTIFICATE_REQUEST.kind,
      metadata: { name, namespace: r.meshNs, ownerReferences: [{ apiVersion: API_VERSION, kind: "IssuedCertificate", name: "mesh-ca", uid: ic.metadata.uid!, controller: true, blockOwnerDeletion }] },
      spec: {},
    });
    const refused = await refusal(() => requests.create(r.meshNs, owned("probe-blocking", true)));
    expect(refused.code).toBe(403);
    expect(refused.message).toContain("cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on");
    await requests.create(r.meshNs, owned("probe-plain", false));
    await admin.requests.delete(r.meshNs, "probe-plain");

    // The agent: its first write with the ownerReference, the staged key, is refused.
    const agent = await startChartAgent(r);
    const failed = await waitFor("FAILED APIRequestForbidden", async () => {
      const x = await admin.issued.get(r.meshNs, "mesh-ca");
      return x?.status?.state === "FAILED" && x.metadata.annotations?.[FAILURE_REASON_ANNOTATION] === Reason.APIRequestForbidden ? x : undefined;
    }, 60_000);
    expect(failed.status!.error).toMatch(new RegExp(`^the API server forbids create Secret ${r.meshNs}/mesh-ca \\(.*403.*cannot set blockOwnerDeletion.*\\); check the agent's RBAC`));
    // No key was left behind, nothing was asked of the issuer.
    expect(await getSecretOrUndefined(admin, r.meshNs, "mesh-ca")).toBeUndefined();
    expect(await admin.requests.get(r.meshNs, "mesh-ca")).toBeUndefined();
    // /readyz says so, and /statusz names the check.
    const ready = await waitFor("/readyz to fail on the refused request", async () => {
      const res = await fetchText(agent.healthPort!, "/readyz");
      return res.status === 503 ? res : undefined;
    });
    expect(ready.body).toMatch(new RegExp(`^issuedcertificates:forbidden: 1 IssuedCertificate is FAILED APIRequestForbidden .*: ${r.meshNs}/mesh-ca: the API server forbids create Secret ${r.meshNs}/mesh-ca`));
    const status = JSON.parse((await fetchText(agent.healthPort!, "/statusz")).body) as { ready: boolean; readyFailures: { check: string }[] };
    expect(status.ready).toBe(false);
    expect(status.readyFailures.map((f) => f.check)).toEqual(["issuedcertificates:forbidden"]);

    // The rule put back (the chart's Role as rendered): the next retry gets through.
    await applyServerSide((args) => cp.kubectl(args), rbacObjects(r.objects));
    await waitForState(admin, r.meshNs, "mesh-ca", "FINISHED", 90_000);
    expect(opensslCheckBundle(decodeSecret((await getSecretOrUndefined(admin, r.targetNs, "cacerts"))!))).toEqual({ verify: "ca-cert.pem: OK", keyMatches: true });
    await waitFor("/readyz to pass again", async () => (await fetchText(agent.healthPort!, "/readyz")).status === 200 || undefined);
  });
});
