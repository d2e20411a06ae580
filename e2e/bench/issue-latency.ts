// `npm run bench:providers`: figures, not a test (issue 12's suite is `npm run bench`, suite.ts). (1) Time from creating an IssuedCertificate to FINISHED, per key
// type, against one local control plane with the reference issuer and the agent in this process. (2) Key
// generation alone, per key type, with Node's built-in WebCrypto and with @peculiar/webcrypto, and the
// longest event-loop stall each causes: the reason we make the built-in provider the default is
// that @peculiar generates RSA keys synchronously, freezing watches, probes and lease renewals meanwhile.
import { KubeConfig, Watch } from "@kubernetes/client-node";
import { cpus } from "node:os";
import { performance } from "node:perf_hooks";
import { PassThrough } from "node:stream";
import { parseArgs } from "node:util";
import { startAgent, type RunningAgent } from "../../agent/agent";
import { parseConfig } from "../../agent/config";
import { KEY_ALGORITHM_ANNOTATION } from "../../agent/constants";
import type { IssuedCertificate } from "../../shared/api/types";
import { createLogger } from "../../shared/controller/logger";
import { type CryptoProviderName, describeKeySpec, generateKeyPair, type KeySpec, useCryptoProvider } from "../../shared/pki";
import { startControlPlane, type ControlPlane } from "../controlplane/controlplane";
import { clients, type Clients, createSigningSecret, loadKubeConfig, newIssuedCertificate, startIssuer } from "../harness";
import type { ReferenceIssuer } from "../issuer/issuer";

const KEY_SPECS: KeySpec[] = [
  { algorithm: "RSA", bits: 4096 },
  { algorithm: "RSA", bits: 2048 },
  { algorithm: "ECDSA", curve: "P-256" },
  { algorithm: "ECDSA", curve: "P-384" },
];
const PROVIDERS: CryptoProviderName[] = ["node", "peculiar"];
const NAMESPACE = "bench";
const ISSUE_TIMEOUT_MS = 120_000;
const USAGE = "usage: npm run bench:providers -- [--runs N]   (N issuances and N key generations per key type, default 5)";

function parseRuns(argv: string[]): number | "help" {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: { runs: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) return "help";
  const runs = values.runs === undefined ? 5 : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 1000) throw new Error(`--runs must be an integer from 1 to 1000, got ${JSON.stringify(values.runs)}`);
  return runs;
}

/**
 * The longest gap between ticks of a 1 ms interval timer: how long the event loop was unable to run
 * anything else (a healthy loop shows ~1-2 ms). Read it only after the measured work has settled and one
 * more tick has had the chance to run, or a final stall would go unseen.
 */
class StallMonitor {
  private last = 0;
  private max = 0;
  private timer: NodeJS.Timeout | undefined;

  start(): void {
    this.last = performance.now();
    this.max = 0;
    this.timer = setInterval(() => {
      const now = performance.now();
      this.max = Math.max(this.max, now - this.last);
      this.last = now;
    }, 1);
  }

  async stop(): Promise<number> {
    await new Promise((r) => setTimeout(r, 3));
    clearInterval(this.timer);
    return this.max;
  }
}

interface Stats {
  min: number;
  median: number;
  p90: number;
  max: number;
}

function stats(values: number[]): Stats {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return {
    min: s[0]!,
    median: s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2,
    // Nearest rank: with 5 runs p90 is the slowest run; it needs ~20 runs to differ from max.
    p90: s[Math.ceil(0.9 * s.length) - 1]!,
    max: s[s.length - 1]!,
  };
}

function table(header: string[], rows: (string | number)[][]): string {
  // Whole milliseconds, except below 10 where rounding would show an ECDSA keygen as "0".
  const text = rows.map((r) => r.map((v) => (typeof v !== "number" ? v : v < 10 ? v.toFixed(1) : String(Math.round(v)))));
  const widths = header.map((h, i) => Math.max(h.length, ...text.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), line(widths.map((w) => "-".repeat(w))), ...text.map(line)].join("\n");
}

