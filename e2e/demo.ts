// `npm run demo`: the whole workflow on a laptop in one command. A throw-away control plane with three
// fake (KWOK) nodes, Gloo Mesh's namespaces and signing secret, three Deployments (istiod, a gateway, a
// workload), a PodBounceDirective naming them, the reference issuer and the agent; then one
// IssuedCertificate for istiod, its state transitions, the pod bouncer's lines and the Events as they
// happen (the demo plays istiod: it publishes the new root in istio-ca-root-cert when the bouncer waits
// for it), the pods replaced in order, the final `cacerts` checked twice (shared/pki and the real
// openssl) and summarised. `--no-bounce` is the same without nodes, pods or directive. `--istiod` adds
// a real istiod (e2e/istiod/): started before the IssuedCertificate, so with its self-signed CA; it is
// restarted when the bouncer restarts the istiod Deployment (with --no-bounce: after FINISHED, as an
// operator would), publishes the new root itself instead of the demo playing it, and is shown to sign
// with the agent's intermediate (its metrics, its log, every istio-ca-root-cert, a workload
// certificate). Everything it
// starts is stopped again, on success, on failure and on Ctrl-C. Private keys are never printed: only
// file paths, fingerprints and public facts.
import { AppsV1Api, KubeConfig, type V1Deployment, type V1Pod, Watch } from "@kubernetes/client-node";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { chmodSync, createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, type WriteStream } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { Writable } from "node:stream";
import { parseArgs } from "node:util";
import { startAgent, type RunningAgent } from "../agent/agent";
import { STRATEGIES, type Strategy } from "../agent/bouncer/plan";
import { parseConfig } from "../agent/config";
import { CA_CERT, CA_KEY, CERT_CHAIN, KEY_ALGORITHM_ANNOTATION, ROOT_CERT } from "../agent/constants";
import { DEFAULT_TARGET_SECRET, ISTIOD_SPIFFE_ID, issuedCertificate, podBounceDirective } from "../shared/api/builders";
import { type BounceSelector, GROUP, ISSUED_CERTIFICATE, type IssuedCertificate, POD_BOUNCE_DIRECTIVE, type PodBounceDirective, VERSION } from "../shared/api/types";
import { createLogger, redactSecrets } from "../shared/controller/logger";
import { CustomResourceClient } from "../shared/kube/custom-objects";
import { isNotFound } from "../shared/kube/errors";
import {
  buildCertChain,
  describeCertificate,
  describeKeySpec,
  importPrivateKeyPem,
  type KeySpec,
  parseKeyAlgorithm,
  PkiError,
  verifyIssuedCertificate,
} from "../shared/pki";
import { startControlPlane, type ControlPlane } from "./controlplane/controlplane";
import { startControlPlaneWithNodes, type ControlPlaneWithNodes } from "./controlplane/nodes";
import { clients, decodeSecret, loadKubeConfig, startIssuer, type Clients } from "./harness";
import { type Istiod, LOG as ISTIOD_LOG, startIstiod } from "./istiod/istiod";
import { FAIL_ANNOTATION, type ReferenceIssuer } from "./issuer/issuer";
import { createRootCa, type RootCa } from "./issuer/sign";

const MESH_NAMESPACE = "gloo-mesh";
const ISTIO_NAMESPACE = DEFAULT_TARGET_SECRET.namespace;
const NAME = "istiod";
const SIGNING_SECRET = { name: "root-ca", namespace: MESH_NAMESPACE };
const TARGET = DEFAULT_TARGET_SECRET;
/** RSA-4096 keygen alone can take 5 s on a busy machine; a minute more covers a cold API server. */
const FINISH_TIMEOUT_MS = 120_000;
/** The status write comes before its Event, so the last Event may arrive a moment after FINISHED. */
const LAST_EVENT_GRACE_MS = 3_000;
/** Deployments Ready, the rollouts' replacements Ready: about a second a pod on KWOK; a minute is plenty. */
const PODS_TIMEOUT_MS = 60_000;
const NODE_COUNT = 3;
const DIRECTIVE = { name: "istio-pods", namespace: MESH_NAMESPACE };
/** What istiod publishes in every namespace once it runs with the new CA; the gateway waits for it. */
const ROOT_CONFIGMAP = { name: "istio-ca-root-cert", namespace: ISTIO_NAMESPACE };

interface DemoWorkload {
  name: string;
  namespace: string;
  replicas: number;
  /** Its selector in the PodBounceDirective (labels app=name are added). */
  selector: Omit<BounceSelector, "namespace" | "labels">;
}

/** In the directive's order, which is the bounce order: istiod, then the gateway, then a workload. */
const WORKLOADS: readonly DemoWorkload[] = [
  // Two replicas and a surge of one: a rollout restart never leaves the mesh without a Ready istiod.
  { name: "istiod", namespace: ISTIO_NAMESPACE, replicas: 2, selector: { waitForReplicas: 1 } },
  {
    name: "istio-ingressgateway",
    namespace: ISTIO_NAMESPACE,
    replicas: 1,
    selector: {
      rootCertSync: { secretRef: TARGET, secretKey: ROOT_CERT, configMapRef: ROOT_CONFIGMAP, configMapKey: ROOT_CERT },
    },
  },
  { name: "web", namespace: MESH_NAMESPACE, replicas: 2, selector: {} },
];

const USAGE = "usage: npm run demo -- [--out DIR] [--key-algorithm RSA|ECDSA-P256|ECDSA-P384] [--key-size 2048|3072|4096] " +
  "[--bounce-strategy rollout|evict|delete | --no-bounce] [--istiod] [--keep-running] [--issuer-fail MESSAGE]";

interface DemoOptions {
  outDir?: string;
  keySpec: KeySpec;
  /** Only set when the user chose an algorithm, so the default object looks like Gloo Mesh's own. */
  keyAlgorithmAnnotation?: string;
  keepRunning: boolean;
  /** Makes the reference issuer refuse the request with this message: shows (and tests) the failure path. */
  issuerFail?: string;
  /** The agent's --bounce-strategy; undefined with --no-bounce (no nodes, pods or PodBounceDirective). */
  bounceStrategy?: Strategy;
  /** Run a real istiod (e2e/istiod/) and show it loading the agent's CA. */
  istiod: boolean;
}

class UsageError extends Error {}

