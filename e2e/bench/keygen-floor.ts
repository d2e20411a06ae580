#!/usr/bin/env node
// Floor (b) of the throughput benchmark: key generation alone, on all cores. Run as its own process
// (keygenFloor() below starts it) with UV_THREADPOOL_SIZE = max(4, cores): WebCrypto's generateKey
// runs on libuv's thread pool, so every key of the run is submitted at once and the pool keeps every
// core busy. The same call the agent makes (shared/pki generateKeyPair, Node's built-in WebCrypto).
// One key is made first, off the clock (code paths loaded). Prints {"ms": <wall time for all keys>, ...}.
// Usage: node dist/e2e/bench/keygen-floor.js --key RSA-4096 --count 50
import { spawn } from "node:child_process";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { generateKeyPair } from "../../shared/pki";
import { PROBE_RESOLUTION_MS } from "./agent-probe";
import { parseKeySpecName } from "./stats";

/** Runs this file as a process; resolves with the wall time (ms) for all the keys. */
export interface KeygenFloor {
  ms: number;
  threads: number;
  /** The floor process's own event-loop delay meanwhile (beyond the 10 ms sampling interval). */
  eventLoopMaxMs: number;
  eventLoopP99Ms: number;
}

export function keygenFloor(key: string, count: number): Promise<KeygenFloor> {
  const threads = Math.max(4, availableParallelism());
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(__dirname, "keygen-floor.js"), "--key", key, "--count", String(count)],
      { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, UV_THREADPOOL_SIZE: String(threads) } });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`keygen-floor exited with ${code}: ${out}`));
      resolve({ ...(JSON.parse(out) as Omit<KeygenFloor, "threads">), threads });
    });
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { key: { type: "string" }, count: { type: "string" } }, strict: true });
  const spec = parseKeySpecName(values.key!);
  const count = Number(values.count);
  await generateKeyPair(spec);
  // The same event-loop measure as the agent's probe: what key generation alone does to a loop that has
  // nothing else to do (on a machine with fewer cores than busy threads, the loop waits for a core).
  const loop = monitorEventLoopDelay({ resolution: PROBE_RESOLUTION_MS });
  loop.enable();
  const started = performance.now();
  await Promise.all(Array.from({ length: count }, () => generateKeyPair(spec)));
  const ms = performance.now() - started;
  loop.disable();
  const beyond = (ns: number) => (loop.count ? Math.max(0, ns / 1e6 - PROBE_RESOLUTION_MS) : 0);
  process.stdout.write(`${JSON.stringify({ ms, eventLoopMaxMs: beyond(loop.max), eventLoopP99Ms: beyond(loop.percentile(99)) })}\n`);
}

if (require.main === module) {
  main().then(() => process.exit(0), (err: unknown) => {
    process.stderr.write(`keygen-floor: ${String(err)}\n`);
    process.exit(1);
  });
}
