// `npm run bench:footprint -- [--objects N]`: figures, not a test. The agent's memory as a real
// process (RSS from /proc, as a cluster operator's metrics see it) against its own local control plane
// with the reference issuer: idle with nothing to do, after N P-256 IssuedCertificates are FINISHED,
// and 30 s later; then a restart with those N objects present; optionally V8 heap snapshots. A run
// prints one table. Issue 12's memory figures come from `npm run bench` (suite.ts); this is the tool for
// digging into one (heap snapshots).
import { mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { KEY_ALGORITHM_ANNOTATION } from "../../agent/constants";
import { startControlPlane } from "../controlplane/controlplane";
import { clients, createSigningSecret, fetchText, loadKubeConfig, newIssuedCertificate, spawnAgent, startIssuer, waitFor, type AgentProcess } from "../harness";

const NAMESPACE = "footprint";
const USAGE = "usage: npm run bench:footprint -- [--objects N] [--heap-snapshot DIR]   (P-256 IssuedCertificates, default 300;\n" +
  "  --heap-snapshot writes the agent's V8 heap snapshots, idle and with N FINISHED, into DIR)";

function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((l) => l.startsWith("VmRSS:"))!;
  return Number(line.split(/\s+/)[1]) / 1024;
}

/** The RSS once it has stopped moving for a while (V8 settles after work; we report where it rests). */
async function settledRss(pid: number, quietMs = 5_000): Promise<number> {
  let last = rssMiB(pid);
  let since = Date.now();
  const deadline = Date.now() + 60_000;
  while (Date.now() - since < quietMs && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    const now = rssMiB(pid);
    if (Math.abs(now - last) > 1) {
      last = now;
      since = Date.now();
    }
  }
  return rssMiB(pid);
}

/** V8 heap used / heap total / external (MiB), from the agent's own /metrics (prom-client's defaults). */
async function heap(port: number): Promise<string> {
  const text = (await fetchText(port, "/metrics")).body;
  const value = (name: string) => Number(text.split("\n").find((l) => l.startsWith(`${name} `))?.split(" ")[1] ?? NaN) / 2 ** 20;
  return [value("nodejs_heap_size_used_bytes"), value("nodejs_heap_size_total_bytes"), value("nodejs_external_memory_bytes")].map((v) => v.toFixed(0)).join(" / ");
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { objects: { type: "string" }, "heap-snapshot": { type: "string" }, help: { type: "boolean", short: "h" } } });
  if (values.help) return void console.log(USAGE);
  const objects = Number(values.objects ?? 300);
  if (!Number.isInteger(objects) || objects < 1 || objects > 5000) throw new Error(`--objects must be an integer from 1 to 5000\n${USAGE}`);

  const snapshotDir = values["heap-snapshot"];
  if (snapshotDir) {
    // The agent inherits it: SIGUSR2 then writes Heap.*.heapsnapshot into its working directory.
    process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ""} --heapsnapshot-signal=SIGUSR2`.trim();
    mkdirSync(snapshotDir, { recursive: true });
    process.chdir(snapshotDir);
  }
  const snapshot = async (a: AgentProcess) => {
    if (!snapshotDir) return;
    const before = new Set(readdirSync("."));
    a.child.kill("SIGUSR2");
    const file = await waitFor("the heap snapshot", async () => readdirSync(".").find((f) => !before.has(f) && f.endsWith(".heapsnapshot")), 120_000, 500);
    let size = -1;
    await waitFor("the snapshot to be written", async () => {
      const now = statSync(file).size;
      const done = now > 0 && now === size;
      size = now;
      return done || undefined;
    }, 300_000, 2_000);
    console.log(`heap snapshot: ${join(snapshotDir, file)}`);
  };
  const cp = await startControlPlane();
  const c = clients(loadKubeConfig(cp.kubeconfigPath));
  await c.core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
  await createSigningSecret(c, NAMESPACE);
  const issuer = await startIssuer(c.kc, NAMESPACE);
  const rows: [string, number, string][] = [];
  let agent: (AgentProcess & { metricsPort: number }) | undefined;
  const start = async () => {
    const a = spawnAgent(cp.kubeconfigPath, ["--namespace", NAMESPACE, "--secret-namespaces", NAMESPACE, "--pod-namespaces", NAMESPACE, "--concurrency", "8",
      "--metrics-bind-address", "127.0.0.1:0"]);
    const started = await waitFor("the agent to start", async () => a.output().split("\n").find((l) => l.includes('"agent started"')), 60_000);
    return Object.assign(a, { metricsPort: (JSON.parse(started) as { metricsPort: number }).metricsPort });
  };
  const row = async (what: string, a: AgentProcess & { metricsPort: number }, rss?: number) =>
    rows.push([what, rss ?? await settledRss(a.child.pid!), await heap(a.metricsPort)]);
  try {
    agent = await start();
    await row("idle, 0 objects", agent);
    await snapshot(agent);
    const t0 = Date.now();
    for (let i = 0; i < objects; i++) {
      await c.issued.create(NAMESPACE, newIssuedCertificate(NAMESPACE, `ic-${i}`, { annotations: { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" },
        target: { name: `cacerts-${i}`, namespace: NAMESPACE } }));
    }
    let peak = 0;
    await waitFor(`${objects} FINISHED`, async () => {
      peak = Math.max(peak, rssMiB(agent!.child.pid!));
      const items = (await c.issued.list(NAMESPACE)).items;
      return items.filter((i) => i.status?.state === "FINISHED").length === objects || undefined;
    }, 30 * 60_000, 500);
    const seconds = (Date.now() - t0) / 1000;
    await row(`peak while issuing ${objects}`, agent, peak);
    await row(`${objects} FINISHED, settled`, agent);
    await new Promise((r) => setTimeout(r, 30_000));
    await row(`${objects} FINISHED, 30 s later`, agent, rssMiB(agent.child.pid!));
    await snapshot(agent);
    await agent.stop();
    agent = await start();
    await row(`restarted, ${objects} FINISHED present, idle`, agent);
    console.log(`\nagent memory (MiB), ${objects} P-256 IssuedCertificates (all FINISHED in ${seconds.toFixed(1)} s):`);
    console.log(`  ${"".padEnd(45)} ${"RSS".padStart(5)}  heap used / heap total / external (at the row's end)`);
    for (const [what, mib, h] of rows) console.log(`  ${what.padEnd(45)} ${mib.toFixed(0).padStart(5)}  ${h}`);
  } finally {
    await agent?.stop();
    await issuer.stop();
    await cp.stop();
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
