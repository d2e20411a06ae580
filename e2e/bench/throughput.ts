// Throughput: N IssuedCertificates of one key type created at once -> all FINISHED, by the agent, and
// the two floors measured on the same cluster just before it: (a) the floor client (floor-client.ts:
// the 8 writes the workflow needs per certificate, no crypto, the agent's concurrency, the issuer
// answering) and (b) key generation alone on all cores (keygen-floor.ts). Then, for the big run,
// what the agent holds afterwards, a restart with the N objects present and a quiet period.
import { spawn } from "node:child_process";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createSigningSecret, REPO_ROOT, watchProcess } from "../harness";
import { countByKind, isIdleAllowed } from "./audit";
import { AGENT_USER, type AgentOptions, type BenchAgent, type BenchCluster, benchCertificate, cpuSeconds, createAll, FinishWatcher, FLOOR_USER, type Log, NAMESPACE, passOver, sleep, spawnBenchAgent } from "./cluster";
import { keygenFloor } from "./keygen-floor";
import { eventLoopOf, isWork, memory, rssSampler, waitQuiet } from "./measure";
import type { FloorA, IdleResult, Memory, Startup, ThroughputResult } from "./result";
import { parseKeySpecName } from "./stats";

export const FLOOR_NAMESPACE = "floor";

const names = (key: string, count: number) => Array.from({ length: count }, (_, i) => `${key.toLowerCase()}-${i}`);

/** Floor (a): the floor client as a process; the benchmark creates the objects and times as for the agent. */
export async function floorA(cluster: BenchCluster, key: string, count: number, concurrency: number, log: Log): Promise<FloorA> {
  const c = cluster.c;
  await c.core.createNamespace({ body: { metadata: { name: FLOOR_NAMESPACE } } }).catch(() => {});
  await createSigningSecret(c, FLOOR_NAMESPACE).catch(() => {});
  const proc = watchProcess(spawn(process.execPath, [join(REPO_ROOT, "dist", "e2e", "bench", "floor-client.js"),
    "--kubeconfig", cluster.floorKubeconfig, "--namespace", FLOOR_NAMESPACE, "--key", key, "--concurrency", String(concurrency), "--count", String(count)],
  { stdio: ["ignore", "pipe", "pipe"] }));
  const watcher = new FinishWatcher(c, FLOOR_NAMESPACE);
  try {
    while (!proc.output().includes("floor client ready")) {
      if (proc.child.exitCode !== null) throw new Error(`the floor client exited: ${proc.output()}`);
      await sleep(20);
    }
    await watcher.start();
    const all = names(key, count);
    const wallStart = Date.now();
    const cpuBefore = cpuSeconds(proc.child.pid!);
    const t0 = performance.now();
    await createAll(c, all.map((n) => benchCertificate(n, parseKeySpecName(key), FLOOR_NAMESPACE)), 16, FLOOR_NAMESPACE);
    await watcher.waitAll(all, 30 * 60_000, (done) => log(`  floor (a): ${done}/${count} FINISHED`));
    const ms = Math.max(...all.map((n) => watcher.finishedAt.get(n)!.perf)) - t0;
    const cpuS = cpuSeconds(proc.child.pid!) - cpuBefore;
    await sleep(300);
    const requests = cluster.audit.between(FLOOR_USER, wallStart).filter((r) => r.verb !== "watch");
    log(`floor (a) ${count} ${key}: ${Math.round(ms)} ms, ${(requests.length / count).toFixed(1)} requests per certificate`);
    return { ms, cpuS, requestsPerCert: requests.length / count };
  } finally {
    watcher.stop();
    await proc.stop();
  }
}

export interface ThroughputOptions extends AgentOptions {
  key: string;
  count: number;
  log: Log;
}

