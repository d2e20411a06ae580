// The agent's own Prometheus metrics (prom-client), on a registry of their own so tests can run
// several agents; the manager adds the per-controller reconcile metrics to the same registry.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

export class AgentMetrics {
  readonly registry = new Registry();
  readonly transitions = new Counter({
    name: "cert_agent_transitions_total",
    help: "IssuedCertificate state transitions",
    labelNames: ["from", "to", "reason"],
    registers: [this.registry],
  });
  readonly keygenSeconds = new Histogram({
    name: "cert_agent_key_generation_duration_seconds",
    help: "Time to generate one private key",
    labelNames: ["algorithm"],
    buckets: [0.01, 0.1, 0.5, 1, 2, 5, 10, 20],
    registers: [this.registry],
  });
  readonly expiration = new Gauge({
    name: "cert_agent_certificate_expiration_timestamp_seconds",
    help: "NotAfter of the intermediate written to the target secret",
    labelNames: ["namespace", "name"],
    registers: [this.registry],
  });
  readonly renewal = new Gauge({
    name: "cert_agent_certificate_renewal_timestamp_seconds",
    help: "When the agent renews the intermediate in the target secret (derived from the certificate)",
    labelNames: ["namespace", "name"],
    registers: [this.registry],
  });
  readonly ready = new Gauge({
    name: "cert_agent_certificate_ready",
    help: "1 when the target secret holds a valid, unexpired intermediate of this IssuedCertificate (also while a renewal is under way), else 0",
    labelNames: ["namespace", "name"],
    registers: [this.registry],
  });
  readonly rootChanges = new Counter({
    name: "cert_agent_root_changes_total",
    help: "Root changes trusted in a target secret (root rotation step 1: the issuer signed with a root the target did not trust)",
    labelNames: ["namespace", "name"],
    registers: [this.registry],
  });
  readonly rootRotationPhase = new Gauge({
    name: "cert_agent_root_rotation_phase",
    help: "Root rotation of the target secret: 0 none, 1 trusting old and new roots (step 1), 2 new intermediate with the old roots kept (step 2, until --root-overlap ends)",
    labelNames: ["namespace", "name"],
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
