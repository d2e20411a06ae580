// docs/PERFORMANCE.md and its charts, from a BenchResult alone (pure: the same JSON gives the same text).
import { barChart, lineChart, stackedBars, stripChart } from "./charts";
import { secondHalfFit } from "./plateau";
import type { BenchResult, EventLoop, Memory, SoakResult, ThroughputResult } from "./result";
import { ms, ratioText } from "./stats";

export interface Target {
  what: string;
  target: string;
  result: string;
  met: boolean | undefined;
}

const f1 = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "n/a" : v.toFixed(1));
const f0 = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "n/a" : v.toFixed(0));
const range = (v: number[]) => (f0(Math.min(...v)) === f0(Math.max(...v)) ? f0(v[0]) : `${f0(Math.min(...v))}-${f0(Math.max(...v))}`);
const f2 = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "n/a" : v.toFixed(2));
const f3 = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "n/a" : v.toFixed(3));

function table(header: string[], rows: (string | number)[][], align?: ("l" | "r")[]): string {
  const a = align ?? header.map((_, i) => (i === 0 ? "l" : "r"));
  return [
    `| ${header.join(" | ")} |`,
    `|${a.map((x) => (x === "r" ? "---:" : "---")).join("|")}|`,
    ...rows.map((r) => `| ${r.map((c) => String(c).replace(/\|/g, "\\|")).join(" | ")} |`),
  ].join("\n");
}

/** Every event-loop window of the run, by phase. */
export function eventLoops(r: BenchResult): { phase: string; e: EventLoop }[] {
  const out: { phase: string; e: EventLoop }[] = [];
  if (r.latency) out.push({ phase: "latency, one at a time (all key types)", e: r.latency.eventLoop });
  for (const t of r.throughput) out.push({ phase: `${t.count} ${t.key} at once`, e: t.agent.eventLoop });
  for (const c of r.fleet?.perCluster ?? []) out.push({ phase: `fleet, ${c.name}`, e: c.eventLoop });
  if (r.soak) out.push({ phase: `soak, ${r.soak.objects} re-issued for ${r.soak.minutes} min`, e: r.soak.eventLoop });
  return out;
}

const p256Run = (r: BenchResult) => r.throughput.find((t) => t.key === "ECDSA-P256");
const rsaRun = (r: BenchResult) => r.throughput.find((t) => t.key === "RSA-4096");

export function targets(r: BenchResult): Target[] {
  const out: Target[] = [];
  const loops = eventLoops(r);
  if (loops.length) {
    const max = Math.max(...loops.map((l) => l.e.maxMs));
    out.push({ what: "event-loop delay, max over the run", target: "< 50 ms", result: `${ms(max)} ms (p99 at most ${ms(Math.max(...loops.map((l) => l.e.p99Ms)))} ms)`, met: max < 50 });
  }
  const p256 = r.latency?.types.find((t) => t.key === "ECDSA-P256");
  if (p256) {
    out.push({ what: "P-256 created -> FINISHED, median", target: "< 120 ms", result: `${ms(p256.total.median)} ms`, met: p256.total.median < 120 });
    out.push({ what: "P-256 agent share, median", target: "< 15 ms", result: `${ms(p256.agent.median)} ms`, met: p256.agent.median < 15 });
  }
  const tp = p256Run(r);
  if (tp) out.push({ what: `${tp.count} P-256 at once, vs floor (a)`, target: "<= 1.3x", result: ratioText(tp.agent.ms, tp.floorA.ms), met: tp.agent.ms / tp.floorA.ms <= 1.3 });
  const rsa = rsaRun(r);
  if (rsa) out.push({ what: `${rsa.count} RSA-4096 at once, vs floor (b)`, target: "<= 1.2x", result: ratioText(rsa.agent.ms, rsa.floorB.ms), met: rsa.agent.ms / rsa.floorB.ms <= 1.2 });
  const { idleEmpty, afterFinished, restarted } = r.memory;
  if (idleEmpty) out.push({ what: "RSS idle, 0 objects", target: "< 70 MiB", result: `${f0(idleEmpty.rssMiB)} MiB`, met: idleEmpty.rssMiB < 70 });
  if (afterFinished && restarted) {
    out.push({ what: `RSS with ${afterFinished.objects} objects (after FINISHED / restarted)`, target: "< 120 MiB",
      result: `${f0(afterFinished.rssMiB)} / ${f0(restarted.rssMiB)} MiB`, met: Math.max(afterFinished.rssMiB, restarted.rssMiB) < 120 });
  }
  const rsa2048 = r.latency?.types.find((t) => t.key === "RSA-2048");
  if (rsa2048) out.push({ what: "agent CPU per RSA-2048 certificate", target: "<= 0.07 s", result: `${f3(rsa2048.cpuPerCertS)} s`, met: rsa2048.cpuPerCertS <= 0.07 });
  if (p256) {
    const worst = Math.max(p256.requests.median, ...r.throughput.map((t) => t.agent.requestsPerCert));
    out.push({ what: "agent API requests per certificate (happy path)", target: "<= 8",
      result: [`${f0(p256.requests.median)} one at a time (P-256 median)`, ...r.throughput.map((t) => `${f1(t.agent.requestsPerCert)} in ${t.count} ${t.key}`)].join("; "), met: worst <= 8 });
  }
  if (r.soak) out.push(plateauTarget(r.soak));
  if (r.idle) out.push({ what: `agent requests while idle ${r.idle.seconds} s beyond watches and Lease renewals`, target: "0", result: String(r.idle.beyond), met: r.idle.beyond === 0 });
  return out;
}

