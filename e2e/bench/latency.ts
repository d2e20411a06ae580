// Latency, one at a time: IssuedCertificate created -> FINISHED per key type, with the agent's own
// share split out from the API server's audit log (µs timestamps) and the agent's key-generation
// histogram. For each run:
//   serverMs  = the IssuedCertificate stored (the benchmark's create answered) -> the agent's FINISHED
//               status write answered;
//   keygenMs  = the agent's cert_agent_key_generation_duration_seconds for this key (placed just before
//               its staged-key Secret create reached the API server);
//   issuerMs  = the agent's CertificateRequest stored -> the issuer's FINISHED answer stored;
//   apiMs     = time in which one of the agent's requests was being served, outside the two above;
//   agentMs   = serverMs minus all of those: the agent's own time (its code, JSON and TLS, its queue, and
//               the two watch events it waits for: the new IssuedCertificate and the issuer's answer).
import { Watch } from "@kubernetes/client-node";
import { performance } from "node:perf_hooks";
import { describeKeySpec, type KeySpec } from "../../shared/pki";
import { ADMIN_USER, AGENT_USER, type BenchAgent, type BenchCluster, benchCertificate, FinishWatcher, type Log, NAMESPACE, passOver } from "./cluster";
import { countByKind, type ApiRequest } from "./audit";
import { eventLoopOf, isWork, waitQuiet } from "./measure";
import type { LatencyResult, LatencyRun, LatencyType, Startup, TraceStep } from "./result";
import { coveredLength, median, summarize, type Interval } from "./stats";

export const LATENCY_KEYS: KeySpec[] = [
  { algorithm: "ECDSA", curve: "P-256" },
  { algorithm: "ECDSA", curve: "P-384" },
  { algorithm: "RSA", bits: 2048 },
  { algorithm: "RSA", bits: 4096 },
];

const who = (user: string) => (user === AGENT_USER ? "agent" : user === ADMIN_USER ? "issuer/bench" : user);

async function keygenSeconds(agent: BenchAgent, key: string): Promise<number> {
  const m = await agent.metrics();
  return m[`cert_agent_key_generation_duration_seconds_sum{algorithm="${key}"}`] ?? 0;
}

/** Splits one run's time from the audit log (see the file comment). */
export function splitRun(name: string, requests: ApiRequest[], keygenMs: number): Omit<LatencyRun, "totalMs" | "cpuS"> & { createdMs: number } {
  const created = requests.find((r) => r.user === ADMIN_USER && r.verb === "create" && r.resource === "issuedcertificates" && r.name === name);
  const agentWork = requests.filter((r) => r.user === AGENT_USER && isWork(r));
  const statusWrites = agentWork.filter((r) => r.verb === "update" && r.resource === "issuedcertificates/status" && r.name === name);
  const finished = statusWrites[statusWrites.length - 1];
  if (!created || !finished) throw new Error(`the audit log lacks the create or the FINISHED write of ${name}`);
  const stagedKey = agentWork.find((r) => r.verb === "create" && r.resource === "secrets" && r.name === name);
  const crCreated = agentWork.find((r) => r.verb === "create" && r.resource === "certificaterequests" && r.name === name);
  const answers = requests.filter((r) => r.user === ADMIN_USER && r.verb === "update" && r.resource === "certificaterequests/status" && r.name === name);
  const answered = answers[answers.length - 1];
  const from = created.completedMs;
  const to = finished.completedMs;
  const keygen: Interval[] = stagedKey ? [[stagedKey.receivedMs - keygenMs, stagedKey.receivedMs]] : [];
  const issuer: Interval[] = crCreated && answered ? [[crCreated.completedMs, answered.completedMs]] : [];
  const api: Interval[] = agentWork.map((r) => [r.receivedMs, r.completedMs] as const);
  const kg = coveredLength(keygen, from, to);
  const kgIssuer = coveredLength([...keygen, ...issuer], from, to);
  const all = coveredLength([...keygen, ...issuer, ...api], from, to);
  const perCert = agentWork.filter((r) => r.completedMs >= from);
  return {
    createdMs: from,
    serverMs: to - from,
    keygenMs: kg,
    issuerMs: kgIssuer - kg,
    apiMs: all - kgIssuer,
    agentMs: to - from - all,
    requests: perCert.length,
  };
}

export interface LatencyOptions {
  runs: number;
  log: Log;
  /** Called with the startup figures of the agent (0 objects): a first IssuedCertificate is created at ready. */
  onStartup?: (s: Startup) => void;
}

