// Swapping Gloo Mesh's own certificate agent for cert-agent on a running cluster, on the real API
// server: an IssuedCertificate the original left FINISHED, with the `cacerts` exactly as the original
// writes it (its type, its two labels, the four PEMs plus an empty key.pem, the key in PKCS#1), is
// adopted without touching its data and stays FINISHED; the next issuance replaces it like our own. A
// look-alike labelled for another namespace is refused as before.
import type { V1Secret } from "@kubernetes/client-node";
import { ISSUED_SECRET_TYPE, MANAGED_BY_LABEL, MANAGED_BY_VALUE, ORIGINAL_AGENT_LABEL, OWNER_ANNOTATION, Reason, REVISION_ANNOTATION } from "../agent/constants";
import { ORIGINAL_CLUSTER_LABEL, ORIGINAL_EMPTY_KEY, originalAgentTarget, originalFinishedStatus } from "../agent/testing/original-agent";
import type { IssuedCertificate } from "../shared/api/types";
import { describeCertificate, describeKeySpec, importPrivateKeyPem } from "../shared/pki";
import { describeWithControlPlane, sharedKubeConfig } from "./controlplane/testenv";
import {
  Clients,
  clients,
  createNamespace,
  createSigningSecret,
  decodeSecret,
  getSecretOrUndefined,
  InProcessAgent,
  newIssuedCertificate,
  openssl,
  opensslCheckBundle,
  startInProcessAgent,
  startIssuer,
  waitFor,
  waitForState,
} from "./harness";
import { ReferenceIssuer } from "./issuer/issuer";
import { RootCa } from "./issuer/sign";

jest.setTimeout(120_000);

const ISTIOD = "spiffe://cluster.local/ns/istio-system/sa/istiod";

/** The agent's log lines about one object, parsed. */
function linesOf(agent: InProcessAgent, name: string, message?: string): Record<string, unknown>[] {
  return agent.logs().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.name === name && (message === undefined || l.message === message));
}

