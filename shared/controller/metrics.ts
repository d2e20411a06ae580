// Metrics every controller gets from the manager, labelled by controller name so several
// controllers (and the reference issuer) share one registry without mixing their figures; and two
// of the manager itself: whether it is ready (/readyz) and whether it is the replica that works.
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Controller, Outcome } from "./controller";

export class ControllerMetrics {
  private readonly reconciles: Counter<"controller" | "outcome">;
  private readonly duration: Histogram<"controller">;

  constructor(registry: Registry, state: { controllers: () => Controller[]; ready: () => boolean; leading: () => boolean }) {
    const { controllers } = state;
    this.reconciles = new Counter({
      name: "cert_agent_reconcile_total",
      help: "Reconciles by controller and outcome (success, requeue, error, terminal, timeout)",
      labelNames: ["controller", "outcome"],
      registers: [registry],
    });
    this.duration = new Histogram({
      name: "cert_agent_reconcile_duration_seconds",
      help: "Time spent in one reconcile",
      labelNames: ["controller"],
      buckets: [0.01, 0.05, 0.1, 0.5, 1, 2, 5, 10, 30],
      registers: [registry],
    });
    new Gauge({
      name: "cert_agent_workqueue_depth",
      help: "Keys waiting in a controller's work queue",
      labelNames: ["controller"],
      registers: [registry],
      collect() {
        for (const c of controllers()) this.set({ controller: c.name }, c.queue.len());
      },
    });
    new Gauge({
      name: "cert_agent_ready",
      help: "1 while /readyz passes (caches synced, or standing by for the Lease), else 0",
      registers: [registry],
      collect() {
        this.set(state.ready() ? 1 : 0);
      },
    });
    new Gauge({
      name: "cert_agent_leader",
      help: "1 while this replica works: it holds the Lease, or runs without leader election; 0 while it stands by",
      registers: [registry],
      collect() {
        this.set(state.leading() ? 1 : 0);
      },
    });
  }

  observe(controller: string, outcome: Outcome, durationMs: number): void {
    this.reconciles.inc({ controller, outcome });
    this.duration.observe({ controller }, durationMs / 1000);
  }
}
