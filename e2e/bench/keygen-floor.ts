#!/usr/bin/env node
// Floor (b) of the throughput benchmark: key generation alone, on all cores. Run as its own process
// (keygenFloor() below starts it) with UV_THREADPOOL_SIZE = max(4, cores): WebCrypto's generateKey
// runs on libuv's thread pool, so every key of the run is submitted at once and the pool keeps every
// core busy. The same call the agent makes (shared/pki generateKeyPair, Node's built-in WebCrypto).
// One key is made first, off the clock (code paths loaded). Prints {"ms": <wall time for all keys>}.
// Usage: node dist/e2e/bench/keygen-floor.js --key RSA-4096 --count 50
import { spawn } from "node:child_process";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { generateKeyPair } from "../../shared/pki";
import { parseKeySpecName } from "./stats";

/** Runs this file as a process; resolves with the wall time (ms) and the process's CPU seconds. */
export function keygenFloor(key: string, count: number): Promise<{ ms: number; threads: number }> {
  const threads = Math.max(4, availableParallelism());
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(__dirname, "keygen-floor.js"), "--key", key, "--count", String(count)],
      { stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, UV_THREADPOOL_SIZE: String(threads) } });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`keygen-floor exited with ${code}: ${out}`));
      resolve({ ms: (JSON.parse(out) as { ms: number }).ms, threads });
    });
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { key: { type: "string" }, count: { type: "string" } }, strict: true });
  const spec = parseKeySpecName(values.key!);
  const count = Number(values.count);
  await generateKeyPair(spec);
  const started = performance.now();
  await Promise.all(Array.from({ length: count }, () => generateKeyPair(spec)));
  process.stdout.write(`${JSON.stringify({ ms: performance.now() - started })}\n`);
}

if (require.main === module) {
  main().then(() => process.exit(0), (err: unknown) => {
    process.stderr.write(`keygen-floor: ${String(err)}\n`);
    process.exit(1);
  });
}