/** The soak length the plateau target asks for, and the slope under which RSS counts as no longer growing. */
export const PLATEAU_MINUTES = 30;
export const PLATEAU_MAX_SLOPE_MIB_PER_10MIN = 2;

/**
 * Met when the least-squares slope of RSS over the soak's second half is below 2 MiB per 10 minutes. A
 * soak shorter than 30 minutes is reported but not judged: its second half is mostly warm-up.
 */
function plateauTarget(s: SoakResult): Target {
  const p = s.plateau;
  const figures = `slope ${f1(p.slopeMiBPer10Min)} MiB per 10 min over the second half; growth ${f1(p.growthMiB)} MiB ` +
    `(mean of minutes ${win(p.final)} minus ${win(p.baseline)})`;
  const long = s.minutes >= PLATEAU_MINUTES;
  return {
    what: `RSS stops growing over a ${PLATEAU_MINUTES}-minute soak (continuous re-issuance)`,
    target: `second-half slope < ${PLATEAU_MAX_SLOPE_MIB_PER_10MIN} MiB per 10 min`,
    result: long ? figures : `${figures}; a ${s.minutes}-minute soak: too short to judge`,
    met: long && Number.isFinite(p.slopeMiBPer10Min) ? p.slopeMiBPer10Min < PLATEAU_MAX_SLOPE_MIB_PER_10MIN : undefined,
  };
}

/** A window of minutes as "10-15" (or "0.17-0.33" for a short soak). */
const win = (w: { fromMin: number; toMin: number }) => `${tickMinutes(w.fromMin)}-${tickMinutes(w.toMin)}`;
const tickMinutes = (v: number) => String(Number(v.toFixed(2)));

/** A duration for a chart label: "1.2 s", or "45 ms" below 1 s. */
const seconds = (msValue: number) => (msValue < 1000 ? `${ms(msValue)} ms` : `${(msValue / 1000).toFixed(1)} s`);

export const CHART_FILES = { latency: "latency.svg", split: "latency-split.svg", throughput: "throughput.svg", rss: "rss.svg", soak: "soak-rss.svg" } as const;