async function eventsOf(c: Clients, namespace: string, name: string): Promise<{ reason: string; message: string; type: string }[]> {
  const list = await c.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` });
  return list.items.map((e) => ({ reason: e.reason ?? "", message: e.message ?? "", type: e.type ?? "" }));
}

describeWithControlPlane("migrating from Gloo Mesh's agent", () => {
  let c: Clients;
  const running: { stop(): Promise<void> }[] = [];
  afterEach(async () => {
    while (running.length) await running.pop()!.stop();
  });
  beforeAll(() => {
    c = clients(sharedKubeConfig());
  });

  /**
   * What the original leaves behind in a fresh namespace: the IssuedCertificate `name` (RSA,
   * rsaKeySizeBytes 2048 read as bits, as Gloo Mesh's management plane writes it) FINISHED through the
   * status subresource (no PENDING, no empty error), and its target `cacerts-<name>` written the
   * original's way for `agentNamespace`.
   */
  async function leftByOriginal(prefix: string, name: string, agentNamespace?: string): Promise<{ ns: string; root: RootCa; ic: IssuedCertificate; secret: V1Secret; caKeyPem: string }> {
    const ns = await createNamespace(c, prefix);
    const root = await createSigningSecret(c, ns);
    const target = { name: `cacerts-${name}`, namespace: ns };
    const created = await c.issued.create(ns, newIssuedCertificate(ns, name, { target, hosts: [ISTIOD], rsaKeySizeBits: 2048, org: "istio" }));
    const ic = await c.issued.replaceStatus({ ...created, status: originalFinishedStatus(created) });
    const original = await originalAgentTarget({ target, agentNamespace: agentNamespace ?? ns, root, hosts: [ISTIOD], bits: 2048, org: "istio" });
    const secret = await c.core.createNamespacedSecret({ namespace: ns, body: original.secret as V1Secret });
    return { ns, root, ic, secret, caKeyPem: original.caKeyPem };
  }

  async function startAgentAndIssuer(ns: string, args: string[] = []): Promise<{ agent: InProcessAgent; issuer: ReferenceIssuer }> {
    const issuer = await startIssuer(c.kc, ns);
    running.push(issuer);
    const agent = await startInProcessAgent(c.kc, ["--namespace", ns, ...args]);
    running.push(agent);
    return { agent, issuer };
  }

  it("adopts the original's cacerts (labels and stamp, data untouched, Event), stays FINISHED, then replaces it at the next issuance", async () => {
    const name = "mesh-ca";
    const { ns, ic, secret: written, caKeyPem } = await leftByOriginal("migrate", name);
    const targetName = `cacerts-${name}`;
    // As the original writes it, as the API server stores it.
    expect(written.type).toBe(ISSUED_SECRET_TYPE);
    expect(written.metadata?.labels).toEqual({ [ORIGINAL_AGENT_LABEL]: ns, [ORIGINAL_CLUSTER_LABEL]: "" });
    expect(Object.keys(written.data ?? {}).sort()).toEqual(["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "key.pem", "root-cert.pem"]);
    expect(decodeSecret(written)[ORIGINAL_EMPTY_KEY]).toBe("");
    expect(decodeSecret(written)["ca-key.pem"]).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    expect(ic.status).toEqual({ observedGeneration: 1, state: "FINISHED" });
    // openssl reads the original's bundle (PKCS#1 key included) as istiod would.
    expect(opensslCheckBundle(decodeSecret(written))).toEqual({ verify: "ca-cert.pem: OK", keyMatches: true });

    const { agent, issuer } = await startAgentAndIssuer(ns);
    const adopted = await waitFor("the adoption", async () => {
      const s = await getSecretOrUndefined(c, ns, targetName);
      return s?.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE ? s : undefined;
    });
    expect(adopted.type).toBe(ISSUED_SECRET_TYPE);
    expect(adopted.data).toEqual(written.data); // untouched, the empty key.pem too
    expect(adopted.metadata?.labels).toEqual({ [ORIGINAL_AGENT_LABEL]: ns, [ORIGINAL_CLUSTER_LABEL]: "", [MANAGED_BY_LABEL]: MANAGED_BY_VALUE });
    expect(adopted.metadata?.annotations).toMatchObject({ [OWNER_ANNOTATION]: `${ns}/${name}`, [REVISION_ANNOTATION]: "0" });
    const events = await waitFor("the AdoptedOriginalSecret Event", async () => {
      const list = await eventsOf(c, ns, name);
      return list.some((e) => e.reason === Reason.AdoptedOriginalSecret) ? list : undefined;
    });
    expect(events).toEqual([{ type: "Normal", reason: Reason.AdoptedOriginalSecret, message: `target secret ${ns}/${targetName} was written by Gloo Mesh's ` +
      `certificate agent for this IssuedCertificate (label ${ORIGINAL_AGENT_LABEL}=${ns}); cert-agent manages it from now on, its data unchanged` }]);
    expect(linesOf(agent, name, "adopted")).toEqual([expect.objectContaining({ level: "info", namespace: ns, reason: Reason.AdoptedOriginalSecret })]);

    // Then it is checked like our own (valid, RSA-2048 from the PKCS#1 key, SANs, renewal far off) and
    // nothing is written: the IssuedCertificate stays FINISHED exactly as the original left it.
    await waitFor("a pass over the adopted secret", async () =>
      linesOf(agent, name, "reconciled").filter((l) => l.state === "FINISHED" && l.action === "none").length >= 1 || undefined);
    const after = (await c.issued.get(ns, name))!;
    expect(after.status).toEqual({ observedGeneration: 1, state: "FINISHED" });
    expect(after.metadata.resourceVersion).toBe(ic.metadata.resourceVersion);
    expect((await getSecretOrUndefined(c, ns, targetName))!.metadata?.resourceVersion).toBe(adopted.metadata?.resourceVersion);
    expect(issuer.signed.count).toBe(0);
    expect(linesOf(agent, name, "transition")).toEqual([]);

    // A spec change is issued and replaces the secret in one write, with our four keys only.
    const changed = (await c.issued.get(ns, name))!;
    await c.issued.replace({ ...changed, spec: { ...changed.spec, hosts: [ISTIOD, "istiod.istio-system.svc"] } });
    await waitForState(c, ns, name, "FINISHED");
    const replaced = (await getSecretOrUndefined(c, ns, targetName))!;
    const data = decodeSecret(replaced);
    expect(Object.keys(data).sort()).toEqual(["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]);
    expect(data["ca-key.pem"]).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(data["ca-key.pem"]).not.toBe(caKeyPem);
    expect(describeKeySpec((await importPrivateKeyPem(data["ca-key.pem"])).spec)).toBe("RSA-2048");
    expect((await describeCertificate(data["ca-cert.pem"])).sans).toEqual([ISTIOD, "istiod.istio-system.svc"]);
    expect(opensslCheckBundle(data)).toEqual({ verify: "ca-cert.pem: OK", keyMatches: true });
    expect(openssl(["x509", "-in", "ca-cert.pem", "-noout", "-ext", "subjectAltName"], { "ca-cert.pem": data["ca-cert.pem"] })).toMatch(/DNS:istiod\.istio-system\.svc/);
    expect(replaced.metadata?.labels).toEqual(adopted.metadata?.labels); // the original's labels stay
    expect(replaced.metadata?.annotations).toMatchObject({ [OWNER_ANNOTATION]: `${ns}/${name}`, [REVISION_ANNOTATION]: "1" });
    expect(issuer.signed.count).toBe(1);
    expect(linesOf(agent, name, "transition").map((t) => t.reason)).toEqual([Reason.SpecChanged, Reason.CertificateRequested, Reason.Issued, Reason.Finished]);
  });

  it("a look-alike labelled for another namespace is refused as today: FAILED TargetSecretConflict, untouched, no key", async () => {
    const name = "mesh-ca";
    const { ns, secret: written } = await leftByOriginal("migrate-other", name, "gloo-mesh");
    const { agent, issuer } = await startAgentAndIssuer(ns, ["--conflict-recheck-period", "500ms"]);
    const failed = await waitForState(c, ns, name, "FAILED");
    expect(failed.status?.error).toBe(`target secret ${ns}/cacerts-${name} exists and is not managed by cert-agent; it was left untouched. ` +
      "Delete it, or label it app.kubernetes.io/managed-by=cert-agent and give it type certificates.mesh.gloo.solo.io/issued_certificate to hand it over");
    await waitFor("the TargetSecretConflict Event", async () => (await eventsOf(c, ns, name)).some((e) => e.reason === Reason.TargetSecretConflict) || undefined);
    expect((await eventsOf(c, ns, name)).map((e) => e.reason)).not.toContain(Reason.AdoptedOriginalSecret);
    // It looks again (GETs only), and leaves the secret exactly as it was.
    await waitFor("two re-checks", async () => linesOf(agent, name, "reconciled").filter((l) => l.state === "FAILED").length >= 2 || undefined);
    const still = (await getSecretOrUndefined(c, ns, `cacerts-${name}`))!;
    expect(still.metadata?.resourceVersion).toBe(written.metadata?.resourceVersion);
    expect(still.metadata?.labels).toEqual({ [ORIGINAL_AGENT_LABEL]: "gloo-mesh", [ORIGINAL_CLUSTER_LABEL]: "" });
    expect(await c.requests.get(ns, name)).toBeUndefined();
    expect(await getSecretOrUndefined(c, ns, name)).toBeUndefined(); // no staged key
    expect(issuer.signed.count).toBe(0);
  });
});
