// Event aggregation with the whole agent on the real API server: an issuer that keeps failing makes
// the agent retry with backoff, and every identical IssuerFailed lands in one Event whose count is
// the number of failures, instead of a new Event per retry.
import { KEY_ALGORITHM_ANNOTATION } from "../agent/constants";
import { describeWithControlPlane, sharedKubeConfig } from "./controlplane/testenv";
import { clients, createNamespace, createSigningSecret, newIssuedCertificate, startInProcessAgent, startIssuer, waitFor } from "./harness";
import { FAIL_ANNOTATION } from "./issuer/issuer";

jest.setTimeout(120_000);

describeWithControlPlane("Events of a retried failure", () => {
  it("three or more failures of the issuer make one IssuerFailed Event whose count is the number of failures", async () => {
    const c = clients(sharedKubeConfig());
    const ns = await createNamespace(c, "events-agg");
    await createSigningSecret(c, ns);
    const issuer = await startIssuer(c.kc, ns);
    const agent = await startInProcessAgent(c.kc, ["--namespace", ns, "--retry-base-delay", "500ms", "--retry-max-delay", "1s"]);
    try {
      await c.issued.create(ns, newIssuedCertificate(ns, "flaky", {
        annotations: { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256", [FAIL_ANNOTATION]: "signing CA is offline" },
      }));
      const failures = () => agent.logs().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((l) => l.message === "transition" && l.name === "flaky" && l.reason === "IssuerFailed").length;
      await waitFor("three failures", async () => failures() >= 3 || undefined, 60_000);
      await issuer.stop(); // no more failures while we look
      const events = async () => (await c.core.listNamespacedEvent({ namespace: ns, fieldSelector: "involvedObject.name=flaky,reason=IssuerFailed" })).items;
      // The last failure's Event write may still be in flight: wait for the count to catch up with the log.
      const [event, ...more] = await waitFor("the count to match the failures", async () => {
        const list = await events();
        return list.length === 1 && list[0]!.count === failures() ? list : undefined;
      }, 10_000);
      expect(more).toHaveLength(0);
      expect(event).toMatchObject({ type: "Warning", reason: "IssuerFailed", message: `certificate request ${ns}.flaky failed to be signed by Issuer: signing CA is offline` });
      expect(event!.count).toBeGreaterThanOrEqual(3);
      // Whole seconds on the wire: the failures may share one.
      expect(Date.parse(String(event!.lastTimestamp))).toBeGreaterThanOrEqual(Date.parse(String(event!.firstTimestamp)));
    } finally {
      await agent.stop();
      await issuer.stop();
    }
  });
});
