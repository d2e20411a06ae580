// One managed cluster for the benchmark: its own local control plane with an audit log, a namespace
// with the issuer's signing secret, the agent as its own process (as the chart runs it) and the
// reference issuer in another; and the probes the measurements read (/proc, the agent's endpoints,
// the audit log, a watch of the IssuedCertificates).
import { RbacAuthorizationV1Api, Watch } from "@kubernetes/client-node";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { parse as parseYaml } from "yaml";
import { KEY_ALGORITHM_ANNOTATION } from "../../agent/constants";
import type { IssuedCertificate } from "../../shared/api/types";
import { describeKeySpec, type KeySpec } from "../../shared/pki";
import { startControlPlane, type ControlPlane } from "../controlplane/controlplane";
import { freePorts } from "../controlplane/ports";
import { clients, type Clients, createSigningSecret, fetchText, loadKubeConfig, newIssuedCertificate, REPO_ROOT, watchProcess, type OurProcess } from "../harness";
import { AuditLog, auditFlags } from "./audit";
import type { ProbeSnapshot } from "./agent-probe";

export const NAMESPACE = "bench";
export const AGENT_SA = "cert-agent";
export const FLOOR_SA = "floor-client";
export const AGENT_USER = `system:serviceaccount:${NAMESPACE}:${AGENT_SA}`;
export const FLOOR_USER = `system:serviceaccount:${NAMESPACE}:${FLOOR_SA}`;
/** The issuer and the benchmark itself use the admin kubeconfig. */
export const ADMIN_USER = "admin";

export type Log = (message: string) => void;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface BenchCluster {
  readonly name: string;
  readonly cp: ControlPlane;
  /** Admin clients (the benchmark creates the IssuedCertificates as admin). */
  readonly c: Clients;
  readonly audit: AuditLog;
  readonly agentKubeconfig: string;
  readonly floorKubeconfig: string;
  stop(): Promise<void>;
}

/**
 * A control plane with an audit log, namespace `bench` with a P-256 root CA as signing secret, and two
 * ServiceAccounts bound to cluster-admin: the agent's and the floor client's (own users, so the audit
 * log tells their requests apart; RBAC scope does not change what is requested).
 */
