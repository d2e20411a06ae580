// Soak: does the agent's RSS stop growing under continuous issuance? N P-256 IssuedCertificates are
// created and FINISHED, then for a fixed time re-issued in turn at a steady pace, with the agent's RSS
// sampled every second and its V8 heap every ~30 s; plateau.ts reduces the curve to figures.
//
// Why spec changes and not renewals: a renewal comes due at the earliest a day after issuance (1-day
// minimum ttl) and the agent spreads renewals with jitter, so none can be made due every few seconds.
// A spec change (certOptions.ttlDays toggled between two values) is a new generation, which the agent
// issues exactly as a renewal: a new key, a new CertificateRequest, the issuer's answer, the target
// Secret written.
import { PatchStrategy, setHeaderOptions, Watch } from "@kubernetes/client-node";
import { performance } from "node:perf_hooks";
import { GROUP, ISSUED_CERTIFICATE, type IssuedCertificate, VERSION } from "../../shared/api/types";
import { type BenchAgent, type BenchCluster, benchCertificate, createAll, type Log, NAMESPACE, sleep } from "./cluster";
import { eventLoopOf, rssSampler, waitQuiet } from "./measure";
import { plateau } from "./plateau";
import type { HeapSample, SoakResult } from "./result";
import { parseKeySpecName, summarize } from "./stats";

const KEY = "ECDSA-P256";
/** Issuances started per second: steady work a 2-core machine sustains next to its control plane. */
export const SOAK_RATE_PER_S = 2;
/** At most this many objects waiting for their new generation at once (the agent's default concurrency). */
export const SOAK_MAX_IN_FLIGHT = 4;
/** The two ttlDays a change toggles between (365 is what benchCertificate creates). */
const TTL_DAYS: [number, number] = [365, 364];
const HEAP_EVERY_MS = 30_000;
/**
 * An issuance not FINISHED after this ends the soak. Longer than two of the agent's resync periods (5
 * min by default): one that only a resync finishes is a defect worth seeing (it counts as slow, and in
 * the latency figures), but not a reason to throw away the memory curve measured so far.
 */
const STALL_MS = 12 * 60_000;
/** Issuances slower than this are counted apart: far beyond any normal one, a missed event waiting for a resync. */
export const SLOW_MS = 60_000;
/** When something has waited this long, the watch may have missed it: list as a backstop. */
const BACKSTOP_AFTER_MS = 10_000;
const MiB = 2 ** 20;

/**
 * The newest generation seen FINISHED per IssuedCertificate (FinishWatcher records only the first
 * FINISHED of a name). A list, then a watch from it; a closed watch is started again from a new list,
 * since the API server ends watches after a while and the soak outlasts them.
 */
class GenerationWatcher {
  readonly finished = new Map<string, { generation: number; perf: number }>();
  readonly failed = new Map<string, string>();
  private abort: AbortController | undefined;
  private stopped = false;
  private wake: () => void = () => {};

  constructor(private readonly cluster: BenchCluster) {}

  async start(): Promise<void> {
    const list = await this.relist();
    this.abort = await new Watch(this.cluster.c.kc).watch(this.cluster.c.issued.watchPath(NAMESPACE), { resourceVersion: list.metadata?.resourceVersion },
      (_phase, obj) => this.see(obj as IssuedCertificate), () => this.restart());
  }

  /** Lists every object (recording what the watch may have missed); the list's resourceVersion starts a watch. */
  async relist() {
    const list = await this.cluster.c.issued.list(NAMESPACE);
    for (const ic of list.items) this.see(ic);
    return list;
  }

  private restart(): void {
    if (this.stopped) return;
    // Retried until it works or the soak stops: a short gap is covered by the list it starts from.
    this.start().catch(() => sleep(1000).then(() => this.restart()));
  }

