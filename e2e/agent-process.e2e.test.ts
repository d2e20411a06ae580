// The agent as its real executable: probes and metrics over HTTP, a clean exit on SIGTERM.
import { KEY_ALGORITHM_ANNOTATION } from "../agent/constants";
import { describeWithControlPlane, sharedKubeConfig, sharedKubeconfigPath } from "./controlplane/testenv";
import { clients, createNamespace, createSigningSecret, fetchText, newIssuedCertificate, spawnAgent, startIssuer, waitFor, waitForState } from "./harness";

jest.setTimeout(120_000);


describeWithControlPlane("cert-agent process", () => {
  it("serves /healthz, /readyz and /metrics on loopback, and exits 0 on SIGTERM", async () => {
    const c = clients(sharedKubeConfig());
    const ns = await createNamespace(c, "process");
    await createSigningSecret(c, ns);
    const issuer = await startIssuer(c.kc, ns);
    // Later flags win: ask for ephemeral loopback ports instead of the harness's "disabled".
    const agent = spawnAgent(sharedKubeconfigPath(), ["--namespace", ns, "--health-probe-bind-address", "127.0.0.1:0", "--metrics-bind-address", "127.0.0.1:0"]);
    try {
      const started = await waitFor("agent started line", async () => {
        const line = agent.output().split("\n").find((l) => l.includes('"agent started"'));
        return line ? (JSON.parse(line) as { healthPort: number; metricsPort: number }) : undefined;
      }, 30_000);
      expect(await fetchText(started.healthPort, "/healthz")).toEqual({ status: 200, body: "ok\n" });
      await waitFor("readyz 200", async () => (await fetchText(started.healthPort, "/readyz")).status === 200 || undefined, 30_000);

      await c.issued.create(ns, newIssuedCertificate(ns, "metered", { annotations: { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" } }));
      await waitForState(c, ns, "metered", "FINISHED");
      const metrics = (await fetchText(started.metricsPort, "/metrics")).body;
      expect(metrics).toContain('cert_agent_transitions_total{from="ISSUED",to="FINISHED",reason="Finished"} 1');
      expect(metrics).toMatch(new RegExp(`cert_agent_certificate_expiration_timestamp_seconds\\{namespace="${ns}",name="metered"\\} \\d{10}`));
      expect(metrics).toMatch(/cert_agent_key_generation_duration_seconds_count\{algorithm="ECDSA-P256"\} 1/);
      expect(metrics).not.toMatch(/PRIVATE KEY/);
      expect(await agent.stop("SIGTERM")).toBe(0);
      expect(agent.output()).toContain('"agent stopped"');
    } finally {
      await agent.stop("SIGKILL");
      await issuer.stop();
    }
  });
});