export async function startBenchCluster(name: string, log: Log): Promise<BenchCluster> {
  const dir = mkdtempSync(join(tmpdir(), `cert-agent-bench-${name}-`));
  const audit = new AuditLog(join(dir, "audit.log"));
  let cp: ControlPlane | undefined;
  try {
    cp = await startControlPlane({ apiServerFlags: auditFlags(join(dir, "audit-policy.yaml"), audit.path) });
    log(`${name}: control plane ready in ${cp.timings.total} ms at ${cp.server}`);
    const c = clients(loadKubeConfig(cp.kubeconfigPath));
    await c.core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    // ECDSA P-256 root: signing costs ~1 ms whatever the intermediate's key, so the agent's part dominates.
    await createSigningSecret(c, NAMESPACE);
    const rbac = c.kc.makeApiClient(RbacAuthorizationV1Api);
    const kubeconfigs: string[] = [];
    for (const sa of [AGENT_SA, FLOOR_SA]) {
      kubeconfigs.push(await cp.kubeconfigForServiceAccount(NAMESPACE, sa));
      await rbac.createClusterRoleBinding({ body: {
        metadata: { name: `bench-${sa}` },
        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "cluster-admin" },
        subjects: [{ kind: "ServiceAccount", name: sa, namespace: NAMESPACE }],
      } });
    }
    const started = cp;
    return {
      name, cp: started, c, audit, agentKubeconfig: kubeconfigs[0]!, floorKubeconfig: kubeconfigs[1]!,
      async stop() {
        await started.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await cp?.stop();
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** NODE_OPTIONS the chart gives the agent (values.yaml nodeOptions), as node arguments. */
export function chartNodeOptions(): string[] {
  const values = parseYaml(readFileSync(join(REPO_ROOT, "charts", "cert-agent", "values.yaml"), "utf8")) as { nodeOptions?: string };
  return (values.nodeOptions ?? "").split(/\s+/).filter(Boolean);
}

export interface AgentOptions {
  concurrency: number;
  logLevel?: "info" | "debug";
}

export interface BenchAgent {
  readonly proc: OurProcess;
  readonly pid: number;
  /** Date.now() just before spawn. */
  readonly spawnedAtMs: number;
  readonly healthPort: number;
  readonly metricsPort: number;
  /** Resolves with Date.now() when /readyz first answered 200. */
  readonly ready: Promise<number>;
  /** Snapshot of the probe's window since the previous call (or start), and a new window. */
  probe(): Promise<ProbeSnapshot>;
  rssMiB(): number;
  /** utime + stime from /proc/<pid>/stat (clock ticks of 10 ms), seconds. */
  cpuSeconds(): number;
  metrics(): Promise<Record<string, number>>;
  /** The agent's JSON log records so far. */
  logRecords(): Record<string, unknown>[];
  stop(): Promise<number | null>;
}

/** The agent as the image ships it (image/bundle.sh: one esbuild bundle), built once per benchmark process. */
let bundled: string | undefined;
export function bundledAgent(): string {
  if (!bundled) {
    const out = join(mkdtempSync(join(tmpdir(), "cert-agent-bench-bundle-")), "main.js");
    execFileSync("bash", [join(REPO_ROOT, "image", "bundle.sh"), out], { stdio: ["ignore", "ignore", "inherit"] });
    bundled = out;
  }
  return bundled;
}

/**
 * The agent as its own process, as the image runs it (the esbuild bundle), with the chart's arguments (leader election on, one watched namespace,
 * its Secrets and pods in it) and the chart's NODE_OPTIONS, the probe preloaded.
 */
export async function spawnBenchAgent(cluster: BenchCluster, o: AgentOptions): Promise<BenchAgent> {
  const [healthPort, metricsPort] = await freePorts(2);
  const dir = mkdtempSync(join(tmpdir(), "cert-agent-bench-probe-"));
  const probeFile = join(dir, "probe.json");
  const args = [
    ...chartNodeOptions(),
    "--require", join(REPO_ROOT, "dist", "e2e", "bench", "agent-probe.js"),
    bundledAgent(),
    "--kubeconfig", cluster.agentKubeconfig,
    "--log-level", o.logLevel ?? "info",
    "--concurrency", String(o.concurrency),
    "--namespace", NAMESPACE,
    "--secret-namespaces", NAMESPACE,
    "--pod-namespaces", NAMESPACE,
    "--leader-elect",
    "--leader-election-namespace", NAMESPACE,
    "--metrics-bind-address", `127.0.0.1:${metricsPort}`,
    "--health-probe-bind-address", `127.0.0.1:${healthPort}`,
  ];
  const spawnedAtMs = Date.now();
  const proc = watchProcess(spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, CERT_AGENT_BENCH_PROBE_FILE: probeFile } }));
  const pid = proc.child.pid!;
  let exited = false;
  proc.child.once("exit", () => (exited = true));
  const ready = (async () => {
    for (;;) {
      if (exited) throw new Error(`the agent exited before it was ready:\n${proc.output().slice(-3000)}`);
      const status = await fetchText(healthPort!, "/readyz").then((r) => r.status, () => 0);
      if (status === 200) return Date.now();
      if (Date.now() - spawnedAtMs > 120_000) throw new Error(`the agent was not ready after 120 s:\n${proc.output().slice(-3000)}`);
      await sleep(10);
    }
  })();
  ready.catch(() => {});
  let seq = 0;
  return {
    proc, pid, spawnedAtMs, healthPort: healthPort!, metricsPort: metricsPort!, ready,
    async probe() {
      proc.child.kill("SIGUSR2");
      const want = ++seq;
      for (let i = 0; i < 1000; i++) {
        await sleep(10);
        if (!existsSync(probeFile)) continue;
        const snapshot = JSON.parse(readFileSync(probeFile, "utf8")) as ProbeSnapshot;
        if (snapshot.seq >= want) return snapshot;
      }
      throw new Error("the agent's probe did not answer within 10 s");
    },
    rssMiB: () => rssMiB(pid),
    cpuSeconds: () => cpuSeconds(pid),
    async metrics() {
      return parseMetrics((await fetchText(metricsPort!, "/metrics")).body);
    },
    logRecords: () => proc.output().split("\n").filter((l) => l.startsWith("{")).map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    }),
    async stop() {
      const code = await proc.stop();
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}

/** Prometheus text -> "name{labels}" -> value (labels as printed). */
export function parseMetrics(text: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    out[line.slice(0, at)] = Number(line.slice(at + 1));
  }
  return out;
}

export function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"))!;
  return Number(line.split(/\s+/)[1]) / 1024;
}

/** utime + stime of a process (/proc/<pid>/stat fields 14 and 15), seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state): utime is field 14, stime 15.
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** The issuer process: one ReferenceIssuer per kubeconfig (fleet-issuer.ts), watching every namespace. */
export async function spawnIssuers(kubeconfigs: string[]): Promise<OurProcess> {
  const args = ["--expose-gc", join(REPO_ROOT, "dist", "e2e", "bench", "fleet-issuer.js"), ...kubeconfigs.flatMap((k) => ["--kubeconfig", k])];
  const proc = watchProcess(spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] }));
  const deadline = Date.now() + 60_000;
  while (!proc.output().includes('"issuers started"')) {
    if (proc.child.exitCode !== null || Date.now() > deadline) throw new Error(`the issuer did not start:\n${proc.output().slice(-3000)}`);
    await sleep(20);
  }
  return proc;
}

export function keySpecName(spec: KeySpec): string {
  return describeKeySpec(spec);
}

/** An IssuedCertificate in NAMESPACE for a key of `spec`, writing Secret cacerts-<name>. */
/** The target secret of benchCertificate(name). */
export const benchTarget = (name: string) => `cacerts-${name}`;

/**
 * The IssuedCertificate a request of the agent's is part of a pass over: every pass reads the target
 * (a GET: the informers keep no Secret data) unless it is skipped as quiet, and the IssuedCertificate
 * itself comes from the informer's cache, so the target's name is what shows a pass in the audit log.
 */
