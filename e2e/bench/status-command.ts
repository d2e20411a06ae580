// `npm run bench:status`: figures, not a test. How long `cert-agent status -A` (the built executable, a
// new process each time, as an on-call engineer or a cron job runs it) takes over 100 IssuedCertificates,
// each with its target secret, on one local control plane. `status --help` is timed too: it is the
// process start and module loading alone, so the difference is the API reads, the parsing and the output.
import { execFile } from "node:child_process";
import { cpus } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { ourTargetSecret, type SignedBundle, signedBundle } from "../../agent/status/testing";
import { SecretClient } from "../../shared/kube/secrets";
import { startControlPlane, type ControlPlane } from "../controlplane/controlplane";
import { clients, type Clients, loadKubeConfig, newIssuedCertificate, REPO_ROOT } from "../harness";
import { createRootCa, type RootCa } from "../issuer/sign";

const MAIN = join(REPO_ROOT, "dist", "agent", "main.js");
const NAMESPACES = 4;
const USAGE = "usage: npm run bench:status -- [--runs N] [--count N]   (N timed runs, default 7; IssuedCertificates, default 100)";

function parseFlags(argv: string[]): { runs: number; count: number } | "help" {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: { runs: { type: "string" }, count: { type: "string" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) return "help";
  const int = (flag: "runs" | "count", fallback: number, max: number) => {
    const n = values[flag] === undefined ? fallback : Number(values[flag]);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new Error(`--${flag} must be an integer from 1 to ${max}, got ${JSON.stringify(values[flag])}`);
    return n;
  };
  return { runs: int("runs", 7, 100), count: int("count", 100, 2000) };
}

interface Stats {
  min: number;
  median: number;
  max: number;
}

function stats(values: number[]): Stats {
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return { min: s[0]!, median: s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2, max: s[s.length - 1]! };
}

/** Runs at most n at a time; the set-up makes a few hundred writes and should not flood one API server. */
async function inBatches<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += n) await Promise.all(items.slice(i, i + n).map(fn));
}

/** count FINISHED IssuedCertificates over NAMESPACES namespaces, each with a valid target secret (ECDSA P-256). */
async function populate(c: Clients, count: number, log: (m: string) => void): Promise<void> {
  const namespaces = Array.from({ length: NAMESPACES }, (_, i) => `bench-status-${i}`);
  for (const name of namespaces) await c.core.createNamespace({ body: { metadata: { name } } });
  const root: RootCa = await createRootCa({ spec: { algorithm: "ECDSA", curve: "P-256" } });
  const secrets = new SecretClient(c.kc);
  const started = performance.now();
  // Different issue times, so the renewal column is not one value repeated.
  const indexes = Array.from({ length: count }, (_, i) => i);
  await inBatches(indexes, 10, async (i) => {
    const namespace = namespaces[i % NAMESPACES]!;
    const name = `ic-${String(i).padStart(3, "0")}`;
    const bundle: SignedBundle = await signedBundle(root, { spec: { algorithm: "ECDSA", curve: "P-256" }, now: new Date(Date.now() - i * 86_400_000), ttlDays: 365 });
    const ic = await c.issued.create(namespace, newIssuedCertificate(namespace, name, { target: { name: `cacerts-${name}`, namespace } }));
    await secrets.create(namespace, ourTargetSecret(ic, bundle));
    await c.issued.replaceStatus({ ...ic, status: { state: "FINISHED", observedGeneration: ic.metadata.generation } });
  });
  log(`${count} IssuedCertificates with target secrets in ${NAMESPACES} namespaces, created in ${Math.round(performance.now() - started)} ms`);
}

interface Run {
  ms: number;
  code: number;
  stdout: string;
  stderr: string;
}

/** The executable as a new process; the time is from spawn to exit, what a caller waits for. */
function runStatus(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    execFile(process.execPath, [MAIN, "status", ...args], { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, env: { PATH: process.env.PATH, HOME: process.env.HOME } },
      (error, stdout, stderr) => {
        const ms = performance.now() - started;
        if (error && typeof error.code !== "number") return reject(error);
        resolve({ ms, code: typeof error?.code === "number" ? error.code : 0, stdout, stderr });
      });
  });
}

async function timed(label: string, args: string[], runs: number, check: (r: Run) => void, log: (m: string) => void): Promise<number[]> {
  check(await runStatus(args)); // warm-up, not counted: the first run also fills the OS file cache
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await runStatus(args);
    check(r);
    ms.push(r.ms);
  }
  log(`${label}: ${ms.map((v) => Math.round(v)).join(", ")} ms`);
  return ms;
}

async function main(): Promise<number> {
  let flags: ReturnType<typeof parseFlags>;
  try {
    flags = parseFlags(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench:status: ${(err as Error).message.split("\n")[0]}\n`);
    return 2;
  }
  if (flags === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { runs, count } = flags;
  const log = (m: string): void => void process.stderr.write(`[bench:status] ${m}\n`);
  const cpu = cpus();
  const started = Date.now();

  log("starting a local control plane");
  const cp: ControlPlane = await startControlPlane();
  const results: [string, number[]][] = [];
  try {
    log(`control plane ready in ${cp.timings.total} ms`);
    await populate(clients(loadKubeConfig(cp.kubeconfigPath)), count, log);
    const kc = ["--kubeconfig", cp.kubeconfigPath];
    const expectRows = (r: Run, format: "table" | "json") => {
      if (r.code !== 0) throw new Error(`status exited ${r.code}: ${r.stderr}`);
      const rows = format === "table" ? r.stdout.trimEnd().split("\n").length - 1 : (JSON.parse(r.stdout) as { items: unknown[] }).items.length;
      if (rows !== count) throw new Error(`status printed ${rows} rows, expected ${count}`);
    };
    results.push(["status --help (process start + module loading only)", await timed("--help", ["--help"], runs, (r) => {
      if (r.code !== 0) throw new Error(`--help exited ${r.code}`);
    }, log)]);
    results.push([`status -A (table, ${count} rows)`, await timed("-A", [...kc, "-A"], runs, (r) => expectRows(r, "table"), log)]);
    results.push([`status -A -o json (${count} rows)`, await timed("-A -o json", [...kc, "-A", "-o", "json"], runs, (r) => expectRows(r, "json"), log)]);
  } finally {
    await cp.stop();
  }

  const width = Math.max(...results.map(([label]) => label.length));
  const out = [
    `cert-agent status benchmark: Node ${process.version}, ${cpu.length} x ${cpu[0]?.model.trim() ?? "unknown CPU"}, ${runs} runs each after one warm-up, ms from spawn to exit`,
    "",
    `${"".padEnd(width)}  ${["min", "median", "max"].map((h) => h.padStart(6)).join("  ")}`,
    ...results.map(([label, ms]) => {
      const s = stats(ms);
      return `${label.padEnd(width)}  ${[s.min, s.median, s.max].map((v) => String(Math.round(v)).padStart(6)).join("  ")}`;
    }),
    "",
    `Total ${((Date.now() - started) / 1000).toFixed(1)} s.`,
  ];
  process.stdout.write(`${out.join("\n")}\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`bench:status failed: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
