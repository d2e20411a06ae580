// Small measurements shared by the phases: waiting for the agent to go quiet, settled memory, the
// probe's event-loop window, an RSS sampler.
import { isIdleAllowed, type ApiRequest } from "./audit";
import { PROBE_RESOLUTION_MS, type ProbeSnapshot } from "./agent-probe";
import { AGENT_USER, type BenchAgent, type BenchCluster, sleep } from "./cluster";
import type { EventLoop, Memory, RssSample } from "./result";

/** Requests that are work (not a watch being kept, not a Lease renewal). */
export const isWork = (r: ApiRequest) => !isIdleAllowed(r);

/**
 * Waits until the agent has sent no request other than watches and Lease renewals for quietMs (or
 * maxMs passed); returns the time of its last such request (ms since the epoch) or `since`.
 */
export async function waitQuiet(cluster: BenchCluster, since: number, quietMs: number, maxMs: number): Promise<number> {
  const deadline = Date.now() + maxMs;
  for (;;) {
    const last = Math.max(since, ...cluster.audit.between(AGENT_USER, since).filter(isWork).map((r) => r.completedMs));
    if (Date.now() - last >= quietMs || Date.now() > deadline) return last;
    await sleep(Math.min(100, quietMs / 4));
  }
}

/** The agent's RSS once it has stopped moving (by more than 1 MiB) for quietMs, at most maxMs. */
export async function settledRss(agent: BenchAgent, quietMs: number, maxMs = 60_000): Promise<number> {
  let last = agent.rssMiB();
  let since = Date.now();
  const deadline = Date.now() + maxMs;
  while (Date.now() - since < quietMs && Date.now() < deadline) {
    await sleep(250);
    const now = agent.rssMiB();
    if (Math.abs(now - last) > 1) {
      last = now;
      since = Date.now();
    }
  }
  return agent.rssMiB();
}

const MiB = 2 ** 20;

/** Settled RSS, and the V8 heap as the agent's /metrics publish it (prom-client's default metrics). */
export async function memory(agent: BenchAgent, quietMs: number): Promise<Memory> {
  const rssMiB = await settledRss(agent, quietMs);
  const m = await agent.metrics();
  return {
    rssMiB,
    heapUsedMiB: (m["nodejs_heap_size_used_bytes"] ?? NaN) / MiB,
    heapTotalMiB: (m["nodejs_heap_size_total_bytes"] ?? NaN) / MiB,
    externalMiB: (m["nodejs_external_memory_bytes"] ?? NaN) / MiB,
  };
}

/** The probe's window as reported: delays beyond the sampling interval. */
export function eventLoopOf(s: ProbeSnapshot): EventLoop {
  const beyond = (v: number) => Math.max(0, v - PROBE_RESOLUTION_MS);
  return {
    maxMs: beyond(s.eventLoop.maxMs),
    p99Ms: beyond(s.eventLoop.p99Ms),
    p50Ms: beyond(s.eventLoop.p50Ms),
    samples: s.eventLoop.samples,
    seconds: (s.toMs - s.fromMs) / 1000,
  };
}

/** Samples the agent's RSS every second (and the peak) until stop(). */
export function rssSampler(agent: BenchAgent, t0: number): { stop(): RssSample[]; peak(): number } {
  const samples: RssSample[] = [{ tS: 0, rssMiB: agent.rssMiB() }];
  let peak = samples[0]!.rssMiB;
  const timer = setInterval(() => {
    try {
      const rss = agent.rssMiB();
      peak = Math.max(peak, rss);
      samples.push({ tS: (Date.now() - t0) / 1000, rssMiB: rss });
    } catch {
      // the process ended
    }
  }, 1000);
  return {
    stop() {
      clearInterval(timer);
      return samples;
    },
    peak: () => peak,
  };
}

/** The agent's log records at warn or error level. */
export function warnings(agent: BenchAgent): string[] {
  return agent.logRecords().filter((r) => r.level === "warn" || r.level === "error").map((r) => JSON.stringify(r).slice(0, 300));
}