/** Thrown into whatever the demo is awaiting when the user presses Ctrl-C. */
class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
  }
}

function parseDemoArgs(argv: string[]): DemoOptions | "help" {
  let values;
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        out: { type: "string" },
        "key-size": { type: "string" },
        "key-algorithm": { type: "string" },
        "keep-running": { type: "boolean" },
        "issuer-fail": { type: "string" },
        "bounce-strategy": { type: "string" },
        "no-bounce": { type: "boolean" },
        istiod: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (err) {
    // node:util's messages are already one clear sentence; drop its hint lines.
    throw new UsageError((err as Error).message.split("\n")[0]!);
  }
  if (values.help) return "help";
  const sizeText = values["key-size"];
  const bits = sizeText === undefined ? undefined : Number(sizeText);
  if (sizeText !== undefined && !["2048", "3072", "4096"].includes(sizeText)) {
    throw new UsageError(`--key-size must be 2048, 3072 or 4096 (RSA bits), got ${JSON.stringify(sizeText)}`);
  }
  let keySpec: KeySpec;
  try {
    keySpec = parseKeyAlgorithm(values["key-algorithm"], bits);
  } catch (err) {
    if (err instanceof PkiError) throw new UsageError(`--key-algorithm: ${err.message}`);
    throw err;
  }
  if (keySpec.algorithm === "ECDSA" && bits !== undefined) {
    // Silently ignoring it (as the agent does for the CRD default) would hide a user's mistake here.
    throw new UsageError(`--key-size is for RSA keys; ${describeKeySpec(keySpec)} has a fixed size`);
  }
  if (values.out !== undefined && values.out.trim() === "") throw new UsageError("--out needs a directory");
  const strategy = values["bounce-strategy"];
  if (strategy !== undefined && !(STRATEGIES as readonly string[]).includes(strategy)) {
    throw new UsageError(`--bounce-strategy must be ${STRATEGIES.join(", ")}, got ${JSON.stringify(strategy)}`);
  }
  if (strategy !== undefined && values["no-bounce"]) throw new UsageError("--bounce-strategy and --no-bounce exclude each other");
  return {
    outDir: values.out === undefined ? undefined : resolve(values.out),
    keySpec,
    keyAlgorithmAnnotation: values["key-algorithm"] === undefined ? undefined : describeKeySpec(keySpec).replace(/-\d+$/, ""),
    keepRunning: values["keep-running"] === true,
    issuerFail: values["issuer-fail"],
    bounceStrategy: values["no-bounce"] ? undefined : ((strategy ?? "rollout") as Strategy),
    istiod: values.istiod === true,
  };
}

const demoStart = Date.now();
function say(line: string): void {
  process.stdout.write(`${line}\n`);
}
/** A progress line with the time since the demo started. */
function step(line: string): void {
  say(`[${((Date.now() - demoStart) / 1000).toFixed(1).padStart(5)}s] ${line}`);
}

/** Everything started, in start order, so it can be stopped in reverse. A start still in progress is
 * awaited before stopping: an interrupted startControlPlane() would otherwise leave its processes behind. */
class Teardown {
  private readonly items: { name: string; started: Promise<{ stop(): Promise<void> } | undefined> }[] = [];

  track<T extends { stop(): Promise<void> }>(name: string, starting: Promise<T>): Promise<T> {
    this.items.push({ name, started: starting.catch(() => undefined) });
    return starting;
  }

  /** Stops everything; returns what failed to stop (never throws). */
  async run(): Promise<string[]> {
    const problems: string[] = [];
    for (const item of [...this.items].reverse()) {
      const running = await item.started;
      if (!running) continue;
      try {
        await withTimeout(running.stop(), 30_000, `stopping ${item.name}`);
      } catch (err) {
        problems.push(`${item.name}: ${errorText(err)}`);
      }
    }
    this.items.length = 0;
    return problems;
  }
}