export function charts(r: BenchResult): Record<string, string> {
  const out: Record<string, string> = {};
  if (r.latency) {
    out[CHART_FILES.latency] = stripChart(r.latency.types.map((t) => ({ label: t.key, values: t.runs.map((x) => x.totalMs) })),
      { title: `IssuedCertificate created -> FINISHED, one at a time (${r.latency.types[0]?.runs.length ?? 0} runs per key type)`, unit: "ms" });
    out[CHART_FILES.split] = stackedBars(r.latency.types.map((t) => ({ label: t.key, parts: [
      { name: "key generation", value: t.keygen.median },
      { name: "issuer", value: t.issuer.median },
      { name: "API server (agent's requests)", value: t.api.median },
      { name: "agent's own", value: t.agent.median },
    ] })), { title: "Where the time goes (medians of each part)", unit: "ms" });
  }
  if (r.throughput.length) {
    out[CHART_FILES.throughput] = barChart(r.throughput.map((t) => ({ label: `${t.count} ${t.key}`, bars: [
      { name: "agent", value: t.agent.ms / 1000, note: seconds(t.agent.ms) },
      { name: "floor (a): API writes, no crypto", value: t.floorA.ms / 1000, note: `${seconds(t.floorA.ms)} (agent ${ratioText(t.agent.ms, t.floorA.ms)})` },
      { name: "floor (b): key generation on all cores", value: t.floorB.ms / 1000, note: `${seconds(t.floorB.ms)} (agent ${ratioText(t.agent.ms, t.floorB.ms)})` },
    ] })), { title: "Created at once -> all FINISHED, against the floors", unit: "s" });
    const big = p256Run(r) ?? r.throughput[0]!;
    out[CHART_FILES.rss] = lineChart([{ name: `agent RSS, ${big.count} ${big.key}`, points: big.rss.map((s) => [s.tS, s.rssMiB]) }],
      { title: `Agent RSS during the ${big.count}-certificate run (sampled every second)`, xLabel: "s since the first create", yLabel: "MiB",
        markers: [{ x: big.finishedAtS, label: "all FINISHED" }],
        levels: [{ y: 70, label: "target idle: 70 MiB" }, { y: 120, label: "target with 1000 objects: 120 MiB" }] });
  }
  if (r.soak) out[CHART_FILES.soak] = soakChart(r.soak);
  return out;
}

/** RSS and V8 heap used over the soak (minutes), with the second half's least-squares line. */
function soakChart(s: SoakResult): string {
  const fit = secondHalfFit(s.rss, s.minutes);
  const line = (tS: number) => fit.intercept + fit.slope * tS;
  const series = [
    { name: "agent RSS", points: s.rss.map((x) => [x.tS / 60, x.rssMiB] as [number, number]) },
    { name: "V8 heap used", points: s.heap.map((x) => [x.tS / 60, x.usedMiB] as [number, number]) },
  ];
  if (Number.isFinite(fit.slope)) {
    series.push({ name: `RSS fit: ${f1(fit.slope * 600)} MiB/10 min`, points: [[fit.fromS / 60, line(fit.fromS)], [fit.toS / 60, line(fit.toS)]] });
  }
  return lineChart(series, {
    title: `Agent memory over a ${s.minutes}-minute soak, ${s.objects} P-256 re-issued in turn (${f0(s.issuances)} issuances)`,
    xLabel: "minutes since the soak started", yLabel: "MiB",
    markers: [{ x: fit.fromS / 60, label: "second half (fit)" }],
  });
}

function throughputRows(t: ThroughputResult): (string | number)[] {
  return [
    `${t.count} ${t.key}`, seconds(t.agent.ms), f1(t.agent.certsPerS),
    `${seconds(t.floorA.ms)} (agent ${ratioText(t.agent.ms, t.floorA.ms)})`, `${seconds(t.floorB.ms)} (agent ${ratioText(t.agent.ms, t.floorB.ms)})`,
    f3(t.agent.cpuPerCertS), f3(t.floorA.cpuS / t.count), f1(t.agent.requestsPerCert), f1(t.floorA.requestsPerCert), f0(t.agent.peakRssMiB),
  ];
}

