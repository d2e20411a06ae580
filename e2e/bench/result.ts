// The JSON a benchmark run writes (docs/perf/last-run.json, bench-results/...): everything the report
// and the charts are drawn from, so `npm run bench -- --from FILE` can redraw them without a new run.
import type { Summary } from "./stats";

export const RESULT_VERSION = 1;

export interface Machine {
  cpuModel: string;
  cores: number;
  memoryGiB: number;
  node: string;
  kernel: string;
  os: string;
  /** 1-minute load average when the run started and ended (other work on the machine skews figures). */
  loadStart: number;
  loadEnd: number;
}

export interface RunConfig {
  mode: "quick" | "full" | "custom";
  concurrency: number;
  latencyRuns: number;
  p256Count: number;
  rsaCount: number;
  idleSeconds: number;
  fleetClusters: number;
  fleetCertsPerCluster: number;
  /** The soak's length and objects. Results written before the soak phase existed lack both: the
   * report reads the soak's own copy (SoakResult) instead. */
  soakMinutes: number;
  soakObjects: number;
  /** The agent's node flags (the chart's nodeOptions). */
  agentNodeOptions: string[];
}

/** One IssuedCertificate, one at a time. Times in ms. */
export interface LatencyRun {
  /** Benchmark's create call -> FINISHED seen on its watch. */
  totalMs: number;
  /** API server: IssuedCertificate stored -> the agent's FINISHED status write answered. */
  serverMs: number;
  keygenMs: number;
  /** The agent's CertificateRequest stored -> the issuer's answer stored. */
  issuerMs: number;
  /** The agent's requests being served by the API server (outside the two above). */
  apiMs: number;
  /** The rest: the agent's own time (code, JSON, TLS, queueing, the two watch events it waits for). */
  agentMs: number;
  /** The agent's requests for this certificate (watches and Lease renewals excluded). */
  requests: number;
  /** The agent's CPU (from /proc, 10 ms ticks) from the create to quiet after FINISHED, s. */
  cpuS: number;
}

export interface LatencyType {
  key: string;
  runs: LatencyRun[];
  total: Summary;
  agent: Summary;
  keygen: Summary;
  issuer: Summary;
  api: Summary;
  requests: Summary;
  cpuPerCertS: number;
  /** The agent's requests for one certificate of this type, "verb resource" -> count (median run). */
  requestKinds: { kind: string; count: number }[];
}

export interface TraceStep {
  /** ms from the IssuedCertificate being stored. */
  atMs: number;
  durationMs: number;
  who: "agent" | "issuer" | "bench" | "floor" | string;
  verb: string;
  resource: string;
  name: string;
  code: number;
}

export interface LatencyResult {
  types: LatencyType[];
  /** Every request of the median P-256 run, in order. */
  trace: TraceStep[];
  /** The agent's log lines of that run (timestamps as it logged them). */
  traceLog: { atMs: number; message: string; to?: string }[];
  /** IssuedCertificate stored -> first seen on a watch by the benchmark: what one watch delivery costs here. */
  watchDelivery: Summary;
  eventLoop: EventLoop;
}

export interface EventLoop {
  /** Delay beyond the 10 ms sampling interval (perf_hooks monitorEventLoopDelay), ms. */
  maxMs: number;
  p99Ms: number;
  p50Ms: number;
  samples: number;
  seconds: number;
}

export interface RssSample {
  tS: number;
  rssMiB: number;
}

export interface FloorA {
  ms: number;
  cpuS: number;
  requestsPerCert: number;
}

export interface ThroughputResult {
  key: string;
  count: number;
  concurrency: number;
  agent: {
    ms: number;
    certsPerS: number;
    cpuS: number;
    cpuPerCertS: number;
    requestsPerCert: number;
    requestKinds: { kind: string; count: number }[];
    peakRssMiB: number;
    eventLoop: EventLoop;
  };
  floorA: FloorA;
  /** threads: the libuv pool size; eventLoop*: the floor process's own loop delay meanwhile (a calibration). */
  floorB: { ms: number; threads: number; eventLoopMaxMs?: number; eventLoopP99Ms?: number };
  /** RSS of the agent every second from the first create (tS 0) until it was quiet again. */
  rss: RssSample[];
  /** tS when the last certificate was FINISHED. */
  finishedAtS: number;
}

export interface Memory {
  rssMiB: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
}