/** Watches the namespace's IssuedCertificates and hands each one to whoever waits for it to finish. */
class FinishWatcher {
  private readonly waiting = new Map<string, { resolve: (at: number) => void; reject: (e: Error) => void }>();
  private abort: AbortController | undefined;
  private poll: NodeJS.Timeout | undefined;

  constructor(private readonly c: Clients) {}

  async start(): Promise<void> {
    const list = await this.c.issued.list(NAMESPACE);
    this.abort = await new Watch(this.c.kc).watch(this.c.issued.watchPath(NAMESPACE), { resourceVersion: list.metadata?.resourceVersion },
      (_phase, obj) => this.see(obj as IssuedCertificate), () => {});
    // Backstop in case the watch drops; the watch is what gives the precise time.
    this.poll = setInterval(() => {
      for (const name of this.waiting.keys()) this.c.issued.get(NAMESPACE, name).then((ic) => ic && this.see(ic), () => {});
    }, 1000);
  }

  /** Resolves with performance.now() at the moment FINISHED was seen. */
  finished(name: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${NAMESPACE}/${name} not FINISHED after ${ISSUE_TIMEOUT_MS} ms`)), ISSUE_TIMEOUT_MS);
      this.waiting.set(name, {
        resolve: (at) => { clearTimeout(timer); resolve(at); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      });
    });
  }

  private see(ic: IssuedCertificate): void {
    const at = performance.now();
    const waiter = this.waiting.get(ic.metadata.name ?? "");
    if (!waiter || ic.status?.observedGeneration !== ic.metadata.generation) return;
    if (ic.status?.state === "FINISHED") {
      this.waiting.delete(ic.metadata.name!);
      waiter.resolve(at);
    } else if (ic.status?.state === "FAILED") {
      this.waiting.delete(ic.metadata.name!);
      waiter.reject(new Error(`${NAMESPACE}/${ic.metadata.name} FAILED: ${ic.status.error}`));
    }
  }

  stop(): void {
    clearInterval(this.poll);
    this.abort?.abort();
  }
}

interface IssueResult {
  spec: KeySpec;
  ms: number[];
  stallMs: number[];
}

async function issueOne(c: Clients, watcher: FinishWatcher, name: string, spec: KeySpec): Promise<{ ms: number; stallMs: number }> {
  const ic = newIssuedCertificate(NAMESPACE, name, {
    target: { name: `cacerts-${name}`, namespace: NAMESPACE },
    ...(spec.algorithm === "RSA" ? { rsaKeySizeBits: spec.bits } : { annotations: { [KEY_ALGORITHM_ANNOTATION]: describeKeySpec(spec) } }),
  });
  const finished = watcher.finished(name);
  const monitor = new StallMonitor();
  monitor.start();
  const started = performance.now();
  await c.issued.create(NAMESPACE, ic);
  const at = await finished;
  return { ms: at - started, stallMs: await monitor.stop() };
}

async function benchIssuance(kc: KubeConfig, runs: number, log: (m: string) => void): Promise<{ results: IssueResult[]; agentWarnings: number }> {
  const c = clients(kc);
  await c.core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
  await createSigningSecret(c, NAMESPACE); // ECDSA P-256 root: signing costs ~1 ms, so the agent's part dominates
  const agentLog = new PassThrough();
  let agentWarnings = 0;
  agentLog.on("data", (d: Buffer) => (agentWarnings += (d.toString().match(/"level":"(warn|error)"/g) ?? []).length));
  const config = parseConfig(["--namespace", NAMESPACE, "--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--log-level", "info"], {});
  if (config === "help") throw new Error("unexpected help");
  let issuer: ReferenceIssuer | undefined;
  let agent: RunningAgent | undefined;
  const watcher = new FinishWatcher(c);
  try {
    issuer = await startIssuer(kc, NAMESPACE);
    agent = await startAgent(config, kc, createLogger("info", agentLog));
    await watcher.start();
    // Not counted: a fresh API server answers its first custom-resource write ~2 s late, and the
    // first run also pays for JIT warm-up of the agent's code paths.
    const warm = await issueOne(c, watcher, "warm-up", { algorithm: "ECDSA", curve: "P-256" });
    log(`warm-up issuance (not counted): ${Math.round(warm.ms)} ms`);
    const results: IssueResult[] = [];
    for (const spec of KEY_SPECS) {
      const result: IssueResult = { spec, ms: [], stallMs: [] };
      for (let i = 0; i < runs; i++) {
        const r = await issueOne(c, watcher, `${describeKeySpec(spec).toLowerCase()}-${i}`, spec);
        result.ms.push(r.ms);
        result.stallMs.push(r.stallMs);
      }
      log(`${describeKeySpec(spec)}: ${result.ms.map((v) => Math.round(v)).join(", ")} ms`);
      results.push(result);
    }
    return { results, agentWarnings };
  } finally {
    watcher.stop();
    await agent?.stop();
    await issuer?.stop();
  }
}

interface KeygenResult {
  spec: KeySpec;
  provider: CryptoProviderName;
  ms: number[];
  stallMs: number[];
}

async function benchKeygen(runs: number, log: (m: string) => void): Promise<KeygenResult[]> {
  const results: KeygenResult[] = [];
  try {
    for (const spec of KEY_SPECS) {
      for (const provider of PROVIDERS) {
        useCryptoProvider(provider);
        await generateKeyPair(spec); // warm-up: loads the provider's code paths, not counted
        const result: KeygenResult = { spec, provider, ms: [], stallMs: [] };
        for (let i = 0; i < runs; i++) {
          const monitor = new StallMonitor();
          monitor.start();
          // Give the timer one tick first, so the gap measured starts from a running loop.
          await new Promise((r) => setTimeout(r, 2));
          const started = performance.now();
          await generateKeyPair(spec);
          result.ms.push(performance.now() - started);
          result.stallMs.push(await monitor.stop());
        }
        log(`keygen ${describeKeySpec(spec)} ${provider}: ${result.ms.map((v) => Math.round(v)).join(", ")} ms`);
        results.push(result);
      }
    }
  } finally {
    useCryptoProvider("node");
  }
  return results;
}

async function main(): Promise<number> {
  let runs: number | "help";
  try {
    runs = parseRuns(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message.split("\n")[0]}\n`);
    return 2;
  }
  if (runs === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const log = (m: string): void => void process.stderr.write(`[bench] ${m}\n`);
  const cpu = cpus();
  const started = Date.now();

  log("starting a local control plane");
  const cp: ControlPlane = await startControlPlane();
  let issuance;
  try {
    log(`control plane ready in ${cp.timings.total} ms; ${runs} issuances per key type`);
    issuance = await benchIssuance(loadKubeConfig(cp.kubeconfigPath), runs, log);
  } finally {
    await cp.stop();
  }
  // Alone, after everything else has stopped: nothing else competes for the CPU or the event loop.
  log(`${runs} key generations per key type and provider`);
  const keygen = await benchKeygen(runs, log);

  const out: string[] = [];
  out.push(`cert-agent benchmark: Node ${process.version}, ${cpu.length} x ${cpu[0]?.model.trim() ?? "unknown CPU"}, ${runs} runs each, ms`);
  out.push("");
  out.push("IssuedCertificate created -> FINISHED (one local control plane; agent and reference issuer in this process, node WebCrypto)");
  out.push(table(
    ["key type", "min", "median", "p90", "max", "max loop stall"],
    issuance.results.map((r) => [describeKeySpec(r.spec), ...Object.values(stats(r.ms)), Math.max(...r.stallMs)]),
  ));
  out.push(`agent warnings/errors logged: ${issuance.agentWarnings}`);
  out.push("");
  out.push("key generation only (generateKeyPair), and the longest event-loop stall (gap between 1 ms timer ticks) during it");
  out.push(table(
    ["key type", "provider", "min", "median", "p90", "max", "stall median", "stall max"],
    keygen.map((r) => [describeKeySpec(r.spec), r.provider, ...Object.values(stats(r.ms)), stats(r.stallMs).median, Math.max(...r.stallMs)]),
  ));
  out.push("");
  out.push(`p90 is nearest-rank (with fewer than 10 runs it equals max). Total ${((Date.now() - started) / 1000).toFixed(1)} s.`);
  process.stdout.write(`${out.join("\n")}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