export function renderReport(r: BenchResult, o: { command: string; json: string }): string {
  const L: string[] = [];
  const m = r.machine;
  L.push("# Performance");
  L.push("");
  L.push(`Generated by \`${o.command}\` from [${o.json}](${o.json}) (${r.config.mode} run, ${r.startedAt}, ${f0(r.durationS)} s); ` +
    "regenerate rather than edit. Method and definitions: [How it is measured](#how-it-is-measured).");
  L.push("");
  L.push(`Machine: ${m.cpuModel}, ${m.cores} cores, ${f1(m.memoryGiB)} GiB, ${m.os} ${m.kernel}, Node ${m.node}; ` +
    `load average ${m.loadStart.toFixed(1)} at the start, ${m.loadEnd.toFixed(1)} at the end (everything runs on this machine: control planes, issuer, agents, benchmark).`);
  L.push("");
  for (const note of r.notes ?? []) {
    L.push(`Note: ${note}`);
    L.push("");
  }
  L.push(`Agent: its own process, as the image runs it (\`dist/agent/main.js\` bundled by \`image/bundle.sh\`), the chart's arguments (leader election on, --concurrency ${r.config.concurrency}) and NODE_OPTIONS \`${r.config.agentNodeOptions.join(" ")}\`.`);
  L.push("");
  if (r.errors?.length) {
    L.push("**Incomplete run**: these phases failed, their figures are missing:");
    L.push("");
    for (const e of r.errors) L.push(`- ${e}`);
    L.push("");
  }
  L.push("## Targets");
  L.push("");
  L.push(table(["what", "target", "result", "met"], targets(r).map((t) => [t.what, t.target, t.result, t.met === undefined ? "n/a" : t.met ? "yes" : "**no**"]), ["l", "l", "l", "l"]));
  L.push("");

  if (r.latency) {
    const lat = r.latency;
    L.push("## Latency, one at a time");
    L.push("");
    L.push(`IssuedCertificate created -> FINISHED seen on a watch, ${lat.types[0]?.runs.length ?? 0} runs per key type, one after the other (ms). ` +
      "The split (medians of each part; they need not add up to the median total) comes from the API server's audit log, see below.");
    L.push("");
    L.push(table(["key", "median", "p90", "p99", "max", "key generation", "issuer", "API server", "agent's own", "agent's own p90", "requests", "agent CPU s"],
      lat.types.map((t) => [t.key, ms(t.total.median), ms(t.total.p90), ms(t.total.p99), ms(t.total.max), ms(t.keygen.median), ms(t.issuer.median), ms(t.api.median),
        ms(t.agent.median), ms(t.agent.p90), f0(t.requests.median), f3(t.cpuPerCertS)])));
    L.push("");
    L.push(`One watch delivery on this machine (IssuedCertificate stored -> ADDED seen by the benchmark): median ${ms(lat.watchDelivery.median)} ms, ` +
      `p90 ${ms(lat.watchDelivery.p90)} ms. The agent's own share includes two of them (the new object, the issuer's answer).`);
    L.push("");
    L.push(`![latency distribution](perf/${CHART_FILES.latency})`);
    L.push("");
    L.push(`![latency split](perf/${CHART_FILES.split})`);
    L.push("");
    L.push("### Trace of the median P-256 run");
    L.push("");
    L.push("Every request in order (ms from the IssuedCertificate being stored; \"issuer/bench\" is the admin user: the benchmark's create and the issuer), then the agent's log lines.");
    L.push("");
    L.push(table(["at ms", "took ms", "who", "request", "object", "code"],
      lat.trace.map((s) => [s.atMs.toFixed(1), s.durationMs.toFixed(1), s.who, `${s.verb} ${s.resource}`, s.name, s.code]), ["r", "r", "l", "l", "l", "r"]));
    L.push("");
    L.push(table(["at ms", "agent log"], lat.traceLog.map((l) => [f0(l.atMs), l.to ? `${l.message} -> ${l.to}` : l.message]), ["r", "l"]));
    L.push("");
  }

  if (r.throughput.length) {
    L.push("## Throughput");
    L.push("");
    L.push("Created at once -> all FINISHED (the first create to the last FINISHED seen), with the two floors measured on the same cluster just before.");
    L.push("");
    L.push(table(["run", "agent", "certs/s", "floor (a)", "floor (b)", "agent CPU s/cert", "floor client CPU s/cert", "agent requests/cert", "floor requests/cert", "peak RSS MiB"],
      r.throughput.map(throughputRows)));
    L.push("");
    L.push(`![throughput vs floors](perf/${CHART_FILES.throughput})`);
    L.push("");
    for (const t of r.throughput) {
      L.push(`Agent requests per certificate, ${t.count} ${t.key}: ${t.agent.requestKinds.map((k) => `${k.kind} ${k.count.toFixed(2)}`).join(", ")}.`);
      L.push("");
    }
  }

  const mem = r.memory;
  const memRows: (string | number)[][] = [];
  const memRow = (when: string, x: Memory | undefined) => {
    if (x) memRows.push([when, f0(x.rssMiB), f0(x.heapUsedMiB), f0(x.heapTotalMiB), f0(x.externalMiB)]);
  };
  memRow("idle, 0 objects, caches synced", mem.idleEmpty);
  memRow(`after ${mem.afterFinished?.objects} FINISHED`, mem.afterFinished);
  memRow(`restarted, ${mem.restarted?.objects} objects present, idle`, mem.restarted);
  if (memRows.length) {
    L.push("## Memory");
    L.push("");
    L.push("RSS from /proc/<pid>/status once it has stopped moving; V8 heap from the agent's /metrics (prom-client's nodejs_heap_size_*_bytes).");
    L.push("");
    L.push(table(["when", "RSS MiB", "heap used MiB", "heap total MiB", "external MiB"], memRows));
    L.push("");
    if (r.throughput.length) {
      L.push(`![RSS over the run](perf/${CHART_FILES.rss})`);
      L.push("");
    }
  }

  if (r.startup.length) {
    L.push("## Start to ready");
    L.push("");
    L.push("From the process being spawned (ms): /readyz 200 (informers listed and watching: caches synced, Lease held), the first reconcile (the agent's first pass over an IssuedCertificate, seen as its GET of the target Secret: the IssuedCertificate itself comes from the informer's cache; with 0 objects, of one created the moment /readyz turned 200) and every object reconciled once.");
    L.push("");
    L.push(table(["objects", "ready", "first reconcile", "all reconciled"], r.startup.map((s) => [s.objects, f0(s.readyMs), f0(s.firstReconcileMs), f0(s.allReconciledMs)])));
    L.push("");
  }

  const loops = eventLoops(r);
  if (loops.length) {
    L.push("## Event-loop delay");
    L.push("");
    L.push("perf_hooks monitorEventLoopDelay in the agent's process (preloaded, 10 ms resolution), one histogram per phase; delay beyond the 10 ms sampling interval (ms).");
    L.push("");
    L.push(table(["phase", "seconds", "samples", "p50", "p99", "max"], loops.map((l) => [l.phase, f0(l.e.seconds), l.e.samples, ms(l.e.p50Ms), ms(l.e.p99Ms), ms(l.e.maxMs)])));
    L.push("");
    const calibration = r.throughput.filter((t) => t.floorB.eventLoopMaxMs !== undefined);
    if (calibration.length) {
      L.push("A delay also counts time the agent's main thread was ready to run but had no core (its own key-generation threads, the control plane and the issuer share the machine). " +
        "For scale, the same measure in the floor (b) process, which only generates the same keys on the same machine: " +
        calibration.map((t) => `${t.count} ${t.key}: p99 ${ms(t.floorB.eventLoopP99Ms!)} ms, max ${ms(t.floorB.eventLoopMaxMs!)} ms`).join("; ") +
        ". Where that stays low and the agent's is high, the agent's own work held its loop.");
      L.push("");
    }
  }

  const p256 = r.latency?.types.find((t) => t.key === "ECDSA-P256");
  if (p256 || r.idle) {
    L.push("## API requests");
    L.push("");
    if (p256) {
      L.push(`Per P-256 certificate on the happy path, one at a time (the median run; watches and Lease renewals excluded): ${p256.requests.median} requests.`);
      L.push("");
      L.push(table(["request", "count"], p256.requestKinds.map((k) => [k.kind, k.count]), ["l", "r"]));
      L.push("");
    }
    if (r.idle) {
      L.push(`Idle for ${r.idle.seconds} s with ${r.idle.objects} FINISHED objects present (after the restart had reconciled them all): ${r.idle.beyond} requests beyond watches and Lease renewals.`);
      L.push("");
      L.push(table(["request", "count", "allowed when idle"], r.idle.requests.map((k) => [k.kind, k.count, k.allowed ? "yes" : "**no**"]), ["l", "r", "l"]));
      L.push("");
    }
  }

  if (r.fleet) {
    const fl = r.fleet;
    const total = fl.clusters * fl.certsPerCluster;
    const perCluster = fl.clusters > 1 ? (fl.issuer.heapAllMiB - fl.issuer.heapOneMiB) / (fl.clusters - 1) : NaN;
    const agentIdle = fl.perCluster.map((c) => c.agentIdleRssMiB);
    L.push("## Fleet");
    L.push("");
    L.push(`${fl.clusters} managed clusters, each its own control plane with its own agent process; one management-plane process running the reference issuer for all of them ` +
      `(one ReferenceIssuer per cluster kubeconfig: the reference issuer serves one cluster per instance). ${fl.certsPerCluster} P-256 created at once in every cluster: ` +
      `${total} certificates in ${f1(fl.ms / 1000)} s, **${f1(fl.certsPerS)} certificates/s across the fleet**.`);
    L.push("");
    L.push(table(["cluster", "all FINISHED s", "agent RSS idle MiB", "agent RSS after MiB", "agent CPU s/cert", "event-loop max ms"],
      fl.perCluster.map((c) => [c.name, f1(c.ms / 1000), f0(c.agentIdleRssMiB), f0(c.agentRssAfterMiB), f3(c.agentCpuPerCertS), ms(c.eventLoop.maxMs)])));
    L.push("");
    L.push(`Issuer process, idle after a full GC: RSS ${f0(fl.issuer.rssOneMiB)} MiB and V8 heap ${f1(fl.issuer.heapOneMiB)} MiB serving 1 cluster, ` +
      `RSS ${f0(fl.issuer.rssAllMiB)} MiB and heap ${f1(fl.issuer.heapAllMiB)} MiB serving ${fl.clusters}; RSS ${f0(fl.issuer.rssAfterMiB)} MiB after the run; ` +
      `${f1(fl.issuer.cpuPerCertS * 1000)} ms CPU per certificate.`);
    L.push("");
    L.push("Extrapolating to 1000 clusters:");
    L.push("");
    L.push(`- The agents do not grow with the fleet: each talks only to its own API server, so every cluster pays one agent (${range(agentIdle)} MiB idle here) and its own API requests, whatever the fleet size.`);
    L.push(Number.isFinite(perCluster) && perCluster > 0.05
      ? `- The management plane's heap grows by about ${f1(perCluster)} MiB per cluster served (heap with ${fl.clusters} minus with 1, per extra cluster; RSS moves by more than that from run to run, so the heap is what is extrapolated): ` +
        `~${f0(fl.issuer.rssOneMiB + 999 * perCluster)} MiB for 1000 clusters in one process, each with its own watch and CertificateRequest cache.`
      : `- The management plane's heap did not measurably grow per cluster served (heap with ${fl.clusters}: ${f1(fl.issuer.heapAllMiB)} MiB, with 1: ${f1(fl.issuer.heapOneMiB)} MiB); ` +
        "each cluster adds a watch connection and a CertificateRequest cache, small next to the process's base; run the fleet with more clusters (--fleet-clusters) to resolve it.");
    L.push(`- Its CPU is ${f1(fl.issuer.cpuPerCertS * 1000)} ms per certificate, so one core signs ~${f0(1 / fl.issuer.cpuPerCertS)} certificates/s: a new certificate in each of 1000 clusters takes ~${f1(1000 * fl.issuer.cpuPerCertS)} CPU seconds of the management plane. ` +
      "Renewals are spread over a day by the agents' jitter (README, renewal jitter), so steady-state load is tiny; the burst case (1000 clusters installed at once) is bounded by the issuer's cores, not the agents.");
    L.push(`- Fleet certificates/s measured here (${f1(fl.certsPerS)}/s) is bounded by this one machine running ${fl.clusters} control planes and agents on ${m.cores} cores; with each cluster on its own hardware the fleet rate is the issuer's rate above.`);
    L.push("");
  }

  if (r.soak) L.push(...soakSection(r.soak));

  L.push("## How it is measured");
  L.push("");
  L.push(...METHOD);
  L.push("");
  if (r.agentWarnings.length) {
    L.push("## Agent warnings during the run");
    L.push("");
    for (const w of r.agentWarnings.slice(0, 30)) L.push(`- \`${w.replace(/`/g, "'")}\``);
    if (r.agentWarnings.length > 30) L.push(`- ... ${r.agentWarnings.length - 30} more`);
    L.push("");
  }
  L.push(`Counts of this run: ${r.config.latencyRuns} latency runs per key type, ${r.config.p256Count} P-256 and ${r.config.rsaCount} RSA-4096 at once, idle ${r.config.idleSeconds} s, ` +
    `fleet ${r.config.fleetClusters} clusters x ${r.config.fleetCertsPerCluster}${r.soak ? `, soak ${r.soak.minutes} min with ${r.soak.objects} objects` : ""}.`);
  L.push("");
  return L.join("\n");
}

