// The defects a review found, each proven fixed on the real API server (issue "Reshape", defects 1-6).
// Defects 7 (stop during a leader-election start), 8 (kubeconfig order) and 9 (expired Events) have
// their tests beside the code: shared/controller/manager.test.ts, agent/kubeconfig.test.ts and
// shared/controller/events.e2e.test.ts.
import { KubeConfig } from "@kubernetes/client-node";
import { KEY_ALGORITHM_ANNOTATION, PRIVATE_KEY_SECRET_TYPE, REVISION_ANNOTATION } from "../agent/constants";
import { describeKeySpec, describeCertificate, importPrivateKeyPem } from "../shared/pki";
import { describeWithControlPlane, sharedKubeConfig } from "./controlplane/testenv";
import {
  Clients,
  clients,
  createNamespace,
  createSigningSecret,
  decodeSecret,
  fetchText,
  getSecretOrUndefined,
  InProcessAgent,
  newIssuedCertificate,
  startInProcessAgent,
  startIssuer,
  waitFor,
  waitForState,
} from "./harness";
import { ReferenceIssuer } from "./issuer/issuer";

jest.setTimeout(120_000);

const P256 = { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" };

/** The agent's log lines about one object, parsed. */
function linesOf(agent: InProcessAgent, name: string, message?: string): Record<string, unknown>[] {
  return agent.logs().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.name === name && (message === undefined || l.message === message));
}