/** Milliseconds the promise took to settle successfully. */
async function timed(p: Promise<unknown>): Promise<number> {
  const started = Date.now();
  await p;
  return Date.now() - started;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function errorText(err: unknown): string {
  const body = (err as { body?: unknown }).body;
  const message = err instanceof Error ? err.message : String(err);
  const detail = typeof body === "object" && body && "message" in body ? `: ${String((body as { message: unknown }).message)}` : "";
  return redactSecrets(`${message}${detail}`);
}

interface SeenEvent {
  type: string;
  reason: string;
}

interface StateObserver {
  /** Resolves with the FINISHED object; rejects on FAILED or timeout. */
  finished: Promise<IssuedCertificate>;
  /** Milliseconds after the create when each state was first seen. */
  reachedAt: Map<string, number>;
  /** Resolves once a matching Event has been printed, or after the grace period. */
  eventSeen(matches: (e: SeenEvent) => boolean, graceMs: number): Promise<void>;
  stop(): void;
}

/**
 * Prints each state change and Event of the IssuedCertificate as it happens. Watches give every
 * intermediate state (ISSUED lasts only milliseconds without pods to bounce); a slow poll backs them up in
 * case a watch drops. Both start from a list's resourceVersion, so nothing between list and create is lost.
 * An Event the agent also logged as a bounce line (printed already, with the same text) is printed short.
 */
async function observeIssuedCertificate(c: Clients, createdAt: () => number, logged: (reason: string, message: string) => boolean): Promise<StateObserver> {
  const watch = new Watch(c.kc);
  let lastRv = 0;
  let lastState = "";
  let settle: { resolve: (ic: IssuedCertificate) => void; reject: (err: Error) => void } | undefined;
  const finished = new Promise<IssuedCertificate>((resolve, reject) => (settle = { resolve, reject }));
  finished.catch(() => {}); // awaited later; never an unhandled rejection meanwhile
  const seen: SeenEvent[] = [];
  const waiters: { matches: (e: SeenEvent) => boolean; wake: () => void }[] = [];
  const reachedAt = new Map<string, number>();

  const onIssuedCertificate = (ic: IssuedCertificate): void => {
    if (ic.metadata.name !== NAME) return;
    // Watch and poll race each other; never let an older copy print a transition backwards.
    const rv = Number(ic.metadata.resourceVersion);
    if (Number.isFinite(rv)) {
      if (rv <= lastRv) return;
      lastRv = rv;
    }
    const state = ic.status?.state ?? "";
    if (state === "" || state === lastState) return;
    const t = createdAt();
    say(`  ${(lastState || "(new)").padEnd(9)} -> ${state.padEnd(9)} (t+${t} ms)`);
    if (!reachedAt.has(state)) reachedAt.set(state, t);
    lastState = state;
    if (state === "FINISHED" && ic.status?.observedGeneration === ic.metadata.generation) settle?.resolve(ic);
    if (state === "FAILED") settle?.reject(new Error(`IssuedCertificate ${MESH_NAMESPACE}/${NAME} FAILED: ${ic.status?.error ?? "(no error text)"}`));
  };

  const printedEvents = new Set<string>();
  const onEvent = (e: { metadata?: { uid?: string }; type?: string; reason?: string; message?: string; count?: number }): void => {
    const key = `${e.metadata?.uid}/${e.count ?? 1}`;
    if (printedEvents.has(key)) return;
    printedEvents.add(key);
    const repeat = (e.count ?? 1) > 1 ? ` (x${e.count})` : "";
    const text = logged(e.reason ?? "", e.message ?? "") ? " (same as its bounce line)" : `: ${redactSecrets(e.message ?? "")}`;
    say(`      event ${e.type ?? "?"} ${e.reason ?? "?"}${text}${repeat}`);
    const event = { type: e.type ?? "", reason: e.reason ?? "" };
    seen.push(event);
    for (const w of waiters.filter((w) => w.matches(event))) w.wake();
  };

  const icList = await c.issued.list(MESH_NAMESPACE);
  const events = await c.core.listNamespacedEvent({ namespace: MESH_NAMESPACE, fieldSelector: `involvedObject.name=${NAME}` });
  let stopped = false;
  const onDone = (what: string) => (err: unknown): void => {
    if (!stopped && err) step(`(${what} watch ended: ${errorText(err)}; polling instead)`);
  };
  const watches = await Promise.all([
    watch.watch(c.issued.watchPath(MESH_NAMESPACE), { resourceVersion: icList.metadata?.resourceVersion, allowWatchBookmarks: false },
      (_phase, obj) => onIssuedCertificate(obj as IssuedCertificate), onDone("IssuedCertificate")),
    watch.watch(`/api/v1/namespaces/${MESH_NAMESPACE}/events`,
      { resourceVersion: events.metadata?.resourceVersion, fieldSelector: `involvedObject.name=${NAME}` },
      (phase, obj) => { if (phase !== "DELETED") onEvent(obj); }, onDone("Event")),
  ]);
  const poll = setInterval(() => {
    c.issued.get(MESH_NAMESPACE, NAME).then((ic) => ic && onIssuedCertificate(ic), () => {});
  }, 500);
  const timeout = setTimeout(() => settle?.reject(new Error(
    `IssuedCertificate ${MESH_NAMESPACE}/${NAME} not FINISHED after ${FINISH_TIMEOUT_MS / 1000} s (last state: ${lastState || "none"})`)), FINISH_TIMEOUT_MS);

  return {
    finished,
    reachedAt,
    eventSeen: (matches, graceMs) => new Promise<void>((resolve) => {
      if (seen.some(matches)) return resolve();
      const timer = setTimeout(resolve, graceMs);
      waiters.push({ matches, wake: () => { clearTimeout(timer); resolve(); } });
    }),
    stop() {
      stopped = true;
      clearInterval(poll);
      clearTimeout(timeout);
      for (const w of watches) w.abort();
    },
  };
}

async function createRootSigningSecret(c: Clients, root: RootCa): Promise<void> {
  await c.core.createNamespacedSecret({
    namespace: SIGNING_SECRET.namespace,
    body: {
      metadata: { name: SIGNING_SECRET.name, namespace: SIGNING_SECRET.namespace },
      data: {
        "root-cert.pem": Buffer.from(root.certPem).toString("base64"),
        "key.pem": Buffer.from(root.keyPem).toString("base64"),
      },
    },
  });
}

/**
 * A fresh kube-apiserver answers the first write of any custom resource about 2 s late (measured: a
 * dry-run create pays it as well, later writes take ~10 ms). A dry run of our object pays that once, off the
 * clock, so the t+ figures show the workflow, not the API server warming up; it also checks the object
 * against the CRD schema before anything is created.
 */
async function warmUpCustomResourceWrites(c: Clients, ic: IssuedCertificate): Promise<void> {
  await c.issued.api.createNamespacedCustomObject({
    group: GROUP, version: VERSION, plural: ISSUED_CERTIFICATE.plural, namespace: MESH_NAMESPACE, body: ic, dryRun: "All",
  });
}

/** A line the agent logs with message "bounce": the IssuedCertificate reconciler's BounceRequested,
 * the bouncer's PodsRestarted, BounceWaiting, BounceFailed. Each is an Event on the IssuedCertificate too. */
interface BounceLine {
  reason: string;
  detail: string;
}

/** The agent's log: every line into the file, the bounce lines to listeners as well (in log order). */
class AgentLog extends Writable {
  private partial = "";
  private readonly bounceListeners = new Set<(line: BounceLine) => void>();

  constructor(private readonly file: WriteStream) {
    super();
  }

  onBounce(listener: (line: BounceLine) => void): () => void {
    this.bounceListeners.add(listener);
    return () => this.bounceListeners.delete(listener);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (err?: Error | null) => void): void {
    const lines = (this.partial + chunk.toString("utf8")).split("\n");
    this.partial = lines.pop()!;
    for (const line of lines) this.parse(line);
    this.file.write(chunk, done);
  }

  override _final(done: (err?: Error | null) => void): void {
    this.file.end(() => done());
  }

  private parse(line: string): void {
    let record: { message?: unknown; reason?: unknown; detail?: unknown };
    try {
      record = JSON.parse(line) as typeof record;
    } catch {
      return;
    }
    if (record.message !== "bounce") return;
    const bounce = { reason: String(record.reason ?? "?"), detail: String(record.detail ?? "") };
    for (const listener of [...this.bounceListeners]) {
      try {
        listener(bounce);
      } catch {
        // a listener's problem is the demo's, never the agent's logger's
      }
    }
  }
}

async function startLoggedAgent(kc: KubeConfig, logFile: string, bounceStrategy: Strategy | undefined): Promise<RunningAgent & { log: AgentLog }> {
  // Probes and metrics off: nothing to scrape here, and fixed ports would clash with a real agent.
  const config = parseConfig([
    "--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--log-level", "info",
    ...(bounceStrategy ? ["--bounce-strategy", bounceStrategy] : []),
  ], {});
  if (config === "help") throw new Error("unexpected help");
  const log = new AgentLog(createWriteStream(logFile, { mode: 0o600 }));
  const agent = await startAgent(config, kc, createLogger(config.logLevel, log));
  return {
    ...agent,
    log,
    async stop() {
      await agent.stop();
      await new Promise<void>((r) => log.end(r));
    },
  };
}

// ---- pods to bounce ------------------------------------------------------------------------------

function deployment(w: DemoWorkload): V1Deployment {
  return {
    metadata: { name: w.name, namespace: w.namespace, labels: { app: w.name } },
    spec: {
      replicas: w.replicas,
      selector: { matchLabels: { app: w.name } },
      // KWOK runs no container: the image is never pulled.
      template: { metadata: { labels: { app: w.name } }, spec: { containers: [{ name: w.name, image: `demo.invalid/${w.name}:1` }] } },
    },
  };
}

function bounceSelectors(): BounceSelector[] {
  return WORKLOADS.map((w) => ({ namespace: w.namespace, labels: { app: w.name }, ...w.selector }));
}

const isReadyPod = (p: V1Pod): boolean =>
  !p.metadata?.deletionTimestamp && p.status?.conditions?.some((x) => x.type === "Ready" && x.status === "True") === true;

async function podsOf(c: Clients, w: DemoWorkload): Promise<V1Pod[]> {
  return (await c.core.listNamespacedPod({ namespace: w.namespace, labelSelector: `app=${w.name}` })).items;
}

/** Polls until fn returns a value; a timeout names what was awaited and the last thing seen. */
async function pollUntil<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number, describeLast: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not after ${timeoutMs / 1000} s (${describeLast()})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Exactly `replicas` pods, all Ready, none of them terminating, none in `not`: one list per workload. */
async function waitForPods(c: Clients, what: string, not: ReadonlyMap<string, readonly V1Pod[]> = new Map()): Promise<Map<string, V1Pod[]>> {
  let last = "";
  return pollUntil(what, async () => {
    const found = new Map<string, V1Pod[]>();
    const counts: string[] = [];
    for (const w of WORKLOADS) {
      const pods = await podsOf(c, w);
      const old = new Set((not.get(w.name) ?? []).map((p) => p.metadata?.uid));
      const ready = pods.filter((p) => isReadyPod(p) && !old.has(p.metadata?.uid));
      counts.push(`${w.name} ${ready.length}/${w.replicas} Ready${pods.length > ready.length ? `, ${pods.length - ready.length} other` : ""}`);
      if (pods.length === w.replicas && ready.length === w.replicas) found.set(w.name, ready);
    }
    last = counts.join(", ");
    return found.size === WORKLOADS.length ? found : undefined;
  }, PODS_TIMEOUT_MS, () => last);
}

const podNames = (pods: readonly V1Pod[]): string => pods.map((p) => p.metadata!.name!).sort().join(", ");

/** Plays istiod once it runs with the new CA: the new root-cert.pem in its ConfigMap. */
async function publishRoot(c: Clients): Promise<void> {
  const secret = await c.core.readNamespacedSecret({ name: TARGET.name, namespace: TARGET.namespace });
  const root = decodeSecret(secret)[ROOT_CERT];
  if (!root) throw new Error(`secret ${TARGET.namespace}/${TARGET.name} has no ${ROOT_CERT} to publish`);
  await c.core.createNamespacedConfigMap({
    namespace: ROOT_CONFIGMAP.namespace,
    body: { metadata: { name: ROOT_CONFIGMAP.name, namespace: ROOT_CONFIGMAP.namespace }, data: { [ROOT_CERT]: root } },
  });
}

/** Which workload a bounce line is about ("pods in istio-system with app=istiod: ..."), if any. */
function workloadOf(detail: string): DemoWorkload | undefined {
  return WORKLOADS.find((w) => detail.startsWith(`pods in ${w.namespace} with app=${w.name}:`));
}

/**
 * After FINISHED: the agent's PodsRestarted lines name the workloads in the directive's order, each
 * once; the directive's status records one group per selector; every pod that ran before has been
 * replaced by a Ready one (with evict and delete the last group's replacements may still be starting).
 */
async function checkBounce(c: Clients, directives: CustomResourceClient<PodBounceDirective>, before: ReadonlyMap<string, readonly V1Pod[]>,
  lines: readonly BounceLine[], strategy: Strategy): Promise<void> {
  const restarted = lines.filter((l) => l.reason === "PodsRestarted").map((l) => workloadOf(l.detail)?.name ?? `(unknown: ${l.detail})`);
  const expected = WORKLOADS.map((w) => w.name);
  if (restarted.join(" -> ") !== expected.join(" -> ")) {
    throw new Error(`the agent restarted ${restarted.join(" -> ") || "nothing"}; expected ${expected.join(" -> ")}, each once`);
  }
  const directive = await directives.get(DIRECTIVE.namespace, DIRECTIVE.name);
  const recorded = directive?.status?.podsBounced ?? [];
  if (recorded.length !== WORKLOADS.length) {
    throw new Error(`PodBounceDirective ${DIRECTIVE.namespace}/${DIRECTIVE.name} status.podsBounced has ${recorded.length} groups, expected ${WORKLOADS.length}`);
  }
  const started = Date.now();
  const after = await waitForPods(c, "the bounced pods replaced by Ready ones", before);
  say(`pods bounced (${strategy}), in the order of the agent's PodsRestarted lines; replacements Ready ${Date.now() - started} ms after FINISHED:`);
  for (const [i, w] of WORKLOADS.entries()) {
    say(`  ${i + 1}. ${`${w.namespace}/${w.name}:`.padEnd(34)} ${podNames(before.get(w.name)!)} -> ${podNames(after.get(w.name)!)}`);
  }
  say(`  PodBounceDirective ${DIRECTIVE.namespace}/${DIRECTIVE.name} status.podsBounced: ${recorded.map((g) => `[${(g.bouncedPods ?? []).join(", ")}]`).join(" ")}`);
}

/** "RSA 4096 bits", "ECDSA P-256 (256 bits)". */
function keyText(spec: KeySpec): string {
  return spec.algorithm === "RSA" ? `RSA ${spec.bits} bits` : `ECDSA ${spec.curve} (${spec.curve.slice(2)} bits)`;
}

function runOpenssl(dir: string, args: string[]): string {
  try {
    return execFileSync("openssl", args, { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const stderr = String((err as { stderr?: unknown }).stderr ?? "").trim();
    throw new Error(`openssl ${args.join(" ")} failed: ${redactSecrets(stderr) || errorText(err)}`, { cause: err });
  }
}

/** The four files of the Istio plugged-in CA; the key is 0600 even if the file existed before. */
function writeBundle(dir: string, data: Record<string, string>): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const file of [CA_CERT, CERT_CHAIN, ROOT_CERT]) writeFileSync(join(dir, file), data[file]!, { mode: 0o644 });
  const keyFile = join(dir, CA_KEY);
  writeFileSync(keyFile, data[CA_KEY]!, { mode: 0o600 });
  chmodSync(keyFile, 0o600);
}

/** Milliseconds after the create: ISSUED (secret written) and FINISHED (pods bounced, if any). */
interface IssueTimes {
  issued?: number;
  finished: number;
}

async function verifyAndSummarise(c: Clients, root: RootCa, options: DemoOptions, bundleDir: string, times: IssueTimes): Promise<void> {
  let secret;
  try {
    secret = await c.core.readNamespacedSecret({ name: TARGET.name, namespace: TARGET.namespace });
  } catch (err) {
    throw new Error(isNotFound(err) ? `secret ${TARGET.namespace}/${TARGET.name} is missing although the state is FINISHED` : errorText(err), { cause: err });
  }
  const data = decodeSecret(secret);
  const keys = Object.keys(data).sort().join(", ");
  if (keys !== [CA_CERT, CA_KEY, CERT_CHAIN, ROOT_CERT].sort().join(", ")) throw new Error(`secret ${TARGET.namespace}/${TARGET.name} has keys ${keys}`);

  say("verification:");
  const key = await importPrivateKeyPem(data[CA_KEY]!);
  const verified = await verifyIssuedCertificate({
    certificatePem: data[CA_CERT]!,
    rootPem: data[ROOT_CERT]!,
    publicKey: key.publicKey,
    hosts: [ISTIOD_SPIFFE_ID],
    now: new Date(),
    clockSkewToleranceMs: 5_000,
  });
  say("  shared/pki verifyIssuedCertificate: OK (certifies ca-key.pem's public key, signed by root-cert.pem, CA, valid now, SANs = hosts)");
  if (describeKeySpec(key.spec) !== describeKeySpec(options.keySpec)) {
    throw new Error(`ca-key.pem is ${describeKeySpec(key.spec)}, ${describeKeySpec(options.keySpec)} was asked for`);
  }
  if (data[ROOT_CERT] !== root.certPem) throw new Error("root-cert.pem differs from the signing secret's root-cert.pem");
  if (data[CERT_CHAIN] !== buildCertChain(data[CA_CERT]!, data[ROOT_CERT]!)) throw new Error("cert-chain.pem is not ca-cert.pem followed by root-cert.pem");
  say("  root-cert.pem = gloo-mesh/root-ca root-cert.pem byte for byte; cert-chain.pem = ca-cert.pem + root-cert.pem: OK");

  writeBundle(bundleDir, data);
  const verify = runOpenssl(bundleDir, ["verify", "-CAfile", ROOT_CERT, CA_CERT]).trim();
  if (verify !== `${CA_CERT}: OK`) throw new Error(`openssl verify said: ${verify}`);
  say(`  openssl verify -CAfile ${ROOT_CERT} ${CA_CERT}: ${verify}`);
  // Public halves only: these outputs are PUBLIC KEY blocks, compared and never printed.
  const fromKey = runOpenssl(bundleDir, ["pkey", "-in", CA_KEY, "-pubout"]);
  const fromCert = runOpenssl(bundleDir, ["x509", "-in", CA_CERT, "-pubkey", "-noout"]);
  if (fromKey !== fromCert) throw new Error("openssl: the public key of ca-key.pem differs from the one in ca-cert.pem");
  say(`  openssl pkey -pubout (${CA_KEY}) = openssl x509 -pubkey (${CA_CERT}): OK`);

  const rootSummary = await describeCertificate(root.certPem);
  const days = Math.round((verified.notAfter.getTime() - verified.notBefore.getTime()) / 86_400_000);
  say(`summary of secret ${TARGET.namespace}/${TARGET.name}:`);
  say(`  subject:   ${verified.subject || "(empty, as Gloo Mesh issues it; the identity is the SAN)"}`);
  say(`  SANs:      ${verified.sans.join(", ")}`);
  say(`  key:       ${keyText(key.spec)}`);
  say(`  validity:  ${verified.notBefore.toISOString()} -> ${verified.notAfter.toISOString()} (${days} days)`);
  say(`  issuer:    ${verified.issuer}`);
  say(`  chain:     intermediate ${CA_CERT} -> root ${ROOT_CERT} (subject ${rootSummary.subject}, ${rootSummary.keyDescription}, self-signed)`);
  say(`  serial:    ${verified.serialNumber}`);
  if (options.bounceStrategy && times.issued !== undefined) {
    say(`  issued in: ${times.issued} ms (IssuedCertificate created -> ISSUED: secret written)`);
    say(`  bounced:   ${times.finished - times.issued} ms (ISSUED -> FINISHED: ${WORKLOADS.map((w) => w.name).join(", ")} restarted in order, ${options.bounceStrategy})`);
  } else {
    say(`  issued in: ${times.finished} ms (IssuedCertificate created -> FINISHED)`);
  }
  if (options.outDir) say(`  files:     ${[CA_CERT, CA_KEY, CERT_CHAIN, ROOT_CERT].map((f) => join(options.outDir!, f)).join(" ")} (${CA_KEY} mode 0600)`);
}

/** The namespaces istiod writes istio-ca-root-cert into, each holding `root` byte for byte; or undefined. */
async function rootEverywhere(istiod: Istiod, root: string): Promise<string[] | undefined> {
  const [expected, found] = await Promise.all([istiod.namespacesForRootCert(), istiod.rootCertConfigMaps()]);
  return expected.every((ns) => found.get(ns) === root) ? expected : undefined;
}

/** What the real istiod made of cacerts: its CA metrics, its log, its ConfigMaps, a workload certificate. */
async function showIstiod(c: Clients, istiod: Istiod): Promise<void> {
  const data = decodeSecret(await c.core.readNamespacedSecret({ name: TARGET.name, namespace: TARGET.namespace }));
  const [ours, root] = await Promise.all([describeCertificate(data[CA_CERT]!), describeCertificate(data[ROOT_CERT]!)]);
  say(`istiod (a real pilot-discovery, pid ${istiod.pid()}; ROOT_CA_DIR ${istiod.caDir}, projected from secret ${TARGET.namespace}/${TARGET.name}):`);
  const messages = istiod.logLines().map((l) => l.message);
  if (!messages.includes(ISTIOD_LOG.pluggedCa)) throw new Error(`istiod did not log "${ISTIOD_LOG.pluggedCa}"; its log: ${istiod.logFile}`);
  say(`  log: "${ISTIOD_LOG.pluggedCa}", "${ISTIOD_LOG.caStarted}"`);
  let lastMetrics = "";
  const metrics = await pollUntil("istiod's CA metrics to show the agent's intermediate", async () => {
    const m = await istiod.caMetrics();
    lastMetrics = `cert chain expiry ${m.certChainExpiry?.toISOString()}, root ${m.rootCertExpiry?.toISOString()}`;
    return m.certChainExpiry?.getTime() === ours.notAfter.getTime() && m.rootCertExpiry?.getTime() === root.notAfter.getTime() ? m : undefined;
  }, 30_000, () => lastMetrics);
  say(`  metric citadel_server_cert_chain_expiry_timestamp = ${metrics.certChainExpiry!.toISOString()} = ${CA_CERT} notAfter: OK`);
  say(`  metric citadel_server_root_cert_expiry_timestamp  = ${metrics.rootCertExpiry!.toISOString()} = ${ROOT_CERT} notAfter: OK`);
  // istiod prints serials as Go's big.Int does, without leading zeros; the line names the serial as the summary does.
  const serial = ours.serialNumber.replace(/^0+(?=.)/, "");
  if (messages.some((m) => m.startsWith("x509 cert - ") && m.includes(`SN: ${serial},`))) {
    say(`  its log lists ${CA_CERT}'s serial ${ours.serialNumber} in the chain of its own serving certificate`);
  }
  let lastMaps = "";
  const namespaces = await pollUntil("istio-ca-root-cert to hold our root in every namespace", async () => {
    const found = await rootEverywhere(istiod, data[ROOT_CERT]!);
    if (!found) lastMaps = [...(await istiod.rootCertConfigMaps()).entries()].map(([ns, pem]) => `${ns}: ${pem === data[ROOT_CERT] ? "ours" : "other"}`).join(", ");
    return found;
  }, 30_000, () => lastMaps);
  say(`  ConfigMap istio-ca-root-cert in ${namespaces.length} namespaces (${namespaces.join(", ")}), each = ${ROOT_CERT} byte for byte: OK`);
  const cert = await istiod.signWorkloadCertificate({ namespace: MESH_NAMESPACE, serviceAccount: "demo-workload" });
  if (!new X509Certificate(cert.certPem).verify(new X509Certificate(data[CA_CERT]!).publicKey)) throw new Error("istiod's workload certificate is not signed by ca-cert.pem");
  say(`  CreateCertificate (its CA gRPC service, service-account token) for ${cert.spiffeId}: signed by ${CA_CERT}, chain ends in ${ROOT_CERT}: OK`);
}

function agentLogFacts(logFile: string): string {
  try {
    const lines = readFileSync(logFile, "utf8").split("\n").filter(Boolean);
    const warnings = lines.filter((l) => /"level":"(warn|error)"/.test(l)).length;
    return `${lines.length} lines, ${warnings} warnings/errors`;
  } catch {
    return "unreadable";
  }
}

async function main(): Promise<number> {
  let options: DemoOptions | "help";
  try {
    options = parseDemoArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`demo: ${err.message}\n`);
    return 2;
  }
  if (options === "help") {
    say(USAGE);
    return 0;
  }

  // Our own signal handlers: the control plane launcher then leaves shutdown to us (a graceful stop that
  // also removes its data dir). The first Ctrl-C unwinds the demo; a second one exits at once, and the
  // launcher's exit hook still SIGKILLs its processes.
  let interrupt: ((err: Interrupted) => void) | undefined;
  const interrupted = new Promise<never>((_, reject) => (interrupt = reject));
  interrupted.catch(() => {});
  let signalled: NodeJS.Signals | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    if (signalled) {
      process.stderr.write(`demo: second ${sig}, exiting now\n`);
      process.exit(128 + (sig === "SIGINT" ? 2 : 15));
    }
    signalled = sig;
    interrupt?.(new Interrupted(sig));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // Once the control plane runs: a component that dies (a crashed kwok, say) ends the demo at once,
  // with its log tail, instead of a timeout much later.
  let componentFailed: Promise<never> = new Promise<never>(() => {});
  const orInterrupt = <T>(p: Promise<T>): Promise<T> => Promise.race([p, interrupted, componentFailed]);

  const workDir = mkdtempSync(join(tmpdir(), "cert-agent-demo-"));
  const agentLog = join(workDir, "agent.log");
  const bundleDir = options.outDir ?? join(workDir, "bundle");
  const teardown = new Teardown();
  let exitCode = 0;
  let keepLog = false;

  const bounce = options.bounceStrategy;
  say(`cert-agent demo: IssuedCertificate ${MESH_NAMESPACE}/${NAME} -> secret ${TARGET.namespace}/${TARGET.name}, ${describeKeySpec(options.keySpec)} key` +
    (bounce ? `, then ${WORKLOADS.map((w) => w.name).join(", ")} restarted (${bounce})` : ", no pods (--no-bounce)"));
  try {
    step(`starting a local control plane (etcd, kube-apiserver, kube-controller-manager${bounce ? `, kube-scheduler, ${NODE_COUNT} KWOK nodes` : ""}) and making a root CA`);
    // The root CA's key is made while the control plane boots: neither needs the other.
    const rootMade = createRootCa({ commonName: "cert-agent demo root CA" });
    rootMade.catch(() => {});
    const cp: ControlPlane = await orInterrupt(teardown.track("control plane",
      bounce ? startControlPlaneWithNodes({ nodes: NODE_COUNT }) : startControlPlane()));
    const nodes = bounce ? (cp as ControlPlaneWithNodes).nodes : undefined;
    componentFailed = new Promise<never>((_, reject) => cp.onComponentExit(reject));
    componentFailed.catch(() => {});
    const pids = cp.pids();
    step(`control plane ready in ${cp.timings.total} ms at ${cp.server} ` +
      `(etcd pid ${pids.etcd}, kube-apiserver pid ${pids.apiServer}, kube-controller-manager pid ${pids.controllerManager}; CRDs installed)`);
    if (nodes) {
      const nodePids = nodes.pids();
      step(`${nodes.names.length} KWOK nodes Ready in ${nodes.timings.total} ms (kube-scheduler pid ${nodePids.scheduler}, kwok pid ${nodePids.kwok}: ` +
        "pods are scheduled and become Ready about a second after they are created; no container runs)");
    }
    const c = clients(loadKubeConfig(cp.kubeconfigPath));
    const apps = c.kc.makeApiClient(AppsV1Api);
    const directives = new CustomResourceClient<PodBounceDirective>(c.kc, POD_BOUNCE_DIRECTIVE);

    await orInterrupt(Promise.all([ISTIO_NAMESPACE, MESH_NAMESPACE].map((name) => c.core.createNamespace({ body: { metadata: { name } } }))));
    // The Deployments' pods get scheduled and Ready while the rest is set up.
    const podsStarted = Date.now();
    const podsReady = bounce
      ? (async () => {
        await Promise.all(WORKLOADS.map((w) => apps.createNamespacedDeployment({ namespace: w.namespace, body: deployment(w) })));
        return waitForPods(c, "the Deployments' pods Ready");
      })()
      : Promise.resolve(new Map<string, V1Pod[]>());
    podsReady.catch(() => {});
    const root = await orInterrupt(rootMade);
    await orInterrupt(createRootSigningSecret(c, root));
    const rootSummary = await describeCertificate(root.certPem);
    step(`namespaces ${ISTIO_NAMESPACE} and ${MESH_NAMESPACE}; root CA "${rootSummary.subject}" (${rootSummary.keyDescription}) in secret ${SIGNING_SECRET.namespace}/${SIGNING_SECRET.name}`);
    let istiod: Istiod | undefined;
    if (options.istiod) {
      // Before any cacerts: istiod makes a self-signed CA, as on a cluster before the agent's first write.
      istiod = await orInterrupt(teardown.track("istiod", startIstiod({ kubeconfigPath: cp.kubeconfigPath, kc: c.kc })));
      const failed = componentFailed;
      const istiodFailed = new Promise<never>((_, reject) => istiod!.onExit(reject));
      istiodFailed.catch(() => {});
      componentFailed = Promise.race([failed, istiodFailed]);
      componentFailed.catch(() => {});
      const selfSigned = istiod.logLines().some((l) => l.message === ISTIOD_LOG.selfSignedCa);
      step(`istiod (real pilot-discovery, pid ${istiod.pid()}) ready: no cacerts yet, so ${selfSigned ? "a self-signed CA" : "no plugged-in CA"}; ` +
        `log ${istiod.logFile}`);
    }

    const annotations: Record<string, string> = {
      ...(options.keyAlgorithmAnnotation ? { [KEY_ALGORITHM_ANNOTATION]: options.keyAlgorithmAnnotation } : {}),
      ...(options.issuerFail !== undefined ? { [FAIL_ANNOTATION]: options.issuerFail } : {}),
    };
    const ic = issuedCertificate({
      name: NAME,
      namespace: MESH_NAMESPACE,
      hosts: [ISTIOD_SPIFFE_ID],
      target: TARGET,
      signingSecret: SIGNING_SECRET,
      rsaKeySizeBits: options.keySpec.algorithm === "RSA" ? options.keySpec.bits : undefined,
      annotations: Object.keys(annotations).length > 0 ? annotations : undefined,
      podBounceDirective: bounce ? DIRECTIVE : undefined,
    });
    const issuer: Promise<ReferenceIssuer> = teardown.track("reference issuer", startIssuer(c.kc, MESH_NAMESPACE));
    const agent = teardown.track("agent", startLoggedAgent(c.kc, agentLog, bounce));
    const warmUp = timed(warmUpCustomResourceWrites(c, ic));
    // Before the agent could act on it: the IssuedCertificate that names it is created later.
    const directiveCreated = bounce ? directives.create(DIRECTIVE.namespace, podBounceDirective(DIRECTIVE.name, DIRECTIVE.namespace, bounceSelectors())) : undefined;
    const [, runningAgent] = await orInterrupt(Promise.all([issuer, agent, warmUp, directiveCreated]));
    step(`reference issuer (watching ${MESH_NAMESPACE}) and agent (all namespaces${bounce ? `, --bounce-strategy ${bounce}` : ""}) started in-process; agent log: ${agentLog}`);
    const podsBefore = await orInterrupt(podsReady);
    if (bounce) {
      step(`Deployments Ready in ${Date.now() - podsStarted} ms: ${WORKLOADS.map((w) => `${w.namespace}/${w.name} (${podNames(podsBefore.get(w.name)!)})`).join(", ")}`);
      step(`PodBounceDirective ${DIRECTIVE.namespace}/${DIRECTIVE.name}: ${WORKLOADS[0]!.name} (then ${WORKLOADS[0]!.selector.waitForReplicas} new replica Ready), ` +
        `${WORKLOADS[1]!.name} (once ConfigMap ${ROOT_CONFIGMAP.namespace}/${ROOT_CONFIGMAP.name} holds cacerts' ${ROOT_CERT}), ${WORKLOADS[2]!.name}; ` +
        "the IssuedCertificate names it in spec.podBounceDirective");
    }
    step(`API server's first custom-resource write (a dry run of the IssuedCertificate) took ${await warmUp} ms; the clock starts now`);

    let createdAt = 0;
    // The agent's bounce lines, in log order, as they are written; the demo plays istiod when the
    // bouncer waits for the root istiod publishes (istiod, restarted first, would publish it now).
    const bounceLines: BounceLine[] = [];
    let played = false;
    let istiodRestart: Promise<void> | undefined;
    // Not publishing the root, or the bouncer failing, ends the demo at once: the IssuedCertificate would
    // stay ISSUED until --bounce-timeout (10 minutes).
    let bounceFailed: (err: Error) => void = () => {};
    const bounceFailure = new Promise<never>((_, reject) => (bounceFailed = reject));
    bounceFailure.catch(() => {});
    const offBounce = runningAgent.log.onBounce((line) => {
      bounceLines.push(line);
      say(`      bounce ${line.reason}: ${redactSecrets(line.detail)} (t+${Date.now() - createdAt} ms)`);
      if (line.reason === "BounceFailed") bounceFailed(new Error(`the pod bouncer failed: ${line.detail}`));
      if (istiod && !istiodRestart && line.reason === "PodsRestarted" && workloadOf(line.detail)?.name === "istiod") {
        // The new istiod pods would start the new istiod: the real one restarts now, with cacerts.
        const before = istiod.pid();
        const started = Date.now();
        istiodRestart = istiod.restart().then(
          () => say(`      istiod (real): restarted as its new pods would (pid ${before} -> ${istiod!.pid()}, ready in ${Date.now() - started} ms); ` +
            `it now publishes the new root in ConfigMap ${ROOT_CONFIGMAP.namespace}/${ROOT_CONFIGMAP.name} itself (t+${Date.now() - createdAt} ms)`),
          (err: unknown) => bounceFailed(new Error(`restarting istiod: ${errorText(err)}`)));
      }
      if (!istiod && !played && line.reason === "BounceWaiting" && line.detail.includes(`waiting for ConfigMap ${ROOT_CONFIGMAP.namespace}/${ROOT_CONFIGMAP.name}`)) {
        played = true;
        publishRoot(c).then(
          () => say(`      istiod (played by the demo): published the new ${ROOT_CERT} (= ${TARGET.namespace}/${TARGET.name}'s) ` +
            `in ConfigMap ${ROOT_CONFIGMAP.namespace}/${ROOT_CONFIGMAP.name}, as the restarted istiod would (t+${Date.now() - createdAt} ms)`),
          (err: unknown) => bounceFailed(new Error(`playing istiod: could not publish ConfigMap ${ROOT_CONFIGMAP.namespace}/${ROOT_CONFIGMAP.name}: ${errorText(err)}`)));
      }
    });
    const logged = (reason: string, message: string): boolean => bounceLines.some((l) => l.reason === reason && l.detail === message);
    const observer = await orInterrupt(observeIssuedCertificate(c, () => Date.now() - createdAt, logged));
    const times: IssueTimes = { finished: 0 };
    try {
      createdAt = Date.now();
      await orInterrupt(c.issued.create(MESH_NAMESPACE, ic));
      step(`created IssuedCertificate ${MESH_NAMESPACE}/${NAME} for ${ISTIOD_SPIFFE_ID} (t+0 = create request sent)`);
      try {
        await orInterrupt(Promise.race([observer.finished, bounceFailure]));
      } catch (err) {
        // Show the agent's Warning (e.g. IssuerFailed) before the error, as `kubectl describe` would.
        if (!(err instanceof Interrupted)) await orInterrupt(observer.eventSeen((e) => e.type === "Warning", LAST_EVENT_GRACE_MS));
        throw err;
      }
      times.finished = Date.now() - createdAt;
      times.issued = observer.reachedAt.get("ISSUED");
      await orInterrupt(observer.eventSeen((e) => e.reason === "Finished", LAST_EVENT_GRACE_MS));
    } finally {
      observer.stop();
      offBounce();
    }

    if (bounce) await orInterrupt(checkBounce(c, directives, podsBefore, bounceLines, bounce));
    await orInterrupt(verifyAndSummarise(c, root, options, bundleDir, times));
    if (istiod) {
      if (istiodRestart) {
        await orInterrupt(istiodRestart);
      } else {
        // --no-bounce: nothing restarted istiod; an operator would now (kubectl rollout restart deploy/istiod).
        const before = istiod.pid();
        const started = Date.now();
        await orInterrupt(istiod.restart());
        step(`istiod restarted to load cacerts (pid ${before} -> ${istiod.pid()}, ready in ${Date.now() - started} ms), as \`kubectl rollout restart\` would without the bouncer`);
      }
      await orInterrupt(showIstiod(c, istiod));
    }
    step(`agent log: ${agentLogFacts(agentLog)} (removed at exit unless something fails)`);

    if (options.keepRunning) {
      say("");
      say("everything keeps running; in another shell:");
      say(`  export KUBECONFIG=${cp.kubeconfigPath}`);
      say("  kubectl get issuedcertificates,certificaterequests -A; kubectl describe issuedcertificate -n gloo-mesh istiod");
      if (bounce) say(`  kubectl get pods -A -o wide; kubectl get podbouncedirective -n ${DIRECTIVE.namespace} ${DIRECTIVE.name} -o yaml`);
      say("press Ctrl-C to stop");
      await interrupted.catch(() => {});
    }
  } catch (err) {
    if (err instanceof Interrupted) {
      // Ctrl-C during --keep-running is the normal way out and never lands here.
      process.stderr.write(`demo: ${err.message}, stopping everything\n`);
      exitCode = 128 + (err.signal === "SIGINT" ? 2 : 15);
    } else {
      process.stderr.write(`demo failed: ${errorText(err)}\n`);
      exitCode = 1;
      keepLog = true;
    }
  } finally {
    const stopping = Date.now();
    const problems = await teardown.run();
    for (const p of problems) process.stderr.write(`demo: could not stop ${p}\n`);
    if (problems.length > 0 && exitCode === 0) exitCode = 1;
    // The temp dir may hold a copy of the key (bundle/); only the agent log survives, and only on failure.
    rmSync(join(workDir, "bundle"), { recursive: true, force: true });
    if (!keepLog) rmSync(workDir, { recursive: true, force: true });
    step(`stopped agent, issuer${options.istiod ? ", istiod" : ""} and control plane in ${Date.now() - stopping} ms; ${exitCode === 0 ? "done" : `exit ${exitCode}`}`);
    if (keepLog) process.stderr.write(`demo: agent log kept at ${agentLog}\n`);
  }
  return exitCode;
}

main().then(
  // Explicit exit: a watch socket or timer of a client library must not keep the process alive.
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo failed: ${errorText(err)}\n`);
    process.exit(1);
  },
);