function soakSection(s: SoakResult): string[] {
  const p = s.plateau;
  const heapStart = s.heap[0];
  const heapEnd = s.heap[s.heap.length - 1];
  return [
    "## Soak",
    "",
    `${s.objects} ${s.key} IssuedCertificates, FINISHED, then re-issued in turn for ${s.minutes} minutes: one at a time is changed ` +
      `(spec.certOptions.ttlDays toggled between ${s.ttlDays[0]} and ${s.ttlDays[1]}), at most ${s.targetRatePerS} changes a second and at most ${s.maxInFlight} waiting ` +
      "for their new generation, an object changed again only once its previous change is FINISHED. **The workload is continuous re-issuance through spec changes, " +
      "not renewals**: a renewal cannot be made due every few seconds (the 1-day minimum ttl, the agent's renewal jitter), and a new generation runs the same issuance " +
      "path as a renewal (a new key, a new CertificateRequest, the issuer's answer, the target Secret written).",
    "",
    table(["minutes", "objects", "issuances", "issuances/s", "change -> FINISHED median ms", "p99 ms", "max ms", "over 60 s", "agent CPU s", "CPU s/issuance"],
      [[tickMinutes(s.minutes), s.objects, s.issuances, f2(s.issuancesPerS), ms(s.latency.median), ms(s.latency.p99), ms(s.latency.max), s.slow, f1(s.cpuS), f3(s.cpuPerIssuanceS)]]),
    "",
    table(["RSS start MiB", "min", "max", "end", "heap used start MiB", "end", "heap total end MiB", `growth MiB (minutes ${win(p.final)} vs ${win(p.baseline)})`, "slope MiB/10 min (2nd half)"],
      [[f1(p.startMiB), f1(p.minMiB), f1(p.maxMiB), f1(p.endMiB), f1(heapStart?.usedMiB), f1(heapEnd?.usedMiB), f1(heapEnd?.totalMiB), f1(p.growthMiB), f2(p.slopeMiBPer10Min)]], Array.from({ length: 9 }, () => "r")),
    "",
    `RSS mean per minute (MiB): ${p.perMinuteMiB.map(f1).join(", ")}.`,
    "",
    `Criterion: RSS has stopped growing when the least-squares slope of the per-second RSS over the second half of the soak (minutes ${tickMinutes(p.fitFromMin)}-${tickMinutes(s.minutes)}) ` +
      `is below ${PLATEAU_MAX_SLOPE_MIB_PER_10MIN} MiB per 10 minutes; judged on a soak of at least ${PLATEAU_MINUTES} minutes. ` +
      `The growth (mean RSS of minutes ${win(p.final)} minus that of minutes ${win(p.baseline)}, past the warm-up) is the same question asked without a fit.`,
    "",
    `![RSS over the soak](perf/${CHART_FILES.soak})`,
    "",
  ];
}

