// The fleet view: K managed clusters, each its own control plane with its own agent process, and one
// management-plane process running the reference issuer for all of them (fleet-issuer.ts). M P-256
// IssuedCertificates are created at once in every cluster; we measure certificates per second across
// the fleet, each agent's footprint, and the issuer's memory and CPU per certificate (what grows with
// the number of clusters).
import { performance } from "node:perf_hooks";
import type { OurProcess } from "../harness";
import { type BenchAgent, type BenchCluster, benchCertificate, cpuSeconds, createAll, FinishWatcher, issuerMemory, type Log, rssMiB, sleep, spawnBenchAgent, spawnIssuers, startBenchCluster } from "./cluster";
import { eventLoopOf, settledRss, waitQuiet } from "./measure";
import type { FleetResult } from "./result";

export async function fleetPhase(o: { clusters: number; certsPerCluster: number; concurrency: number; settleMs: number; log: Log; onWarnings: (w: BenchAgent) => void }): Promise<FleetResult> {
  const clusters: BenchCluster[] = [];
  const agents: BenchAgent[] = [];
  let issuer: OurProcess | undefined;
  try {
    for (let i = 0; i < o.clusters; i++) clusters.push(await startBenchCluster(`fleet-${i + 1}`, o.log));
    // The issuer's footprint for one cluster, then the one that serves them all.
    // Read after a full GC once its informers have listed: the heap is what grows per cluster.
    const one = await spawnIssuers([clusters[0]!.cp.kubeconfigPath]);
    await sleep(o.settleMs);
    const memOne = await issuerMemory(one);
    await one.stop();
    issuer = await spawnIssuers(clusters.map((c) => c.cp.kubeconfigPath));
    await sleep(o.settleMs);
    const memAll = await issuerMemory(issuer);
    for (const c of clusters) agents.push(await spawnBenchAgent(c, { concurrency: o.concurrency }));
    const readyAt = await Promise.all(agents.map((a) => a.ready));
    await Promise.all(clusters.map((c, i) => waitQuiet(c, readyAt[i]!, 1000, 10_000)));
    const idleRss = await Promise.all(agents.map((a) => settledRss(a, o.settleMs)));
    const watchers = clusters.map((c) => new FinishWatcher(c.c));
    await Promise.all(watchers.map((w) => w.start()));
    for (const a of agents) await a.probe();
    const names = Array.from({ length: o.certsPerCluster }, (_, i) => `fleet-${i}`);
    const cpuBefore = agents.map((a) => a.cpuSeconds());
    const issuerCpuBefore = cpuSeconds(issuer.child.pid!);
    const t0 = performance.now();
    const perCluster = await Promise.all(clusters.map(async (c, i) => {
      await createAll(c.c, names.map((n) => benchCertificate(n, { algorithm: "ECDSA", curve: "P-256" })));
      await watchers[i]!.waitAll(names, 60 * 60_000);
      return Math.max(...names.map((n) => watchers[i]!.finishedAt.get(n)!.perf)) - t0;
    }));
    const ms = Math.max(...perCluster);
    const issuerCpu = cpuSeconds(issuer.child.pid!) - issuerCpuBefore;
    const total = o.clusters * o.certsPerCluster;
    await sleep(1000);
    const result: FleetResult = {
      clusters: o.clusters,
      certsPerCluster: o.certsPerCluster,
      ms,
      certsPerS: total / (ms / 1000),
      perCluster: await Promise.all(clusters.map(async (c, i) => ({
        name: c.name,
        ms: perCluster[i]!,
        agentIdleRssMiB: idleRss[i]!,
        agentRssAfterMiB: agents[i]!.rssMiB(),
        agentCpuPerCertS: (agents[i]!.cpuSeconds() - cpuBefore[i]!) / o.certsPerCluster,
        eventLoop: eventLoopOf(await agents[i]!.probe()),
      }))),
      issuer: { rssOneMiB: memOne.rssMiB, rssAllMiB: memAll.rssMiB, heapOneMiB: memOne.heapUsedMiB, heapAllMiB: memAll.heapUsedMiB,
        rssAfterMiB: rssMiB(issuer.child.pid!), cpuPerCertS: issuerCpu / total },
    };
    for (const w of watchers) w.stop();
    o.log(`fleet of ${o.clusters}: ${total} certificates in ${Math.round(ms)} ms (${result.certsPerS.toFixed(1)}/s); issuer heap ${memOne.heapUsedMiB.toFixed(1)} MiB ` +
      `for 1 cluster, ${memAll.heapUsedMiB.toFixed(1)} MiB for ${o.clusters}; ${(result.issuer.cpuPerCertS * 1000).toFixed(1)} ms issuer CPU per certificate`);
    return result;
  } finally {
    for (const a of agents) {
      o.onWarnings(a);
      await a.stop();
    }
    await issuer?.stop();
    for (const c of clusters) await c.stop();
  }
}