  private see(ic: IssuedCertificate): void {
    const name = ic.metadata.name ?? "";
    const generation = ic.metadata.generation ?? 0;
    if (ic.status?.observedGeneration !== generation) return;
    if (ic.status?.state === "FINISHED" && generation > (this.finished.get(name)?.generation ?? 0)) {
      this.finished.set(name, { generation, perf: performance.now() });
      this.failed.delete(name);
      this.wake();
    } else if (ic.status?.state === "FAILED") {
      this.failed.set(name, ic.status.error ?? "");
    }
  }

  finishedGeneration(name: string): number {
    return this.finished.get(name)?.generation ?? 0;
  }

  /** Resolves on the next FINISHED seen, or after ms. */
  next(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(0, ms));
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
  }
}

/** The agent's V8 heap from its /metrics every everyMs (one scrape at a time, in order), and once more at stop(). */
function heapSampler(agent: BenchAgent, t0: number, everyMs: number): { stop(): Promise<HeapSample[]> } {
  const samples: HeapSample[] = [];
  const take = async () => {
    const tS = (Date.now() - t0) / 1000;
    const m = await agent.metrics();
    samples.push({ tS, usedMiB: (m["nodejs_heap_size_used_bytes"] ?? NaN) / MiB, totalMiB: (m["nodejs_heap_size_total_bytes"] ?? NaN) / MiB });
  };
  // A failed scrape leaves a gap in the curve, not a failed soak.
  let pending = take().catch(() => {});
  const timer = setInterval(() => void (pending = pending.then(take).catch(() => {})), everyMs);
  return {
    async stop() {
      clearInterval(timer);
      await pending;
      // The end's figure, unless the interval has just taken it.
      const last = samples[samples.length - 1]?.tS ?? -Infinity;
      if ((Date.now() - t0) / 1000 - last > 1) await take().catch(() => {});
      return samples;
    },
  };
}

interface InFlight {
  generation: number;
  /** performance.now() when the change was answered. */
  perf: number;
}

/**
 * Changes one object's spec at a time, round-robin over `names`, at `ratePerS` at most and with at most
 * `maxInFlight` objects waiting for their new generation; an object is changed again only once its
 * previous change is FINISHED. Counts the issuances FINISHED before endPerf.
 */
class Reissuer {
  readonly latenciesMs: number[] = [];
  changes = 0;
  issuances = 0;
  private readonly inFlight = new Map<string, InFlight>();
  private readonly ttl = new Map<string, number>();
  private cursor = 0;

  constructor(private readonly cluster: BenchCluster, private readonly watcher: GenerationWatcher, private readonly names: string[],
    private readonly o: { ratePerS: number; maxInFlight: number; log: Log }) {
    for (const n of names) this.ttl.set(n, TTL_DAYS[0]);
  }

  /** Runs until endPerf (performance.now() time). */
  async run(endPerf: number): Promise<void> {
    const interval = 1000 / this.o.ratePerS;
    let nextAt = performance.now();
    let lastBackstop = performance.now();
    while (performance.now() < endPerf) {
      this.settle(endPerf);
      this.checkStalls();
      if (this.oldestWaitMs() > BACKSTOP_AFTER_MS && performance.now() - lastBackstop > BACKSTOP_AFTER_MS) {
        lastBackstop = performance.now();
        await this.watcher.relist().catch(() => {});
      }
      const now = performance.now();
      if (now < nextAt) {
        await sleep(Math.min(nextAt - now, endPerf - now));
        continue;
      }
      // Picked only when it is changed at once, so waiting never skips an object's turn.
      const name = this.inFlight.size < this.o.maxInFlight ? this.pick() : undefined;
      if (!name) {
        await this.watcher.next(Math.min(1000, endPerf - now));
        continue;
      }
      await this.change(name);
      // On schedule, without a burst to catch up after a wait for capacity.
      nextAt = Math.max(nextAt + interval, performance.now() - interval);
    }
    this.settle(endPerf);
  }