/** Both floors, then the agent (spawned here, left running for what follows). */
export async function throughputRun(cluster: BenchCluster, o: ThroughputOptions): Promise<{ result: ThroughputResult; agent: BenchAgent }> {
  const { key, count, log } = o;
  const floorB = await keygenFloor(key, count);
  log(`floor (b) ${count} ${key} keys on ${floorB.threads} pool threads: ${Math.round(floorB.ms)} ms`);
  const fa = await floorA(cluster, key, count, o.concurrency, log);

  const agent = await spawnBenchAgent(cluster, o);
  const watcher = new FinishWatcher(cluster.c);
  try {
    const readyAt = await agent.ready;
    await watcher.start();
    await waitQuiet(cluster, readyAt, 1000, 10_000);
    await agent.probe();
    const all = names(key, count);
    const wallStart = Date.now();
    const cpuBefore = agent.cpuSeconds();
    const sampler = rssSampler(agent, wallStart);
    const t0 = performance.now();
    await createAll(cluster.c, all.map((n) => benchCertificate(n, parseKeySpecName(key))));
    await watcher.waitAll(all, 60 * 60_000, (done) => log(`  agent: ${done}/${count} FINISHED, RSS ${agent.rssMiB().toFixed(0)} MiB`));
    const last = Math.max(...all.map((n) => watcher.finishedAt.get(n)!.perf));
    const ms = last - t0;
    const finishedAtS = (last - t0) / 1000;
    await waitQuiet(cluster, wallStart, 1000, 30_000);
    const cpuS = agent.cpuSeconds() - cpuBefore;
    const eventLoop = eventLoopOf(await agent.probe());
    const rss = sampler.stop();
    const requests = cluster.audit.between(AGENT_USER, wallStart).filter(isWork);
    const result: ThroughputResult = {
      key, count, concurrency: o.concurrency,
      agent: {
        ms, certsPerS: count / (ms / 1000), cpuS, cpuPerCertS: cpuS / count, requestsPerCert: requests.length / count,
        requestKinds: countByKind(requests).map((k) => ({ kind: k.kind, count: k.count / count })),
        peakRssMiB: sampler.peak(), eventLoop,
      },
      floorA: fa, floorB, rss, finishedAtS,
    };
    log(`agent ${count} ${key}: ${Math.round(ms)} ms (${result.agent.certsPerS.toFixed(1)}/s), floor (a) x${(ms / fa.ms).toFixed(2)}, floor (b) x${(ms / floorB.ms).toFixed(2)}, ` +
      `${result.agent.cpuPerCertS.toFixed(3)} CPU s and ${result.agent.requestsPerCert.toFixed(1)} requests per certificate, peak RSS ${sampler.peak().toFixed(0)} MiB`);
    return { result, agent };
  } catch (err) {
    await agent.stop();
    throw err;
  } finally {
    watcher.stop();
  }
}

/** Memory after the run, then a restart with the objects present: start to ready, memory, and a quiet period. */
export async function restartPhase(cluster: BenchCluster, agent: BenchAgent, o: AgentOptions & { objects: number; idleSeconds: number; settleMs: number; log: Log }):
Promise<{ after: Memory; restarted: Memory; startup: Startup; idle: IdleResult; agent: BenchAgent }> {
  const after = await memory(agent, o.settleMs);
  o.log(`after ${o.objects} FINISHED: RSS ${after.rssMiB.toFixed(0)} MiB, heap used ${after.heapUsedMiB.toFixed(0)} MiB`);
  await agent.stop();
  const next = await spawnBenchAgent(cluster, o);
  try {
    const readyAt = await next.ready;
    const wanted = new Set((await cluster.c.issued.list(NAMESPACE)).items.map((i) => i.metadata.name!));
    // Every object reconciled once: a pass over each by the agent (passOver).
    const deadline = Date.now() + 10 * 60_000;
    let first = NaN;
    let allAt = NaN;
    for (;;) {
      const gets = cluster.audit.between(AGENT_USER, next.spawnedAtMs).filter((r) => wanted.has(passOver(r) ?? ""));
      if (gets.length > 0) first = Math.min(...gets.map((r) => r.receivedMs));
      const done = new Set(gets.map((r) => passOver(r)));
      if (done.size >= wanted.size) {
        allAt = Math.max(...gets.map((r) => r.completedMs));
        break;
      }
      if (Date.now() > deadline) throw new Error(`only ${done.size} of ${wanted.size} objects reconciled 10 minutes after the restart`);
      await sleep(100);
    }
    const startup: Startup = { objects: wanted.size, readyMs: readyAt - next.spawnedAtMs, firstReconcileMs: first - next.spawnedAtMs, allReconciledMs: allAt - next.spawnedAtMs };
    o.log(`restart with ${wanted.size} objects: ready ${startup.readyMs} ms, first reconcile ${Math.round(startup.firstReconcileMs)} ms, all reconciled ${Math.round(startup.allReconciledMs)} ms`);
    const quietAt = await waitQuiet(cluster, readyAt, 2000, 60_000);
    const restarted = await memory(next, o.settleMs);
    o.log(`restarted with ${wanted.size}: RSS ${restarted.rssMiB.toFixed(0)} MiB, heap used ${restarted.heapUsedMiB.toFixed(0)} MiB; idle for ${o.idleSeconds} s`);
    // Idle: from the last work request after the restart, for idleSeconds.
    const idleFrom = Math.max(quietAt, Date.now());
    await sleep(o.idleSeconds * 1000);
    const idleRequests = cluster.audit.between(AGENT_USER, idleFrom, idleFrom + o.idleSeconds * 1000);
    const kinds = countByKind(idleRequests).map((k) => ({ ...k, allowed: idleRequests.some((r) => `${r.verb} ${r.resource}` === k.kind && isIdleAllowed(r)) }));
    const idle: IdleResult = { seconds: o.idleSeconds, objects: wanted.size, requests: kinds, beyond: idleRequests.filter((r) => !isIdleAllowed(r)).length };
    o.log(`idle ${o.idleSeconds} s: ${idleRequests.length} requests, ${idle.beyond} beyond watches and Lease renewals`);
    return { after, restarted, startup, idle, agent: next };
  } catch (err) {
    await next.stop();
    throw err;
  }
}