export async function latencyPhase(cluster: BenchCluster, agent: BenchAgent, o: LatencyOptions): Promise<LatencyResult> {
  const watcher = new FinishWatcher(cluster.c);
  await watcher.start();
  const seen = new Map<string, number>();
  // The benchmark's own watch delivery: create stored (audit) -> the ADDED event here.
  const deliveries = await new Watch(cluster.c.kc).watch(cluster.c.issued.watchPath(NAMESPACE), {}, (phase, obj: { metadata?: { name?: string } }) => {
    if (phase === "ADDED" && obj.metadata?.name && !seen.has(obj.metadata.name)) seen.set(obj.metadata.name, Date.now());
  }, () => {});
  try {
    // Start to first reconcile with 0 objects, and the warm-up (a fresh API server answers its first
    // custom-resource writes late; the agent's code paths are cold): not counted.
    // (If the caller measured something first, the create comes later than ready: counted as if at ready.)
    const readyAt = await agent.ready;
    const warm = "warm-up";
    const createAt = Date.now();
    await cluster.c.issued.create(NAMESPACE, benchCertificate(warm, { algorithm: "ECDSA", curve: "P-256" }));
    await watcher.waitAll([warm], 120_000);
    await waitQuiet(cluster, createAt, 500, 5000);
    const firstGet = cluster.audit.between(AGENT_USER, createAt).find((r) => passOver(r) === warm);
    const firstReconcileMs = firstGet ? readyAt - agent.spawnedAtMs + (firstGet.receivedMs - createAt) : NaN;
    o.onStartup?.({ objects: 0, readyMs: readyAt - agent.spawnedAtMs, firstReconcileMs, allReconciledMs: firstReconcileMs });
    await agent.probe(); // the event-loop window of this phase starts here

    const types: LatencyType[] = [];
    const traces = new Map<string, { run: LatencyRun; requests: ApiRequest[]; createdMs: number; logs: Record<string, unknown>[] }>();
    for (const spec of LATENCY_KEYS) {
      const key = describeKeySpec(spec);
      const runs: LatencyRun[] = [];
      const kinds: { kind: string; count: number }[][] = [];
      let keygenBefore = await keygenSeconds(agent, key);
      for (let i = 0; i < o.runs; i++) {
        const name = `${key.toLowerCase()}-${i}`;
        const cpuBefore = agent.cpuSeconds();
        const wallStart = Date.now();
        const logsBefore = agent.logRecords().length;
        const t0 = performance.now();
        await cluster.c.issued.create(NAMESPACE, benchCertificate(name, spec));
        await watcher.waitAll([name], 180_000);
        const totalMs = watcher.finishedAt.get(name)!.perf - t0;
        await waitQuiet(cluster, wallStart, 300, 5000);
        const cpuS = agent.cpuSeconds() - cpuBefore;
        const keygenAfter = await keygenSeconds(agent, key);
        const window = cluster.audit.requests.filter((r) => r.completedMs >= wallStart - 1 && (r.user === AGENT_USER || r.user === ADMIN_USER));
        const split = splitRun(name, window, (keygenAfter - keygenBefore) * 1000);
        keygenBefore = keygenAfter;
        const run: LatencyRun = { totalMs, cpuS, serverMs: split.serverMs, keygenMs: split.keygenMs, issuerMs: split.issuerMs, apiMs: split.apiMs,
          agentMs: split.agentMs, requests: split.requests };
        runs.push(run);
        const agentWork = window.filter((r) => r.user === AGENT_USER && isWork(r) && r.completedMs >= split.createdMs);
        kinds.push(countByKind(agentWork));
        // The trace: requests, not watches being kept, Lease renewals or the benchmark's own backstop lists.
        traces.set(name, { run, requests: window.filter((r) => r.completedMs >= split.createdMs - 50 && isWork(r) && r.verb !== "list"),
          createdMs: split.createdMs, logs: agent.logRecords().slice(logsBefore) });
      }
      const byRequests = [...runs.keys()].sort((a, b) => runs[a]!.requests - runs[b]!.requests);
      types.push({
        key, runs,
        total: summarize(runs.map((r) => r.totalMs)),
        agent: summarize(runs.map((r) => r.agentMs)),
        keygen: summarize(runs.map((r) => r.keygenMs)),
        issuer: summarize(runs.map((r) => r.issuerMs)),
        api: summarize(runs.map((r) => r.apiMs)),
        requests: summarize(runs.map((r) => r.requests)),
        cpuPerCertS: runs.reduce((a, r) => a + r.cpuS, 0) / runs.length,
        requestKinds: kinds[byRequests[Math.floor(byRequests.length / 2)]!]!,
      });
      o.log(`latency ${key}: ${runs.map((r) => Math.round(r.totalMs)).join(", ")} ms; agent share ${runs.map((r) => r.agentMs.toFixed(1)).join(", ")} ms`);
    }
    const eventLoop = eventLoopOf(await agent.probe());

    // The trace: the P-256 run with the median total.
    const p256 = types[0]!;
    const mid = median(p256.runs.map((r) => r.totalMs));
    const traced = [...traces.entries()].filter(([n]) => n.startsWith("ecdsa-p256-"))
      .sort((a, b) => Math.abs(a[1].run.totalMs - mid) - Math.abs(b[1].run.totalMs - mid))[0]![1];
    const trace: TraceStep[] = traced.requests.map((r) => ({
      atMs: r.receivedMs - traced.createdMs, durationMs: r.completedMs - r.receivedMs, who: who(r.user), verb: r.verb, resource: r.resource, name: r.name, code: r.code,
    }));
    const traceLog = traced.logs.filter((l) => typeof l.timestamp === "string").map((l) => ({
      atMs: Date.parse(l.timestamp as string) - traced.createdMs, message: String(l.message), ...(typeof l.to === "string" ? { to: l.to } : {}),
    }));
    const delivery = [...seen.entries()].map(([name, at]) => {
      const created = cluster.audit.requests.find((r) => r.user === ADMIN_USER && r.verb === "create" && r.resource === "issuedcertificates" && r.name === name);
      return created ? at - created.completedMs : NaN;
    }).filter(Number.isFinite);
    return { types, trace, traceLog, watchDelivery: summarize(delivery), eventLoop };
  } finally {
    watcher.stop();
    deliveries.abort();
  }
}