  /** Waits (at most maxMs) for the changes still in flight, so the agent ends quiet. */
  async drain(maxMs: number): Promise<void> {
    const deadline = performance.now() + maxMs;
    while (this.inFlight.size > 0) {
      this.settle(-Infinity);
      if (performance.now() > deadline) throw new Error(`${this.inFlight.size} re-issuances not FINISHED ${maxMs / 1000} s after the soak ended`);
      await this.watcher.next(1000);
    }
  }

  /** The next object in turn that is not in flight. */
  private pick(): string | undefined {
    for (let k = 0; k < this.names.length; k++) {
      const name = this.names[(this.cursor + k) % this.names.length]!;
      if (!this.inFlight.has(name)) {
        this.cursor = (this.cursor + k + 1) % this.names.length;
        return name;
      }
    }
    return undefined;
  }

  /** A merge patch of certOptions.ttlDays alone: no read first, no conflict with the agent's status writes. */
  private async change(name: string): Promise<void> {
    const ttlDays = this.ttl.get(name) === TTL_DAYS[0] ? TTL_DAYS[1] : TTL_DAYS[0];
    const before = this.watcher.finishedGeneration(name);
    const ic = await this.patch(name, { spec: { certOptions: { ttlDays } } });
    const generation = ic.metadata.generation ?? 0;
    if (generation <= before) throw new Error(`${name}: ttlDays ${ttlDays} did not make a new generation (${generation})`);
    this.ttl.set(name, ttlDays);
    this.inFlight.set(name, { generation, perf: performance.now() });
    this.changes++;
  }

  /** One retry after a second: a lone failed request on a loaded machine should not end a 30-minute soak. */
  private async patch(name: string, body: object): Promise<IssuedCertificate> {
    const send = () => this.cluster.c.issued.api.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, namespace: NAMESPACE, plural: ISSUED_CERTIFICATE.plural, name, body },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch)) as Promise<IssuedCertificate>;
    try {
      return await send();
    } catch {
      await sleep(1000);
      return await send();
    }
  }

  /** Moves what the watcher saw FINISHED out of flight; counts it when it finished before endPerf. */
  private settle(endPerf: number): void {
    for (const [name, f] of this.inFlight) {
      const done = this.watcher.finished.get(name);
      if (!done || done.generation < f.generation) continue;
      this.inFlight.delete(name);
      // The FINISHED event can come before the patch's answer was handled: never a negative latency.
      const ms = Math.max(0, done.perf - f.perf);
      this.latenciesMs.push(ms);
      if (ms > SLOW_MS) this.o.log(`  soak: ${name} generation ${f.generation} took ${(ms / 1000).toFixed(0)} s`);
      if (done.perf <= endPerf) this.issuances++;
    }
  }

  private oldestWaitMs(): number {
    return Math.max(0, ...[...this.inFlight.values()].map((f) => performance.now() - f.perf));
  }

  private checkStalls(): void {
    for (const [name, f] of this.inFlight) {
      if (performance.now() - f.perf < STALL_MS) continue;
      const failed = this.watcher.failed.get(name);
      throw new Error(`${NAMESPACE}/${name} generation ${f.generation} not FINISHED after ${STALL_MS / 1000} s${failed === undefined ? "" : ` (FAILED: ${failed})`}`);
    }
  }
}

/** Creates the objects and waits until every one is FINISHED (its first issuance, before the soak). */
async function createFinished(cluster: BenchCluster, watcher: GenerationWatcher, names: string[], log: Log): Promise<void> {
  await createAll(cluster.c, names.map((n) => benchCertificate(n, parseKeySpecName(KEY))));
  const deadline = Date.now() + 10 * 60_000;
  let lastLog = Date.now();
  for (;;) {
    const done = names.filter((n) => watcher.finishedGeneration(n) >= 1).length;
    if (done === names.length) return;
    if (Date.now() > deadline) throw new Error(`${names.length - done} of ${names.length} soak objects not FINISHED after 10 minutes`);
    if (Date.now() - lastLog > 5000) {
      lastLog = Date.now();
      const waiting = names.filter((n) => watcher.finishedGeneration(n) < 1);
      log(`  soak: ${done}/${names.length} FINISHED${waiting.length <= 3 ? ` (waiting: ${waiting.join(", ")})` : ""}`);
      await watcher.relist();
    }
    await watcher.next(1000);
  }
}

