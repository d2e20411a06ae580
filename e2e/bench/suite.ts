#!/usr/bin/env node
// `npm run bench -- [--quick] [--write-docs] [...]`: issue 12's benchmark suite. Runs every measurement
// (latency.ts, throughput.ts, fleet.ts, soak.ts) against local control planes, writes the JSON result and the
// report with its charts (report.ts, charts.ts). Figures, not a test: nothing here asserts a timing.
//
// Output: always bench-results/<timestamp>-<mode>/ (gitignored): result.json, PERFORMANCE.md, perf/*.svg.
// With --write-docs (the full run): also docs/PERFORMANCE.md, docs/perf/*.svg and docs/perf/last-run.json.
// --from FILE redraws the report and charts from a result JSON without running anything.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem, type } from "node:os";
import { join, relative } from "node:path";
import { REPO_ROOT } from "../harness";
import { type BenchAgent, chartNodeOptions, type Log, spawnBenchAgent, spawnIssuers, startBenchCluster, type BenchCluster } from "./cluster";
import { fleetPhase } from "./fleet";
import { latencyPhase } from "./latency";
import { memory, warnings } from "./measure";
import { type Options, parseOptions, USAGE } from "./options";
import { charts, renderReport, targets } from "./report";
import { type BenchResult, type Machine, RESULT_VERSION } from "./result";
import { soakPhase } from "./soak";
import { restartPhase, throughputRun } from "./throughput";

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
  // Last: the longest phase, and a failure in it leaves every other figure already measured.
  if (o.only.has("soak")) {
    await withCluster("soak", async (cl) => {
      const agent = await spawnBenchAgent(cl, { concurrency: c.concurrency });
      try {
        await agent.ready;
        r.soak = await soakPhase(cl, agent, { minutes: c.soakMinutes, objects: c.soakObjects, log });
      } finally {
        collect(agent);
        await agent.stop();
      }
    });
  }
  r.durationS = (Date.now() - started) / 1000;
  r.machine.loadEnd = loadavg()[0]!;
  return r;
}

async function main(): Promise<number> {
  let o: Options | "help";
  try {
    o = parseOptions(process.argv.slice(2), chartNodeOptions());
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
