#!/usr/bin/env node
// `npm run bench -- [--quick] [--write-docs] [...]`: issue 12's benchmark suite. Runs every measurement
// (latency.ts, throughput.ts, fleet.ts) against local control planes, writes the JSON result and the
// report with its charts (report.ts, charts.ts). Figures, not a test: nothing here asserts a timing.
//
// Output: always bench-results/<timestamp>-<mode>/ (gitignored): result.json, PERFORMANCE.md, perf/*.svg.
// With --write-docs (the full run): also docs/PERFORMANCE.md, docs/perf/*.svg and docs/perf/last-run.json.
// --from FILE redraws the report and charts from a result JSON without running anything.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem, type } from "node:os";
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import { REPO_ROOT } from "../harness";
import { type BenchAgent, chartNodeOptions, type Log, spawnBenchAgent, spawnIssuers, startBenchCluster, type BenchCluster } from "./cluster";
import { fleetPhase } from "./fleet";
import { latencyPhase } from "./latency";
import { memory, warnings } from "./measure";
import { charts, renderReport, targets } from "./report";
import { type BenchResult, type Machine, RESULT_VERSION, type RunConfig } from "./result";
import { restartPhase, throughputRun } from "./throughput";

const PHASES = ["latency", "throughput", "rsa", "fleet"] as const;
type Phase = (typeof PHASES)[number];

const USAGE = `usage: npm run bench -- [--quick] [--write-docs] [options]

  --quick               a small run (CI smoke, a minute or two): 2 runs per key type, 20 P-256, 3 RSA-4096,
                        idle 10 s, fleet 2 x 5; never writes docs/
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
  -h, --help`;

interface Options {
  config: RunConfig;
  only: Set<Phase>;
  writeDocs: boolean;
  from?: string;
}

function parseOptions(argv: string[]): Options | "help" {
  const { values } = parseArgs({ args: argv, strict: true, allowPositionals: false, options: {
    quick: { type: "boolean" }, "write-docs": { type: "boolean" }, from: { type: "string" }, only: { type: "string" }, concurrency: { type: "string" },
    "latency-runs": { type: "string" }, p256: { type: "string" }, rsa: { type: "string" }, "idle-seconds": { type: "string" },
    "fleet-clusters": { type: "string" }, "fleet-certs": { type: "string" }, help: { type: "boolean", short: "h" },
  } });
  if (values.help) return "help";
  const quick = values.quick === true;
  if (quick && values["write-docs"]) throw new Error("--quick never writes docs/ (the committed report is the full run's)");
  const int = (name: keyof typeof values, full: number, small: number, min = 1): number => {
    const raw = values[name];
    if (raw === undefined) return quick ? small : full;
    const v = Number(raw);
    if (!Number.isInteger(v) || v < min) throw new Error(`--${name} must be an integer >= ${min}, got ${JSON.stringify(raw)}`);
    return v;
  };
  const only = new Set<Phase>();
  for (const p of (values.only ?? PHASES.join(",")).split(",").map((s) => s.trim()).filter(Boolean)) {
    if (!(PHASES as readonly string[]).includes(p)) throw new Error(`--only: unknown phase ${JSON.stringify(p)} (${PHASES.join(", ")})`);
    only.add(p as Phase);
  }
  const custom = ["latency-runs", "p256", "rsa", "idle-seconds", "fleet-clusters", "fleet-certs", "only"].some((k) => values[k as keyof typeof values] !== undefined);
  const config: RunConfig = {
    mode: custom ? "custom" : quick ? "quick" : "full",
    concurrency: int("concurrency", 4, 4),
    latencyRuns: int("latency-runs", 30, 2),
    p256Count: int("p256", 1000, 20),
    rsaCount: int("rsa", 50, 3),
    idleSeconds: int("idle-seconds", 300, 10),
    fleetClusters: int("fleet-clusters", 3, 2),
    fleetCertsPerCluster: int("fleet-certs", 100, 5),
    agentNodeOptions: chartNodeOptions(),
  };
  return { config, only, writeDocs: values["write-docs"] === true, from: values.from };
}

function machine(loadStart: number): Machine {
  const cpu = cpus();
  return {
    cpuModel: cpu[0]?.model.trim() ?? "unknown",
    cores: cpu.length,
    memoryGiB: totalmem() / 2 ** 30,
    node: process.version,
    kernel: release(),
    os: type(),
    loadStart,
    loadEnd: loadavg()[0]!,
  };
}

/** Writes PERFORMANCE.md, perf/*.svg and perf/last-run.json (or result.json) under dir. */
function writeOutputs(dir: string, r: BenchResult, command: string, jsonName: string): void {
  mkdirSync(join(dir, "perf"), { recursive: true });
  writeFileSync(join(dir, "perf", jsonName), `${JSON.stringify(r, null, 1)}\n`);
  for (const [file, svg] of Object.entries(charts(r))) writeFileSync(join(dir, "perf", file), svg);
  const md = renderReport(r, { command, json: `perf/${jsonName}` });
  writeFileSync(join(dir, "PERFORMANCE.md"), md);
}

function summary(r: BenchResult): string {
  const lines = ["", "targets (figures only; nothing is asserted):"];
  for (const t of targets(r)) lines.push(`  ${t.met === undefined ? "  " : t.met ? "ok" : "NO"}  ${t.what}: ${t.result} (target ${t.target})`);
  return lines.join("\n");
}

