// Preloaded into the agent's process by the benchmark (`node --require dist/e2e/bench/agent-probe.js
// dist/agent/main.js ...`): the agent's code is not changed. It keeps one perf_hooks
// monitorEventLoopDelay histogram and, on SIGUSR2, writes what it saw since the previous SIGUSR2 (event-
// loop delay, V8 heap, CPU) as JSON to $CERT_AGENT_BENCH_PROBE_FILE and starts a new window.
//
// Why not the agent's /metrics: prom-client's nodejs_eventloop_lag_{max,p99}_seconds come from a
// monitorEventLoopDelay histogram that prom-client resets at every scrape, so each scrape covers only
// the time since the previous one; a max over scrapes is exact but percentiles of different windows do
// not combine into the run's p99. One histogram per measured window does.
import { writeFileSync, renameSync } from "node:fs";
import { monitorEventLoopDelay } from "node:perf_hooks";

/** The same sampling resolution as prom-client's default (eventLoopMonitoringPrecision 10 ms). */
export const PROBE_RESOLUTION_MS = 10;

export interface ProbeSnapshot {
  pid: number;
  /** Increments with each snapshot written. */
  seq: number;
  /** The window: from the previous snapshot (or the first loop turn) to this one, ms since the epoch. */
  fromMs: number;
  toMs: number;
  eventLoop: { samples: number; minMs: number; meanMs: number; p50Ms: number; p90Ms: number; p99Ms: number; maxMs: number };
  memory: NodeJS.MemoryUsage;
  /** process.cpuUsage() over the window, µs. */
  cpu: { userUs: number; systemUs: number };
}

const file = process.env.CERT_AGENT_BENCH_PROBE_FILE;
if (file) {
  const histogram = monitorEventLoopDelay({ resolution: PROBE_RESOLUTION_MS });
  let seq = 0;
  let fromMs = Date.now();
  let cpuBase = process.cpuUsage();
  // Enabled from the first turn of the event loop: module loading before it is synchronous start-up,
  // not a delay of anything waiting on the loop.
  setImmediate(() => {
    histogram.reset();
    histogram.enable();
    fromMs = Date.now();
  });
  const ms = (ns: number) => (Number.isFinite(ns) ? ns / 1e6 : 0);
  process.on("SIGUSR2", () => {
    const cpu = process.cpuUsage(cpuBase);
    const none = histogram.count === 0;
    const snapshot: ProbeSnapshot = {
      pid: process.pid,
      seq: ++seq,
      fromMs,
      toMs: Date.now(),
      eventLoop: {
        samples: histogram.count,
        minMs: none ? 0 : ms(histogram.min),
        meanMs: none ? 0 : ms(histogram.mean),
        p50Ms: none ? 0 : ms(histogram.percentile(50)),
        p90Ms: none ? 0 : ms(histogram.percentile(90)),
        p99Ms: none ? 0 : ms(histogram.percentile(99)),
        maxMs: none ? 0 : ms(histogram.max),
      },
      memory: process.memoryUsage(),
      cpu: { userUs: cpu.user, systemUs: cpu.system },
    };
    writeFileSync(`${file}.tmp`, JSON.stringify(snapshot));
    renameSync(`${file}.tmp`, file);
    histogram.reset();
    cpuBase = process.cpuUsage();
    fromMs = snapshot.toMs;
  });
}