export interface Startup {
  objects: number;
  /** Process spawned -> /readyz 200 (informers listed and watching: caches synced). */
  readyMs: number;
  /** Process spawned -> the agent's first GET of an IssuedCertificate (its first reconcile). With 0
   * objects, one is created the moment /readyz is 200. */
  firstReconcileMs: number;
  /** Process spawned -> every object reconciled once (a GET of each); = firstReconcileMs with 0 or 1. */
  allReconciledMs: number;
}

export interface IdleResult {
  seconds: number;
  objects: number;
  requests: { kind: string; count: number; allowed: boolean }[];
  beyond: number;
}

export interface FleetResult {
  clusters: number;
  certsPerCluster: number;
  /** First create in any cluster -> last FINISHED in all. */
  ms: number;
  certsPerS: number;
  perCluster: { name: string; ms: number; agentIdleRssMiB: number; agentRssAfterMiB: number; agentCpuPerCertS: number; eventLoop: EventLoop }[];
  issuer: {
    /** RSS and V8 heap used (after a full GC, idle) of an issuer process serving one cluster, and of the one serving all. */
    rssOneMiB: number;
    rssAllMiB: number;
    heapOneMiB: number;
    heapAllMiB: number;
    rssAfterMiB: number;
    cpuPerCertS: number;
  };
}

export interface HeapSample {
  tS: number;
  usedMiB: number;
  totalMiB: number;
}

/** RSS over the soak reduced to whether it stops growing (plateau.ts computes it from the samples). */
export interface Plateau {
  startMiB: number;
  minMiB: number;
  maxMiB: number;
  endMiB: number;
  /** Mean RSS of each minute of the soak (index 0 = the first minute; the last may be partial). */
  perMinuteMiB: number[];
  /** The windows compared (minutes since the soak started) and their mean RSS. */
  baseline: { fromMin: number; toMin: number; meanMiB: number };
  final: { fromMin: number; toMin: number; meanMiB: number };
  /** final.meanMiB - baseline.meanMiB. */
  growthMiB: number;
  /** Least-squares slope of RSS over the second half of the soak, MiB per 10 minutes. */
  slopeMiBPer10Min: number;
  fitFromMin: number;
}

/**
 * The soak: N objects re-issued in turn for a fixed time by changing their spec (a new generation is a
 * new issuance: new key, CertificateRequest, target write, as a renewal), the agent's memory sampled.
 */
export interface SoakResult {
  minutes: number;
  objects: number;
  key: string;
  /** The pace the benchmark aimed for, and the most issuances it let be in flight at once. */
  targetRatePerS: number;
  maxInFlight: number;
  /** The spec change: certOptions.ttlDays toggled between these two values. */
  ttlDays: [number, number];
  /** Measured window (the soak's length as it ran), s. */
  durationS: number;
  /** Spec changes made in the window, and issuances FINISHED in it. */
  changes: number;
  issuances: number;
  issuancesPerS: number;
  /** Spec change answered -> FINISHED for the new generation seen on a watch, ms. */
  latency: Summary;
  /** Of those, how many took over a minute (soak.ts SLOW_MS): a missed event the agent's resync made up for. */
  slow: number;
  /** The agent's CPU over the window (/proc utime + stime), s. */
  cpuS: number;
  cpuPerIssuanceS: number;
  eventLoop: EventLoop;
  /** Agent RSS every second of the window (tS 0 = the soak's start). */
  rss: RssSample[];
  /** Agent V8 heap from its /metrics every ~30 s, first at the start and last at the end. */
  heap: HeapSample[];
  plateau: Plateau;
}

export interface BenchResult {
  version: number;
  startedAt: string;
  durationS: number;
  machine: Machine;
  config: RunConfig;
  latency?: LatencyResult;
  throughput: ThroughputResult[];
  memory: { idleEmpty?: Memory; afterFinished?: Memory & { objects: number }; restarted?: Memory & { objects: number } };
  startup: Startup[];
  idle?: IdleResult;
  fleet?: FleetResult;
  /** Absent in results written before the soak phase existed, and when it did not run. */
  soak?: SoakResult;
  /** Agent warnings and errors logged during the run (a healthy run has none). */
  agentWarnings: string[];
  /** Phases that failed ("phase: message"); the others' figures are still there. */
  errors: string[];
  /** Said of the run after it, e.g. a row measured again by a later run (printed under the header). */
  notes?: string[];
}