export function passOver(r: { verb: string; resource: string; name: string }): string | undefined {
  if (r.verb !== "get" || r.resource !== "secrets" || !r.name.startsWith("cacerts-")) return undefined;
  return r.name.slice("cacerts-".length);
}

export function benchCertificate(name: string, spec: KeySpec, namespace = NAMESPACE): IssuedCertificate {
  return newIssuedCertificate(namespace, name, {
    target: { name: benchTarget(name), namespace },
    ...(spec.algorithm === "RSA" ? { rsaKeySizeBits: spec.bits } : { annotations: { [KEY_ALGORITHM_ANNOTATION]: describeKeySpec(spec) } }),
  });
}

/** Creates the IssuedCertificates with `parallel` requests in flight; resolves when all are created. */
export async function createAll(c: Clients, items: IssuedCertificate[], parallel = 16, namespace = NAMESPACE): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, async () => {
    while (next < items.length) await c.issued.create(namespace, items[next++]!);
  }));
}

const FAILED_GRACE_MS = 60_000;

/**
 * Watches NAMESPACE's IssuedCertificates and records when each was first seen FINISHED (for its current
 * generation): performance.now() and Date.now(). One FAILED for over a minute is an error of the run.
 */
export class FinishWatcher {
  readonly finishedAt = new Map<string, { perf: number; wall: number }>();
  /** Names seen FAILED (first time, error); the agent's warnings say more. */
  readonly failed = new Map<string, { error: string; at: number }>();
  private abort: AbortController | undefined;
  private poll: NodeJS.Timeout | undefined;
  private wanted = new Set<string>();
  private wake: () => void = () => {};

  constructor(private readonly c: Clients, private readonly namespace = NAMESPACE) {}

  async start(): Promise<void> {
    const list = await this.c.issued.list(this.namespace);
    for (const ic of list.items) this.see(ic);
    this.abort = await new Watch(this.c.kc).watch(this.c.issued.watchPath(this.namespace), { resourceVersion: list.metadata?.resourceVersion },
      (_phase, obj) => this.see(obj as IssuedCertificate), () => {});
    // A backstop if the watch drops; the watch gives the precise time.
    this.poll = setInterval(() => {
      if ([...this.wanted].every((n) => this.finishedAt.has(n))) return;
      this.c.issued.list(this.namespace).then((l) => l.items.forEach((ic) => this.see(ic)), () => {});
    }, 5000);
  }

  private see(ic: IssuedCertificate): void {
    const name = ic.metadata.name ?? "";
    if (this.finishedAt.has(name) || ic.status?.observedGeneration !== ic.metadata.generation) return;
    if (ic.status?.state === "FINISHED") this.finishedAt.set(name, { perf: performance.now(), wall: Date.now() });
    else if (ic.status?.state === "FAILED" && !this.failed.has(name)) this.failed.set(name, { error: ic.status.error ?? "", at: Date.now() });
    else return;
    this.wake();
  }

  /** Resolves once every name is FINISHED; rejects on a FAILED one or after timeoutMs. */
  async waitAll(names: string[], timeoutMs: number, onProgress?: (done: number) => void): Promise<void> {
    for (const n of names) this.wanted.add(n);
    const deadline = Date.now() + timeoutMs;
    let lastReport = Date.now();
    for (;;) {
      const done = names.filter((n) => this.finishedAt.has(n)).length;
      if (done === names.length) return;
      // FAILED is retried by the agent (after 10 s by default): fatal only when it lasts.
      const failed = names.find((n) => !this.finishedAt.has(n) && Date.now() - (this.failed.get(n)?.at ?? Infinity) > FAILED_GRACE_MS);
      if (failed) throw new Error(`${this.namespace}/${failed} FAILED for over ${FAILED_GRACE_MS / 1000} s: ${this.failed.get(failed)!.error}`);
      if (Date.now() > deadline) throw new Error(`${names.length - done} of ${names.length} not FINISHED after ${timeoutMs} ms`);
      if (onProgress && Date.now() - lastReport > 5000) {
        lastReport = Date.now();
        onProgress(done);
      }
      // Woken by the next object seen (the time recorded is the watch event's, not this loop's).
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 1000);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  stop(): void {
    clearInterval(this.poll);
    this.abort?.abort();
  }
}

/** The issuer process's memory after a full GC (fleet-issuer.ts answers SIGUSR2), MiB. */
export async function issuerMemory(proc: OurProcess): Promise<{ rssMiB: number; heapUsedMiB: number }> {
  const before = proc.output().length;
  proc.child.kill("SIGUSR2");
  for (let i = 0; i < 500; i++) {
    await sleep(10);
    const line = proc.output().slice(before).split("\n").find((l) => l.includes('"memory"'));
    if (line) {
      const m = JSON.parse(line) as { rss: number; heapUsed: number };
      return { rssMiB: m.rss / 2 ** 20, heapUsedMiB: m.heapUsed / 2 ** 20 };
    }
  }
  throw new Error("the issuer did not report its memory");
}