describeWithControlPlane("defects found in review, fixed", () => {
  let c: Clients;
  const running: { stop(): Promise<void> }[] = [];
  afterEach(async () => {
    while (running.length) await running.pop()!.stop();
  });
  beforeAll(() => {
    c = clients(sharedKubeConfig());
  });

  async function setUp(prefix: string, agentArgs: string[] = [], issuerOffsetMs = 0): Promise<{ ns: string; agent: InProcessAgent; issuer: ReferenceIssuer }> {
    const ns = await createNamespace(c, prefix);
    await createSigningSecret(c, ns);
    const issuer = await startIssuer(c.kc, ns, { clockOffsetMs: issuerOffsetMs });
    running.push(issuer);
    const agent = await startInProcessAgent(c.kc, ["--namespace", ns, ...agentArgs]);
    running.push(agent);
    return { ns, agent, issuer };
  }

  it("defect 1: an issuer clock a few seconds ahead is waited for, then written (not refused forever)", async () => {
    const { ns, agent } = await setUp("skew-ahead", [], 3_000);
    await c.issued.create(ns, newIssuedCertificate(ns, "skewed", { annotations: P256 }));
    await waitForState(c, ns, "skewed", "FINISHED", 30_000);
    const waits = linesOf(agent, "skewed", "waiting");
    expect(waits.length).toBeGreaterThanOrEqual(1);
    expect(waits[0].reason).toBe("WaitingForValidity");
    // Written only once valid by our clock, with one key and no failure.
    const secret = (await getSecretOrUndefined(c, ns, "cacerts"))!;
    const { notBefore } = await describeCertificate(decodeSecret(secret)["ca-cert.pem"]);
    const writtenAt = Date.parse(String(linesOf(agent, "skewed", "transition").find((t) => t.to === "ISSUED")!.timestamp));
    expect(writtenAt).toBeGreaterThanOrEqual(notBefore.getTime());
    expect(linesOf(agent, "skewed", "transition").map((t) => t.to)).not.toContain("FAILED");
  });

  it("defect 1: an issuer clock beyond --clock-skew-tolerance is refused as NotYetValid", async () => {
    const { ns } = await setUp("skew-far", ["--clock-skew-tolerance", "1s", "--retry-base-delay", "1m"], 600_000);
    await c.issued.create(ns, newIssuedCertificate(ns, "far", { annotations: P256 }));
    const failed = await waitForState(c, ns, "far", "FAILED", 30_000);
    expect(failed.status?.error).toMatch(/NotYetValid|is valid from/);
    expect(await getSecretOrUndefined(c, ns, "cacerts")).toBeUndefined();
  });

  it("defect 2: a foreign target fails before any key is made, and issues once it is gone", async () => {
    const { ns, agent, issuer } = await setUp("foreign-target", ["--conflict-recheck-period", "500ms"]);
    await c.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: "cacerts" }, stringData: { "ca-cert.pem": "hand-plugged" } } });
    await c.issued.create(ns, newIssuedCertificate(ns, "blocked", { annotations: P256 }));
    const failed = await waitForState(c, ns, "blocked", "FAILED");
    expect(failed.status?.error).toMatch(/not managed by cert-agent; it was left untouched/);
    expect(await c.requests.get(ns, "blocked")).toBeUndefined();
    expect(await getSecretOrUndefined(c, ns, "blocked")).toBeUndefined(); // no staged key
    expect(issuer.signed.count).toBe(0);
    const keygens = (await agent.metrics.keygenSeconds.get()).values.find((v) => v.metricName?.endsWith("_count"));
    expect(keygens?.value ?? 0).toBe(0);
    // It looks again (GETs only) and stays FAILED while the secret is there...
    await waitFor("two re-checks", async () => linesOf(agent, "blocked", "reconciled").filter((l) => l.state === "FAILED").length >= 2 || undefined);
    expect(issuer.signed.count).toBe(0);
    // ...and issues once it is deleted.
    await c.core.deleteNamespacedSecret({ name: "cacerts", namespace: ns });
    await waitForState(c, ns, "blocked", "FINISHED");
    expect(issuer.signed.count).toBe(1);
  });

  it("defect 3: /readyz stays unready while the initial LIST fails (no RBAC), instead of going green over an empty cache", async () => {
    const ns = await createNamespace(c, "no-rbac");
    // A ServiceAccount with no rights at all: every LIST the informers make is refused with 403.
    await c.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: "nobody" } } });
    const token = await c.core.createNamespacedServiceAccountToken({ name: "nobody", namespace: ns, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
    const cluster = c.kc.getCurrentCluster()!;
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [cluster],
      users: [{ name: "nobody", token: token.status!.token }],
      contexts: [{ name: "nobody", cluster: cluster.name, user: "nobody" }],
      currentContext: "nobody",
    });
    const agent = await startInProcessAgent(kc, ["--namespace", ns, "--health-probe-bind-address", "127.0.0.1:0"]);
    running.push(agent);
    await waitFor("a failed LIST", async () => /informer stopped, restarting/.test(agent.logs()) || undefined);
    const ready = await fetchText(agent.healthPort!, "/readyz");
    expect(ready.status).toBe(503);
    expect(ready.body).toMatch(/informer issuedcertificates has not synced/);
    // A second failed attempt (after the restart backoff) is still unready: the backoff did not reset.
    await waitFor("a second failed LIST", async () => (agent.logs().match(/informer stopped, restarting/g)?.length ?? 0) >= 4 || undefined);
    expect((await fetchText(agent.healthPort!, "/readyz")).status).toBe(503);
  });

  it("defect 4: changing only the key-algorithm annotation re-issues a FINISHED object with the new key type", async () => {
    const { ns } = await setUp("key-algorithm");
    await c.issued.create(ns, newIssuedCertificate(ns, "algo", { annotations: P256 }));
    await waitForState(c, ns, "algo", "FINISHED");
    const ic = (await c.issued.get(ns, "algo"))!;
    ic.metadata.annotations = { ...ic.metadata.annotations, [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P384" };
    await c.issued.replace(ic); // metadata only: the generation stays 1
    const reissued = await waitFor("a P-384 key in the target", async () => {
      const secret = await getSecretOrUndefined(c, ns, "cacerts");
      const key = secret && (await importPrivateKeyPem(decodeSecret(secret)["ca-key.pem"]));
      return key && describeKeySpec(key.spec) === "ECDSA-P384" ? secret : undefined;
    });
    expect(reissued.metadata?.annotations?.[REVISION_ANNOTATION]).toBe("2");
    const after = await waitForState(c, ns, "algo", "FINISHED");
    expect(after.metadata.generation).toBe(1);
  });

  it("defect 5: a foreign Secret at the staged-key name is retried once deleted; an unreadable staged key is replaced", async () => {
    const { ns } = await setUp("staged-key", ["--conflict-recheck-period", "500ms"]);
    await c.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: "squatted" }, stringData: { note: "someone else's" } } });
    await c.issued.create(ns, newIssuedCertificate(ns, "squatted", { annotations: P256 }));
    const failed = await waitForState(c, ns, "squatted", "FAILED");
    expect(failed.status?.error).toMatch(/is not a private key staged by cert-agent/);
    expect(decodeSecret((await getSecretOrUndefined(c, ns, "squatted"))!)).toEqual({ note: "someone else's" });
    await c.core.deleteNamespacedSecret({ name: "squatted", namespace: ns });
    await waitForState(c, ns, "squatted", "FINISHED");

    // Our own staged key, but garbage: replaced with a new key instead of throwing on every attempt.
    await c.core.createNamespacedSecret({ namespace: ns, body: {
      metadata: { name: "garbled", labels: { "app.kubernetes.io/managed-by": "cert-agent" } },
      type: PRIVATE_KEY_SECRET_TYPE,
      stringData: { "private-key": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n" },
    } });
    await c.issued.create(ns, newIssuedCertificate(ns, "garbled", { annotations: P256, target: { name: "cacerts-garbled", namespace: ns } }));
    await waitForState(c, ns, "garbled", "FINISHED");
    expect(await getSecretOrUndefined(c, ns, "cacerts-garbled")).toBeDefined();
  });

  it("defect 6: the expiry metric of a deleted IssuedCertificate is removed", async () => {
    const { ns, agent } = await setUp("expiry-metric");
    await c.issued.create(ns, newIssuedCertificate(ns, "gone", { annotations: P256 }));
    await waitForState(c, ns, "gone", "FINISHED");
    const series = async () => (await agent.metrics.expiration.get()).values.filter((v) => v.labels.namespace === ns && v.labels.name === "gone");
    expect(await series()).toHaveLength(1);
    await c.issued.delete(ns, "gone");
    await waitFor("the series to be removed", async () => (await series()).length === 0 || undefined);
  });
});
