// The agent's own metrics: each on the agent's registry (what /metrics serves), none on prom-client's
// global one, so that several agents (tests, a restart in-process) each have their own.
import { register as globalRegistry } from "prom-client";
import { AgentMetrics } from "./metrics";

describe("AgentMetrics", () => {
  it.each<[keyof AgentMetrics, string]>([
    ["transitions", "cert_agent_transitions_total"],
    ["keygenSeconds", "cert_agent_key_generation_duration_seconds"],
    ["expiration", "cert_agent_certificate_expiration_timestamp_seconds"],
    ["renewal", "cert_agent_certificate_renewal_timestamp_seconds"],
    ["ready", "cert_agent_certificate_ready"],
    ["rootChanges", "cert_agent_root_changes_total"],
    ["rootRotationPhase", "cert_agent_root_rotation_phase"],
  ])("%s is %s on the agent's registry, and only there", (property, name) => {
    const metrics = new AgentMetrics();
    expect(metrics.registry.getSingleMetric(name)).toBe(metrics[property]);
    expect(globalRegistry.getSingleMetric(name)).toBeUndefined();
  });

  it("serves what is recorded, per agent", async () => {
    const [a, b] = [new AgentMetrics(), new AgentMetrics()];
    a.transitions.inc({ from: "PENDING", to: "ISSUED", reason: "" });
    a.expiration.set({ namespace: "mesh", name: "ic" }, 1_800_000_000);
    a.ready.set({ namespace: "mesh", name: "ic" }, 1);
    const text = await a.registry.metrics();
    expect(text).toContain('cert_agent_transitions_total{from="PENDING",to="ISSUED",reason=""} 1\n');
    expect(text).toContain('cert_agent_certificate_expiration_timestamp_seconds{namespace="mesh",name="ic"} 1800000000\n');
    expect(text).toContain('cert_agent_certificate_ready{namespace="mesh",name="ic"} 1\n');
    expect(await b.registry.metrics()).not.toContain('cert_agent_certificate_ready{namespace="mesh",name="ic"}');
  });

  it("times key generation in buckets from 10 ms to 20 s (RSA-4096 can take seconds)", async () => {
    const metrics = new AgentMetrics();
    metrics.keygenSeconds.observe({ algorithm: "RSA-4096" }, 3);
    const text = await metrics.registry.getSingleMetricAsString("cert_agent_key_generation_duration_seconds");
    const buckets = [...text.matchAll(/_bucket\{le="([^"]+)",algorithm="RSA-4096"\} (\d+)/g)].map(([, le, count]) => `${le}:${count}`);
    expect(buckets).toEqual(["0.01:0", "0.1:0", "0.5:0", "1:0", "2:0", "5:1", "10:1", "20:1", "+Inf:1"]);
  });
});
