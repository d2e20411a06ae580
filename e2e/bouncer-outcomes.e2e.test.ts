// The pod bouncer's clear outcomes for directives that cannot bounce as asked, on the real API server
// (no pods needed, so the shared control plane): a selector that matches nothing, a rootCertSync whose
// ConfigMap lacks the key, a secret key that does not exist, a directive that does not exist. Each
// says what is wrong in status, an Event and the log, and the target secret stays written and valid.
import { KEY_ALGORITHM_ANNOTATION } from "../agent/constants";
import { podBounceDirective } from "../shared/api/builders";
import { BounceSelector, PodBounceDirective, POD_BOUNCE_DIRECTIVE } from "../shared/api/types";
import { CustomResourceClient } from "../shared/kube/custom-objects";
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
  opensslCheckBundle,
  startInProcessAgent,
  startIssuer,
  waitForEvent,
  waitForState,
} from "./harness";

jest.setTimeout(120_000);

const P256 = { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" };

describeWithControlPlane("pod bouncer: clear outcomes", () => {
  let c: Clients;
  let directives: CustomResourceClient<PodBounceDirective>;
  const running: { stop(): Promise<void> }[] = [];
  beforeAll(() => {
    c = clients(sharedKubeConfig());
    directives = new CustomResourceClient(c.kc, POD_BOUNCE_DIRECTIVE);
  });
  afterEach(async () => {
    while (running.length) await running.pop()!.stop();
  });

  /** A namespace with a signing secret, the issuer and the agent (a short bounce timeout). */
  async function setUp(prefix: string): Promise<{ ns: string; agent: InProcessAgent }> {
    const ns = await createNamespace(c, prefix);
    await createSigningSecret(c, ns);
    running.push(await startIssuer(c.kc, ns));
    // A long retry delay: the FAILED states below must stay put while they are looked at.
    const agent = await startInProcessAgent(c.kc, ["--namespace", ns, "--bounce-timeout", "4s", "--retry-base-delay", "10m", "--retry-max-delay", "10m"]);
    running.push(agent);
    return { ns, agent };
  }

  async function eventsOf(ns: string, name: string): Promise<[string, string, string][]> {
    const list = await c.core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` });
    return list.items.map((e) => [e.type ?? "", e.reason ?? "", e.message ?? ""]);
  }

  function logLines(agent: InProcessAgent, name: string): Record<string, unknown>[] {
    return agent.logs().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.name === name);
  }

  async function expectValidTarget(ns: string): Promise<void> {
    const target = await getSecretOrUndefined(c, ns, "cacerts");
    expect(target).toBeDefined();
    expect(opensslCheckBundle(decodeSecret(target!))).toEqual({ verify: "ca-cert.pem: OK", keyMatches: true });
  }

  it("a selector that matches no pod: recorded empty, a NoPodsMatched warning, and the cycle finishes", async () => {
    const { ns, agent } = await setUp("bounce-unmatched");
    await directives.create(ns, podBounceDirective("istio", ns, [{ namespace: ns, labels: { app: "no-such-app" } }]));
    await c.issued.create(ns, newIssuedCertificate(ns, "mesh-ca", { annotations: P256, podBounceDirective: { name: "istio", namespace: ns } }));
    const done = await waitForState(c, ns, "mesh-ca", "FINISHED");

    expect(done.status?.error).toBe("");
    const message = `pods in ${ns} with app=no-such-app: no pod matches; nothing to restart`;
    await waitForEvent(c, ns, "mesh-ca", "NoPodsMatched", "Warning");
    expect(await eventsOf(ns, "mesh-ca")).toContainEqual(["Warning", "NoPodsMatched", message]);
    expect(logLines(agent, "mesh-ca")).toContainEqual(expect.objectContaining({ level: "warn", message: "bounce", reason: "NoPodsMatched", detail: message }));
    expect((await directives.get(ns, "istio"))!.status).toEqual({ podsBounced: [{ bouncedPods: [] }] });
    await expectValidTarget(ns);
  });

  // Messages with NS for the test's namespace.
  it.each<[string, Partial<NonNullable<BounceSelector["rootCertSync"]>>, boolean, string, string]>([
    ["a ConfigMap without configMapKey: a wait naming the keys it has, then FAILED BounceTimedOut", {}, true, "BounceTimedOut",
      "PodBounceDirective NS/istio did not finish within 4 s (pods in NS with app=gateway: waiting for key root-cert.pem in ConfigMap NS/istio-ca-root-cert (its keys: ca.crt)); the target secret is written and valid"],
    ["a secretKey the target secret does not have: FAILED BounceFailed at once", { secretKey: "no-such-key.pem" }, true, "BounceFailed",
      "PodBounceDirective NS/istio: pods in NS with app=gateway: secret NS/cacerts has no key no-such-key.pem; the target secret is written and valid"],
    ["a ConfigMap that never appears: a wait, then FAILED BounceTimedOut naming it", {}, false, "BounceTimedOut",
      "PodBounceDirective NS/istio did not finish within 4 s (pods in NS with app=gateway: waiting for ConfigMap NS/istio-ca-root-cert); the target secret is written and valid"],
  ])("rootCertSync, %s; the target stays valid", async (_name, override, createConfigMap, reason, expected) => {
    const { ns, agent } = await setUp("bounce-rootsync");
    if (createConfigMap) {
      await c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "istio-ca-root-cert" }, data: { "ca.crt": "not the root" } } });
    }
    await directives.create(ns, podBounceDirective("istio", ns, [{
      namespace: ns,
      labels: { app: "gateway" },
      rootCertSync: {
        secretRef: { name: "cacerts", namespace: ns },
        secretKey: "root-cert.pem",
        configMapRef: { name: "istio-ca-root-cert", namespace: ns },
        configMapKey: "root-cert.pem",
        ...override,
      },
    }]));
    await c.issued.create(ns, newIssuedCertificate(ns, "mesh-ca", { annotations: P256, podBounceDirective: { name: "istio", namespace: ns } }));
    const failed = await waitForState(c, ns, "mesh-ca", "FAILED");

    const message = expected.replaceAll("NS", ns);
    expect(failed.status?.error).toBe(message);
    await waitForEvent(c, ns, "mesh-ca", reason, "Warning");
    expect(await eventsOf(ns, "mesh-ca")).toContainEqual(["Warning", reason, message]);
    expect(logLines(agent, "mesh-ca")).toContainEqual(expect.objectContaining({ message: "transition", to: "FAILED", reason, detail: message }));
    expect((await directives.get(ns, "istio"))!.status?.podsBounced ?? []).toEqual([]);
    await expectValidTarget(ns);
  });

  it("a directive that does not exist: FAILED PodBounceDirectiveMissing, the target stays valid", async () => {
    const { ns, agent } = await setUp("bounce-nodirective");
    await c.issued.create(ns, newIssuedCertificate(ns, "mesh-ca", { annotations: P256, podBounceDirective: { name: "absent", namespace: ns } }));
    const failed = await waitForState(c, ns, "mesh-ca", "FAILED");

    const message = `PodBounceDirective ${ns}/absent named by spec.podBounceDirective does not exist; the target secret is written and valid, no pod was restarted`;
    expect(failed.status?.error).toBe(message);
    await waitForEvent(c, ns, "mesh-ca", "PodBounceDirectiveMissing", "Warning");
    expect(await eventsOf(ns, "mesh-ca")).toContainEqual(["Warning", "PodBounceDirectiveMissing", message]);
    expect(logLines(agent, "mesh-ca")).toContainEqual(expect.objectContaining({ message: "transition", to: "FAILED", reason: "PodBounceDirectiveMissing", detail: message }));
    await expectValidTarget(ns);
  });
});