export interface SoakOptions {
  minutes: number;
  objects: number;
  log: Log;
  ratePerS?: number;
  maxInFlight?: number;
}

/** The soak against a ready agent on its own cluster (left running: the caller stops it). */
export async function soakPhase(cluster: BenchCluster, agent: BenchAgent, o: SoakOptions): Promise<SoakResult> {
  const ratePerS = o.ratePerS ?? SOAK_RATE_PER_S;
  const maxInFlight = Math.min(o.maxInFlight ?? SOAK_MAX_IN_FLIGHT, o.objects);
  const names = Array.from({ length: o.objects }, (_, i) => `soak-${i}`);
  const watcher = new GenerationWatcher(cluster);
  try {
    await watcher.start();
    const createdAt = Date.now();
    await createFinished(cluster, watcher, names, o.log);
    await waitQuiet(cluster, createdAt, 1000, 30_000);
    o.log(`soak: ${o.objects} ${KEY} FINISHED; re-issuing for ${o.minutes} min at up to ${ratePerS}/s, RSS ${agent.rssMiB().toFixed(0)} MiB`);

    await agent.probe(); // a new event-loop window: the soak's own
    const t0 = Date.now();
    const startPerf = performance.now();
    const endPerf = startPerf + o.minutes * 60_000;
    const cpuBefore = agent.cpuSeconds();
    const rss = rssSampler(agent, t0);
    const heap = heapSampler(agent, t0, HEAP_EVERY_MS);
    const reissuer = new Reissuer(cluster, watcher, names, { ratePerS, maxInFlight, log: o.log });
    const progress = setInterval(() => o.log(`  soak: ${((Date.now() - t0) / 60_000).toFixed(1)} min, ${reissuer.issuances} issuances, RSS ${agent.rssMiB().toFixed(0)} MiB`), 60_000);
    try {
      await reissuer.run(endPerf);
    } finally {
      clearInterval(progress);
    }
    const durationS = (performance.now() - startPerf) / 1000;
    const cpuS = agent.cpuSeconds() - cpuBefore;
    const rssSamples = rss.stop();
    const heapSamples = await heap.stop();
    const eventLoop = eventLoopOf(await agent.probe());
    await reissuer.drain(STALL_MS);

    const result: SoakResult = {
      minutes: o.minutes, objects: o.objects, key: KEY, targetRatePerS: ratePerS, maxInFlight, ttlDays: TTL_DAYS,
      durationS, changes: reissuer.changes, issuances: reissuer.issuances, issuancesPerS: reissuer.issuances / durationS,
      latency: summarize(reissuer.latenciesMs), slow: reissuer.latenciesMs.filter((ms) => ms > SLOW_MS).length, cpuS, cpuPerIssuanceS: cpuS / reissuer.issuances, eventLoop,
      rss: rssSamples, heap: heapSamples, plateau: plateau(rssSamples, o.minutes),
    };
    const p = result.plateau;
    o.log(`soak ${o.minutes} min: ${result.issuances} issuances (${result.issuancesPerS.toFixed(2)}/s), RSS ${p.startMiB.toFixed(0)} -> ${p.endMiB.toFixed(0)} MiB ` +
      `(min ${p.minMiB.toFixed(0)}, max ${p.maxMiB.toFixed(0)}), growth ${p.growthMiB.toFixed(1)} MiB, slope ${p.slopeMiBPer10Min.toFixed(2)} MiB/10 min`);
    return result;
  } finally {
    watcher.stop();
  }
}