async function run(o: Options, log: Log): Promise<BenchResult> {
  const started = Date.now();
  const loadStart = loadavg()[0]!;
  const c = o.config;
  const r: BenchResult = {
    version: RESULT_VERSION, startedAt: new Date(started).toISOString(), durationS: 0, machine: machine(loadStart), config: c,
    throughput: [], memory: {}, startup: [], agentWarnings: [], errors: [],
  };
  const collect = (a: BenchAgent) => r.agentWarnings.push(...warnings(a));
  const settleMs = c.mode === "quick" ? 2000 : 5000;

  // One cluster at a time (the machine's cores are the limit): each is stopped before the next starts.
  // A phase that fails is recorded and the next one runs: a long run still writes what it measured.
  const phase = async (name: string, fn: () => Promise<void>) => {
    try {
      await fn();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      r.errors.push(`${name}: ${message.split("\n")[0]}`);
      log(`phase ${name} failed: ${message}`);
    }
  };
  const withCluster = (name: string, fn: (cl: BenchCluster) => Promise<void>) => phase(name, async () => {
    const cl = await startBenchCluster(name, log);
    try {
      const issuer = await spawnIssuers([cl.cp.kubeconfigPath]);
      try {
        await fn(cl);
      } finally {
        await issuer.stop();
      }
    } finally {
      await cl.stop();
    }
  });

  if (o.only.has("latency")) {
    await withCluster("latency", async (cl) => {
      const agent = await spawnBenchAgent(cl, { concurrency: c.concurrency });
      try {
        await agent.ready;
        const idleEmpty = await memory(agent, settleMs);
        log(`idle, 0 objects: RSS ${idleEmpty.rssMiB.toFixed(0)} MiB, heap used ${idleEmpty.heapUsedMiB.toFixed(0)} MiB`);
        r.memory.idleEmpty = idleEmpty;
        // Memory was measured first; the startup figures are those of this same process.
        r.latency = await latencyPhase(cl, agent, { runs: c.latencyRuns, log, onStartup: (s) => r.startup.push(s) });
      } finally {
        collect(agent);
        await agent.stop();
      }
    });
  }
  if (o.only.has("throughput")) {
    await withCluster("throughput", async (cl) => {
      const { result, agent } = await throughputRun(cl, { key: "ECDSA-P256", count: c.p256Count, concurrency: c.concurrency, log });
      r.throughput.push(result);
      const next = await restartPhase(cl, agent, { concurrency: c.concurrency, objects: c.p256Count, idleSeconds: c.idleSeconds, settleMs, log });
      try {
        collect(agent);
        r.startup.push(next.startup);
        r.idle = next.idle;
        r.memory.afterFinished = { ...next.after, objects: c.p256Count };
        r.memory.restarted = { ...next.restarted, objects: next.startup.objects };
      } finally {
        collect(next.agent);
        await next.agent.stop();
      }
    });
  }
  if (o.only.has("rsa")) {
    await withCluster("rsa", async (cl) => {
      const { result, agent } = await throughputRun(cl, { key: "RSA-4096", count: c.rsaCount, concurrency: c.concurrency, log });
      r.throughput.push(result);
      collect(agent);
      await agent.stop();
    });
  }
  if (o.only.has("fleet")) {
    await phase("fleet", async () => {
      r.fleet = await fleetPhase({ clusters: c.fleetClusters, certsPerCluster: c.fleetCertsPerCluster, concurrency: c.concurrency, settleMs, log, onWarnings: collect });
    });
  }
  r.durationS = (Date.now() - started) / 1000;
  r.machine.loadEnd = loadavg()[0]!;
  return r;
}

async function main(): Promise<number> {
  let o: Options | "help";
  try {
    o = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message.split("\n")[0]}\n${USAGE}\n`);
    return 2;
  }
  if (o === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const log: Log = (m) => void process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
  const args = process.argv.slice(2).filter((a) => a !== "--write-docs");
  const command = `npm run bench -- ${o.writeDocs || o.from ? "--write-docs" : args.join(" ")}`.trim().replace(/ --$/, "");
  if (o.from) {
    const r = JSON.parse(readFileSync(o.from, "utf8")) as BenchResult;
    const dir = o.writeDocs ? join(REPO_ROOT, "docs") : join(REPO_ROOT, "bench-results", `redraw-${Date.now()}`);
    writeOutputs(dir, r, command, o.writeDocs ? "last-run.json" : "result.json");
    process.stdout.write(`report redrawn into ${relative(process.cwd(), dir) || "."}${summary(r)}\n`);
    return 0;
  }
  const r = await run(o, log);
  const stamp = r.startedAt.replace(/[:.]/g, "-");
  const dir = join(REPO_ROOT, "bench-results", `${stamp}-${r.config.mode}`);
  writeOutputs(dir, r, command, "result.json");
  if (o.writeDocs) writeOutputs(join(REPO_ROOT, "docs"), r, command, "last-run.json");
  process.stdout.write(`${readFileSync(join(dir, "PERFORMANCE.md"), "utf8").split("\n## How it is measured")[0]}\n`);
  process.stdout.write(`${summary(r)}\n\nwritten: ${relative(process.cwd(), dir)}/${o.writeDocs ? " and docs/PERFORMANCE.md, docs/perf/" : ""} (${r.durationS.toFixed(0)} s)\n`);
  if (r.errors.length) {
    process.stderr.write(`bench: ${r.errors.length} phase(s) failed:\n${r.errors.map((e) => `  ${e}`).join("\n")}\n`);
    return 1;
  }
  return 0;
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`bench failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
