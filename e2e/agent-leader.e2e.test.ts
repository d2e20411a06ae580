// Two agent replicas with --leader-elect on the real API server: one works, the other stands by and
// takes over when the leader shuts down (releasing its Lease).
import { KEY_ALGORITHM_ANNOTATION } from "../agent/constants";
import { describeWithControlPlane, sharedKubeConfig } from "./controlplane/testenv";
import { clients, createNamespace, createSigningSecret, InProcessAgent, newIssuedCertificate, startInProcessAgent, startIssuer, waitFor, waitForState } from "./harness";

jest.setTimeout(120_000);

// Long enough that a stalled CI machine does not make the leader lose its Lease mid-test.
const timings = { leaseDurationMs: 6000, renewDeadlineMs: 4000, retryPeriodMs: 500 };

describeWithControlPlane("agent replicas with leader election", () => {
  it("only the leader works; the standby takes over after the leader stops", async () => {
    const c = clients(sharedKubeConfig());
    const ns = await createNamespace(c, "leader");
    await createSigningSecret(c, ns);
    const issuer = await startIssuer(c.kc, ns);
    const lost: string[] = [];
    const args = ["--namespace", ns, "--leader-elect", "--leader-election-namespace", ns];
    const start = (identity: string) =>
      startInProcessAgent(c.kc, args, { identity, leaseTimingsMs: timings, onLostLeadership: () => lost.push(identity) });
    const a = await start("replica-a");
    await waitFor("replica-a to lead", async () => a.isWorking() || undefined, 10_000);
    const b = await start("replica-b");
    let stopped: InProcessAgent[] = [];
    try {
      await c.issued.create(ns, newIssuedCertificate(ns, "first", { annotations: { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" }, target: { name: "cacerts-1", namespace: ns } }));
      await waitForState(c, ns, "first", "FINISHED");
      expect(b.isWorking()).toBe(false);
      expect(b.logs()).not.toMatch(/"message":"transition"/);
      const lease = await c.kc.makeApiClient((await import("@kubernetes/client-node")).CoordinationV1Api).readNamespacedLease({ name: "cert-agent", namespace: ns });
      expect(lease.spec?.holderIdentity).toBe("replica-a");

      const released = Date.now();
      await a.stop();
      stopped = [a];
      await waitFor("replica-b to take over", async () => b.isWorking() || undefined, 10_000);
      process.stderr.write(`[figure] standby took over ${Date.now() - released} ms after the leader released the Lease\n`);
      await c.issued.create(ns, newIssuedCertificate(ns, "second", { annotations: { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" }, target: { name: "cacerts-2", namespace: ns } }));
      await waitForState(c, ns, "second", "FINISHED");
      expect(b.logs()).toMatch(/"name":"second".*"to":"FINISHED"|"to":"FINISHED".*"name":"second"/);
      expect(lost).toEqual([]);
    } finally {
      if (!stopped.includes(a)) await a.stop();
      await b.stop();
      await issuer.stop();
    }
  });
});
