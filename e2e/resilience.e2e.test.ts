// The agent survives what months unattended bring: being SIGKILLed mid-workflow (a real process),
// the API server restarting, and its watches expiring (410 after an etcd compaction).
import { KEY_ALGORITHM_ANNOTATION, KEY_FINGERPRINT_ANNOTATION } from "../agent/constants";
import { startControlPlane, ControlPlane } from "./controlplane/controlplane";
import { describeWithControlPlane, sharedKubeConfig, sharedKubeconfigPath } from "./controlplane/testenv";
import {
  clients,
  createNamespace,
  createSigningSecret,
  decodeSecret,
  getSecretOrUndefined,
  loadKubeConfig,
  newIssuedCertificate,
  opensslCheckBundle,
  spawnAgent,
  startInProcessAgent,
  startIssuer,
  waitFor,
  waitForState,
} from "./harness";
import { importPrivateKeyPem, publicKeyFingerprint } from "../shared/pki";

jest.setTimeout(180_000);

const P256 = { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" };

describeWithControlPlane("agent killed with SIGKILL while REQUESTED", () => {
  it("restarts, keeps the same key and request, and finishes with that key", async () => {
    const c = clients(sharedKubeConfig());
    const ns = await createNamespace(c, "crash");
    await createSigningSecret(c, ns);
    // No issuer yet: the workflow stops at REQUESTED, where we kill the agent.
    const first = spawnAgent(sharedKubeconfigPath(), ["--namespace", ns, "--log-level", "debug"]);
    let second: ReturnType<typeof spawnAgent> | undefined;
    try {
      await c.issued.create(ns, newIssuedCertificate(ns, "crashy", { rsaKeySizeBits: 2048 }));
      await waitForState(c, ns, "crashy", "REQUESTED");
      const stagedBefore = (await getSecretOrUndefined(c, ns, "crashy"))!;
      const requestBefore = (await c.requests.get(ns, "crashy"))!;
      const fingerprint = stagedBefore.metadata!.annotations![KEY_FINGERPRINT_ANNOTATION];
      expect(fingerprint).toMatch(/^[0-9a-f]{64}$/);

      first.child.kill("SIGKILL");
      await first.stop();
      expect(first.child.signalCode).toBe("SIGKILL");

      second = spawnAgent(sharedKubeconfigPath(), ["--namespace", ns, "--log-level", "debug"]);
      await waitFor("restarted agent to start", async () => second!.output().includes("agent started") || undefined, 30_000);
      // Wait until it has looked at the object (where it could do something wrong: make a new key or
      // request) before the issuer answers.
      await waitFor("restarted agent to reconcile the object", async () =>
        second!.output().split("\n").some((l) => l.includes('"reconciled"') && l.includes('"name":"crashy"')) || undefined, 30_000);
      const stagedAfter = (await getSecretOrUndefined(c, ns, "crashy"))!;
      expect(stagedAfter.metadata!.annotations![KEY_FINGERPRINT_ANNOTATION]).toBe(fingerprint);
      expect(stagedAfter.data).toEqual(stagedBefore.data);
      const requestAfter = (await c.requests.get(ns, "crashy"))!;
      expect(requestAfter.metadata.uid).toBe(requestBefore.metadata.uid);
      expect(requestAfter.metadata.generation).toBe(requestBefore.metadata.generation);

      const issuer = await startIssuer(c.kc, ns);
      try {
        await waitForState(c, ns, "crashy", "FINISHED");
      } finally {
        await issuer.stop();
      }
      const data = decodeSecret((await getSecretOrUndefined(c, ns, "cacerts"))!);
      expect(await publicKeyFingerprint((await importPrivateKeyPem(data["ca-key.pem"])).publicKey)).toBe(fingerprint);
      expect(opensslCheckBundle(data)).toEqual({ verify: "ca-cert.pem: OK", keyMatches: true });
      expect((await c.requests.list(ns)).items.map((r) => r.metadata.uid)).toEqual([requestBefore.metadata.uid]);
      expect(await second.stop("SIGTERM")).toBe(0);
      expect(second.output()).not.toMatch(/PRIVATE KEY/);
    } finally {
      await first.stop("SIGKILL");
      await second?.stop("SIGKILL");
    }
  });
});

describeWithControlPlane("API server restart and watch expiry", () => {
  let cp: ControlPlane;

  beforeAll(async () => {
    cp = await startControlPlane();
  });
  afterAll(async () => {
    await cp?.stop();
  });

  it("keeps working after the API server restarts and its watches expire with 410", async () => {
    const c = clients(loadKubeConfig(cp.kubeconfigPath));
    const ns = await createNamespace(c, "restart");
    await createSigningSecret(c, ns);
    const issuer = await startIssuer(c.kc, ns);
    const agent = await startInProcessAgent(c.kc, ["--namespace", ns]);
    try {
      await c.issued.create(ns, newIssuedCertificate(ns, "before", { annotations: P256, target: { name: "cacerts-before", namespace: ns } }));
      await waitForState(c, ns, "before", "FINISHED");

      // Move etcd past every resourceVersion the agent has seen, then compact: its watches can only
      // resume by relisting (410 Gone), and the restart in between breaks every connection.
      for (let i = 0; i < 5; i++) await c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: `bump-${i}` } } });
      await cp.stopApiServer();
      const revision = await cp.compactEtcd();
      expect(revision).toBeGreaterThan(0);
      await waitFor("the agent to see the API server gone", async () => /informer stopped, restarting/.test(agent.logs()) || undefined, 30_000);
      await cp.startApiServer();

      await c.issued.create(ns, newIssuedCertificate(ns, "after", { annotations: P256, target: { name: "cacerts-after", namespace: ns } }));
      await waitForState(c, ns, "after", "FINISHED", 90_000);
      const data = decodeSecret((await getSecretOrUndefined(c, ns, "cacerts-after"))!);
      expect(opensslCheckBundle(data)).toEqual({ verify: "ca-cert.pem: OK", keyMatches: true });

      // And a deleted target secret is still noticed through the re-established secret watch.
      await c.core.deleteNamespacedSecret({ name: "cacerts-before", namespace: ns });
      await waitFor("target secret re-issued", () => getSecretOrUndefined(c, ns, "cacerts-before"), 60_000);
    } finally {
      await agent.stop();
      await issuer.stop();
    }
  });
});
