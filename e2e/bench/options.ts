// The command line of `npm run bench` (suite.ts), apart from the suite so it can be tested without
// running anything: suite.ts starts its run as soon as it is loaded.
import { parseArgs } from "node:util";
import type { RunConfig } from "./result";

export const PHASES = ["latency", "throughput", "rsa", "fleet", "soak"] as const;
export type Phase = (typeof PHASES)[number];

export const USAGE = `usage: npm run bench -- [--quick] [--write-docs] [options]

  --quick               a small run (CI smoke, a minute or two): 2 runs per key type, 20 P-256, 3 RSA-4096,
                        idle 10 s, fleet 2 x 5, soak 0.5 min with 5 objects; never writes docs/
  --write-docs          also write docs/PERFORMANCE.md, docs/perf/*.svg, docs/perf/last-run.json (the full run)
  --from FILE           only redraw the report and charts from a result JSON (with --write-docs: into docs/)
  --only LIST           comma-separated phases: ${PHASES.join(",")} (default all)
  --concurrency N       the agent's --concurrency, and the floor client's (default 4, the chart's)
  --latency-runs N      runs per key type (full 30)
  --p256 N              P-256 created at once (full 1000)
  --rsa N               RSA-4096 created at once (full 50)
  --idle-seconds N      idle period after the restart (full 300)
  --fleet-clusters N    managed clusters in the fleet view (full 3)
  --fleet-certs N       P-256 per fleet cluster (full 100)
  --soak-minutes N      length of the soak with continuous re-issuance (full 30, quick 0.5)
  --soak-objects N      P-256 IssuedCertificates the soak re-issues in turn (full 100, quick 5)
  -h, --help`;

export interface Options {
  config: RunConfig;
  only: Set<Phase>;
  writeDocs: boolean;
  from?: string;
}

/** Options that change what is measured: a run with any of them is "custom", not "full" or "quick". */
const CUSTOM = ["latency-runs", "p256", "rsa", "idle-seconds", "fleet-clusters", "fleet-certs", "soak-minutes", "soak-objects", "only"] as const;

/** argv after `--`; agentNodeOptions: the chart's NODE_OPTIONS (cluster.ts chartNodeOptions), recorded in the result. */
export function parseOptions(argv: string[], agentNodeOptions: string[]): Options | "help" {
  const { values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: {
    quick: { type: "boolean" }, "write-docs": { type: "boolean" }, from: { type: "string" }, only: { type: "string" }, concurrency: { type: "string" },
    "latency-runs": { type: "string" }, p256: { type: "string" }, rsa: { type: "string" }, "idle-seconds": { type: "string" },
    "fleet-clusters": { type: "string" }, "fleet-certs": { type: "string" }, "soak-minutes": { type: "string" }, "soak-objects": { type: "string" },
    help: { type: "boolean", short: "h" },
  } });
  if (values.help) return "help";
  const quick = values.quick === true;
  if (quick && values["write-docs"]) throw new Error("--quick never writes docs/ (the committed report is the full run's)");
  const number = (name: keyof typeof values, full: number, small: number, valid: (v: number) => boolean, what: string): number => {
    const raw = values[name];
    if (raw === undefined) return quick ? small : full;
    const v = Number(raw);
    if (typeof raw !== "string" || raw.trim() === "" || !valid(v)) throw new Error(`--${name} must be ${what}, got ${JSON.stringify(raw)}`);
    return v;
  };
  const int = (name: keyof typeof values, full: number, small: number, min = 1) =>
    number(name, full, small, (v) => Number.isInteger(v) && v >= min, `an integer >= ${min}`);
  const only = new Set<Phase>();
  for (const p of (values.only ?? PHASES.join(",")).split(",").map((s) => s.trim()).filter(Boolean)) {
    if (!(PHASES as readonly string[]).includes(p)) throw new Error(`--only: unknown phase ${JSON.stringify(p)} (${PHASES.join(", ")})`);
    only.add(p as Phase);
  }
  const custom = CUSTOM.some((k) => values[k] !== undefined);
  const config: RunConfig = {
    mode: custom ? "custom" : quick ? "quick" : "full",
    concurrency: int("concurrency", 4, 4),
    latencyRuns: int("latency-runs", 30, 2),
    p256Count: int("p256", 1000, 20),
    rsaCount: int("rsa", 50, 3),
    idleSeconds: int("idle-seconds", 300, 10),
    fleetClusters: int("fleet-clusters", 3, 2),
    fleetCertsPerCluster: int("fleet-certs", 100, 5),
    // Fractions allowed: the quick run's soak is half a minute, so CI stays fast.
    soakMinutes: number("soak-minutes", 30, 0.5, (v) => Number.isFinite(v) && v > 0 && v <= 24 * 60, "a number of minutes > 0 (at most a day)"),
    soakObjects: int("soak-objects", 100, 5),
    agentNodeOptions,
  };
  return { config, only, writeDocs: values["write-docs"] === true, from: values.from };
}