const METHOD = [
  "`npm run bench` (e2e/bench/suite.ts) runs everything on this machine: each part starts its own local control plane (etcd, kube-apiserver, kube-controller-manager; " +
    "e2e/controlplane) with an audit log, the reference issuer in its own process (e2e/bench/fleet-issuer.ts) and the agent as its own process with the chart's arguments and NODE_OPTIONS. " +
    "The agent runs as a ServiceAccount bound to cluster-admin, the floor client as another, the issuer and the benchmark as admin, so the audit log tells their requests apart " +
    "(apiserver_request_total has no user or user-agent label). `--quick` is a small run (CI smoke, no assertions); the full run is what this page shows when `--write-docs` is given.",
  "",
  "- **Latency**: one IssuedCertificate at a time per key type, the benchmark timing its create call to FINISHED seen on its watch. The split uses the API server's audit log " +
    "(µs timestamps, one clock): *server time* = the IssuedCertificate stored -> the agent's FINISHED status write answered; *key generation* = the agent's own " +
    "cert_agent_key_generation_duration_seconds for that key; *issuer* = the agent's CertificateRequest stored -> the issuer's answer stored; *API server* = time one of the " +
    "agent's requests was being served, outside the two before; *agent's own* = server time minus all of those (its code, JSON and TLS, its queue, and the two watch events it waits for). " +
    "*requests* = the agent's requests from the create until it is quiet again, watches and Lease renewals excluded. *agent CPU* = utime+stime from /proc over the same window.",
  "- **Throughput**: N created at once (16 creates in flight) -> all FINISHED. The agent is spawned fresh after the floors; its CPU is from /proc, its requests from the audit log, its RSS sampled every second.",
  "- **Floor (a)**: e2e/bench/floor-client.ts, a plain client-node loop as its own process with the agent's concurrency, against the same API server with the issuer answering, no crypto " +
    "(one key and CSR made at start-up serve every certificate). Per certificate, woken by watches only: status PENDING, create the staged-key Secret, create the CertificateRequest, " +
    "status REQUESTED; on the issuer's answer: create the target Secret, status ISSUED, delete the staged-key Secret, status FINISHED (8 writes, no reads). The benchmark creates the " +
    "IssuedCertificates and times it exactly as it times the agent.",
  "- **Floor (b)**: e2e/bench/keygen-floor.ts, the same count of keys of the same type generated with the agent's own call (Node's WebCrypto generateKey), all submitted at once in one " +
    "process whose libuv pool has max(4, cores) threads, so every core works.",
  "- **Event-loop delay**: e2e/bench/agent-probe.ts is preloaded into the agent (`--require`, the agent's code unchanged) and keeps a perf_hooks monitorEventLoopDelay histogram " +
    "(10 ms resolution), reset at the start of each phase and read at its end (SIGUSR2). The agent's own /metrics has prom-client's nodejs_eventloop_lag_{max,p99}_seconds, but " +
    "prom-client resets that histogram at every scrape, so each scrape covers only the time since the previous one: a max over scrapes is exact, a p99 over the run is not recoverable.",
  "- **Memory**: RSS from /proc/<pid>/status once it has not moved by more than 1 MiB for a while; heap from /metrics.",
  "- **Start to ready**: process spawned -> /readyz 200 (polled every 10 ms) -> the agent's first pass over an IssuedCertificate in the audit log (its GET of the target Secret) -> a pass over every object.",
  "- **Idle**: after the restart with the objects present and reconciled, every request of the agent for the idle period; watches (each counted once, when established) and " +
    "Lease get/update are allowed, anything else is listed as a defect.",
  "- **Fleet**: K control planes, K agents, one issuer process for all; the issuer's RSS with 1 cluster is measured by a first issuer process that is stopped before the run.",
  "- **Soak**: its own control plane and agent; N P-256 created and FINISHED, then re-issued in turn by merge-patching spec.certOptions.ttlDays " +
    "(a new generation: the agent issues it as it issues a renewal). The benchmark watches the IssuedCertificates for FINISHED of each new generation. " +
    "RSS from /proc every second, the V8 heap from /metrics every 30 s, CPU from /proc, the event loop from the probe, all over the soak window.",
];
