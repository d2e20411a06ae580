// Fake Nodes where Pods live, for tests that need Deployments, ReplicaSets, rollouts and
// PodDisruptionBudgets to behave as in a cluster: the real kube-scheduler binds Pods, and KWOK
// (sigs.k8s.io/kwok) plays the kubelet. It marks its Nodes Ready and moves each Pod bound to one from
// Pending to Running to Ready without any container, following the Stages in kwok/*.yaml.
//
// Per-pod readiness (kwok/pod-stages.yaml): a Pod annotated `cert-agent.test/ready: "false"` runs
// but stays (or becomes) unready until the annotation is removed or changed; the annotation
// `cert-agent.test/ready-delay: "3s"` delays its readiness. Any other Pod is Ready within about a
// second of being created.
//
// Opt-in, so suites without Pods keep today's start time:
//   const cp = await startControlPlane({ nodes: 3 });            // + POD_CONTROLLERS in kube-controller-manager
//   cp.nodes!.names; ...; await cp.stop();                        // stops the nodes, then the control plane
// (startControlPlaneWithNodes is the same, typed so that cp.nodes is defined) or, against a control
// plane already running with POD_CONTROLLERS:
//   const nodes = await startNodes({ kubeconfigPath, count: 3 }); ...; await nodes.stop();
import * as fs from "node:fs";
import * as https from "node:https";
import * as os from "node:os";
import * as path from "node:path";
import { randomBytes } from "node:crypto";
import { parse as parseYaml } from "yaml";
import { resolveBinDir } from "./binaries";
import { ComponentExitedError, EXIT_LOG_TAIL_LINES, startControlPlane, type ControlPlane, type ControlPlaneOptions } from "./controlplane";
import { HttpError, request, requestJson, StopWaiting, waitFor, type TlsClient } from "./http";
import { DATA_DIR_PREFIX, writePidfile } from "./pidfile";
import { freePort } from "./ports";
import { Component, onAbnormalExit, type ExitInfo } from "./proc";
import { repoRoot } from "./repo";

/** `"false"`: the Pod runs but is not Ready (a Ready Pod becomes unready) until removed or changed. */
export const READY_ANNOTATION = "cert-agent.test/ready";
/** A Go duration ("500ms", "3s"): how long a Pod waits, once Running, before it becomes Ready. */
export const READY_DELAY_ANNOTATION = "cert-agent.test/ready-delay";
/** Label on every Node of one startNodes() call; its value is that set's id. */
export const NODE_SET_LABEL = "cert-agent.test/kwok-node-set";

/** The controllers Pods need, which startControlPlane({ nodes }) adds to kube-controller-manager's:
 * ReplicaSets for Deployments (rollouts, replacements), PodDisruptionBudget status for the Eviction
 * API, and (cheap while unused) StatefulSets and DaemonSets. */
export const POD_CONTROLLERS = ["deployment", "replicaset", "disruption", "statefulset", "daemonset"];

export interface NodesOptions {
  /** Admin kubeconfig of a running control plane (client-certificate auth, as controlplane.ts writes). */
  kubeconfigPath: string;
  /** How many Nodes. */
  count: number;
  /** Where logs (kube-scheduler.log, kwok.log) and scratch files go. Default: a temp dir of its own,
   * removed by stop() unless keepDataDir. A given directory is never removed. */
  dataDir?: string;
  keepDataDir?: boolean;
  /** Directory holding kube-scheduler and kwok; default as for startControlPlane. */
  binDir?: string;
  /** Node names are <prefix>0, <prefix>1, ... Default "kwok-node-". */
  namePrefix?: string;
  /** Each Node's capacity and allocatable. Default cpu 32, memory 256Gi, pods 110. */
  allocatable?: { cpu?: string; memory?: string; pods?: string };
  /** Delete the Nodes in stop() (default true). Pointless when the control plane goes away too. */
  deleteNodesOnStop?: boolean;
  /** Deadline for the scheduler and the Nodes to become ready. Default 60 s. */
  startTimeoutMs?: number;
  /** Progress messages (timings) and component exits. Default: silent. */
  log?: (message: string) => void;
  /** Called whenever kube-scheduler's or kwok's PID changes (startControlPlane records them in its pidfile). */
  onPidChange?: (pids: { scheduler?: number; kwok?: number }) => void;
}

/** Milliseconds from startNodes() being called to each milestone. */
export interface NodesTimings {
  /** Binaries located, kubeconfig read, port picked. */
  prepared: number;
  schedulerReady: number;
  /** Every Node Ready (KWOK) and untainted. */
  nodesReady: number;
  total: number;
}

export interface Nodes {
  /** The Nodes' names, in creation order. */
  readonly names: readonly string[];
  /** The value of NODE_SET_LABEL on them. */
  readonly setId: string;
  readonly dataDir: string;
  readonly timings: NodesTimings;
  pids(): { scheduler?: number; kwok?: number };
  /** The first of kube-scheduler and kwok to exit on its own, or undefined while both run. */
  readonly failure: ComponentExitedError | undefined;
  /** Calls listener as soon as kube-scheduler or kwok exits on its own. Returns the unsubscriber. */
  onComponentExit(listener: (failure: ComponentExitedError) => void): () => void;
  /** Stops kwok and kube-scheduler (and deletes the Nodes unless deleteNodesOnStop is false). Idempotent. */
  stop(): Promise<void>;
}

export async function startNodes(opts: NodesOptions): Promise<Nodes> {
  if (!Number.isInteger(opts.count) || opts.count < 1) throw new Error(`startNodes: count must be a positive integer, not ${opts.count}`);
  for (let attempt = 1; ; attempt++) {
    const nodes = new KwokNodes(opts);
    try {
      await nodes.start();
      return nodes;
    } catch (e) {
      await nodes.stop(true);
      // kube-scheduler's port, probed free, can be taken before it binds it: fresh port, new try.
      if (attempt >= 3 || !/address already in use/.test((e as Error).message)) throw e;
      opts.log?.(`port collision, retrying with a fresh port: ${(e as Error).message.split("\n")[0]}`);
    }
  }
}

/** The connection details of a client-certificate kubeconfig. */
function readKubeconfig(file: string): { server: string; tls: TlsClient } {
  type Named<T> = { name: string } & T;
  const kc = parseYaml(fs.readFileSync(file, "utf8")) as {
    "current-context": string;
    contexts: Named<{ context: { cluster: string; user: string } }>[];
    clusters: Named<{ cluster: { server: string; "certificate-authority-data": string } }>[];
    users: Named<{ user: { "client-certificate-data"?: string; "client-key-data"?: string } }>[];
  };
  const ctx = kc.contexts.find((c) => c.name === kc["current-context"])?.context;
  const cluster = kc.clusters.find((c) => c.name === ctx?.cluster)?.cluster;
  const user = kc.users.find((u) => u.name === ctx?.user)?.user;
  if (!cluster || !user?.["client-certificate-data"] || !user["client-key-data"]) {
    throw new Error(`${file}: need a current context with a cluster and a client-certificate user (an admin kubeconfig)`);
  }
  const decode = (b64: string): string => Buffer.from(b64, "base64").toString("utf8");
  return {
    server: cluster.server,
    tls: {
      ca: decode(cluster["certificate-authority-data"]),
      cert: decode(user["client-certificate-data"]),
      key: decode(user["client-key-data"]),
    },
  };
}

interface NodeObject {
  metadata: { name: string };
  spec?: { taints?: { key: string; effect: string }[] };
  status?: { conditions?: { type: string; status: string }[] };
}

const isReady = (n: NodeObject): boolean => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") === true;

class KwokNodes implements Nodes {
  readonly dataDir: string;
  readonly setId = randomBytes(4).toString("hex");
  readonly names: string[];
  timings: NodesTimings = { prepared: 0, schedulerReady: 0, nodesReady: 0, total: 0 };
  failure: ComponentExitedError | undefined;

  private readonly ownsDataDir: boolean;
  private readonly log: (message: string) => void;
  private readonly timeoutMs: number;
  private server = "";
  private tls: TlsClient | undefined;
  private scheduler: Component | undefined;
  private kwok: Component | undefined;
  private created: string[] = [];
  private stopping: Promise<void> | undefined;
  private readonly exitListeners = new Set<(failure: ComponentExitedError) => void>();
  private readonly failed: Promise<never>;
  private rejectFailed: (failure: ComponentExitedError) => void = () => {};
  private readonly forgetExitCleanup: () => void;

  constructor(private readonly opts: NodesOptions) {
    this.log = opts.log ?? (() => {});
    this.timeoutMs = opts.startTimeoutMs ?? 60_000;
    const prefix = opts.namePrefix ?? "kwok-node-";
    if (opts.count > 254) throw new Error(`startNodes: at most 254 Nodes (one 192.0.2.x address each), not ${opts.count}`);
    this.names = Array.from({ length: opts.count }, (_, i) => `${prefix}${i}`);
    this.ownsDataDir = opts.dataDir === undefined;
    // Our own directory carries the control plane's prefix and a pidfile, so that if this process is
    // killed outright the next control-plane start sweeps it (and anything still running from it).
    this.dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), `${DATA_DIR_PREFIX}nodes-`));
    if (this.ownsDataDir) writePidfile(this.dataDir, {});
    this.failed = new Promise<never>((_, reject) => (this.rejectFailed = reject));
    this.failed.catch(() => {});
    const { dataDir, ownsDataDir } = this;
    this.forgetExitCleanup = onAbnormalExit(() => {
      if (ownsDataDir && !opts.keepDataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    });
  }

  start(): Promise<void> {
    return Promise.race([this.startComponents(), this.failed]);
  }

  private async startComponents(): Promise<void> {
    const t0 = Date.now();
    const since = (): number => Date.now() - t0;
    const [binDir, port] = await Promise.all([resolveBinDir(this.opts.binDir, ["kube-scheduler", "kwok"]), freePort()]);
    ({ server: this.server, tls: this.tls } = readKubeconfig(this.opts.kubeconfigPath));
    // A copy inside dataDir: the components' command lines then name dataDir, which is what the
    // stale-data-dir sweep (pidfile.ts) checks before killing a leftover PID.
    const kubeconfig = path.join(this.dataDir, "nodes.kubeconfig");
    fs.copyFileSync(this.opts.kubeconfigPath, kubeconfig);
    fs.chmodSync(kubeconfig, 0o600);
    this.timings.prepared = since();

    const component = (name: string, bin: string, args: string[]): Component => {
      const c: Component = new Component({
        name,
        bin,
        args,
        logFile: path.join(this.dataDir, `${name}.log`),
        cwd: this.dataDir,
        onPidChange: () => {
          if (this.ownsDataDir) writePidfile(this.dataDir, { "kube-scheduler": this.scheduler?.pid, kwok: this.kwok?.pid });
          this.opts.onPidChange?.(this.pids());
        },
        onUnexpectedExit: (exit) => this.componentExited(c, exit),
      });
      return c;
    };

    const certDir = path.join(this.dataDir, "kube-scheduler-certs");
    this.scheduler = component("kube-scheduler", path.join(binDir, "kube-scheduler"), [
      `--kubeconfig=${kubeconfig}`,
      "--bind-address=127.0.0.1",
      `--secure-port=${port}`,
      // A self-signed serving certificate, written here; readiness probes trust exactly that file.
      `--cert-dir=${certDir}`,
      "--leader-elect=false",
      "--profiling=false",
    ]);
    const stages = path.join(repoRoot(), "e2e", "controlplane", "kwok");
    // Through env(1): KWOK also loads $KWOK_WORKDIR/kwok.yaml (default ~/.kwok/kwok.yaml, which
    // kwokctl users have) and would mix its Stages with ours; a work dir of our own has none.
    this.kwok = component("kwok", "env", [
      `KWOK_WORKDIR=${path.join(this.dataDir, "kwok-workdir")}`,
      path.join(binDir, "kwok"),
      `--kubeconfig=${kubeconfig}`,
      `--config=${path.join(stages, "node-stages.yaml")}`,
      `--config=${path.join(stages, "pod-stages.yaml")}`,
      "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
      // Pod IPs from a range of their own (KWOK's default, 10.0.0.0/24, is the Service range here).
      "--cidr=10.244.0.0/16",
      // No --server-address and no --node-port: KWOK then serves nothing (no exec/logs/metrics API).
    ]);
    this.scheduler.start();
    this.kwok.start();

    const schedulerReady = this.waitReady(this.scheduler, () => this.schedulerReady(port, certDir)).then(() => {
      this.timings.schedulerReady = since();
    });
    const nodesReady = Promise.all(this.names.map((name, i) => this.createNode(name, `192.0.2.${i + 1}`))).then(() => {
      this.timings.nodesReady = since();
    });
    await Promise.all([schedulerReady, nodesReady]);
    this.timings.total = since();
    this.log(
      `${this.names.length} kwok nodes ready in ${this.timings.total}ms (prepared ${this.timings.prepared}ms, ` +
        `kube-scheduler ${this.timings.schedulerReady}ms, nodes ${this.timings.nodesReady}ms)`,
    );
  }

  private api(p: string): string {
    return `${this.server}${p}`;
  }

  /** Creates the Node, waits until KWOK has made it Ready, then removes the not-ready taint (the
   * NodeTaint admission plugin adds it on create; node-lifecycle-controller, not run here, would
   * remove it once the Node is Ready). */
  private async createNode(name: string, ip: string): Promise<void> {
    const a = this.opts.allocatable ?? {};
    const resources = { cpu: a.cpu ?? "32", memory: a.memory ?? "256Gi", pods: a.pods ?? "110" };
    try {
      await requestJson(this.api("/api/v1/nodes"), {
        tls: this.tls,
        body: {
          apiVersion: "v1",
          kind: "Node",
          metadata: {
            name,
            labels: {
              "kubernetes.io/hostname": name,
              "kubernetes.io/os": "linux",
              "kubernetes.io/arch": "amd64",
              type: "kwok",
              [NODE_SET_LABEL]: this.setId,
            },
            // The annotation KWOK is told to manage (--manage-nodes-with-annotation-selector).
            annotations: { "kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0" },
          },
          spec: {},
          // An InternalIP per Node (TEST-NET-1, RFC 5737: never routed, nothing listens) becomes
          // its Pods' status.hostIP. No kubelet port: logs/exec/port-forward are not served.
          status: {
            capacity: resources,
            allocatable: resources,
            addresses: [
              { type: "InternalIP", address: ip },
              { type: "Hostname", address: name },
            ],
          },
        },
      });
    } catch (e) {
      if (e instanceof HttpError && e.status === 409) {
        throw new Error(`Node ${name} exists already (another startNodes() on this control plane? pass namePrefix)`, { cause: e });
      }
      throw e;
    }
    this.created.push(name);
    const url = this.api(`/api/v1/nodes/${encodeURIComponent(name)}`);
    await this.waitReady(this.kwok!, async () => isReady(await requestJson<NodeObject>(url, { tls: this.tls })), `Node ${name} Ready`);
    // node.kubernetes.io/not-ready is the only taint they ever get: clearing the list removes it.
    await requestJson(url, {
      method: "PATCH",
      contentType: "application/merge-patch+json",
      tls: this.tls,
      body: { spec: { taints: null } },
    });
    const node = await requestJson<NodeObject>(url, { tls: this.tls });
    const taints = node.spec?.taints ?? [];
    if (taints.length > 0) throw new Error(`Node ${name} still has taints after removing them: ${JSON.stringify(taints)}`);
  }

  /** kube-scheduler's /readyz passes once its informers have synced. Its certificate is the
   * self-signed one it wrote into certDir on start; until then there is nothing to probe. */
  private async schedulerReady(port: number, certDir: string): Promise<boolean> {
    let ca: string;
    try {
      ca = fs.readFileSync(path.join(certDir, "kube-scheduler.crt"), "utf8");
    } catch {
      return false;
    }
    const res = await new Promise<number>((resolve, reject) => {
      const req = https.get({ host: "127.0.0.1", port, path: "/readyz", ca, agent: false, timeout: 5000 }, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      });
      req.on("timeout", () => req.destroy(new Error("timeout: kube-scheduler /readyz")));
      req.on("error", reject);
    });
    return res === 200;
  }

  /** Polls ready() until true; gives up at once (with the log tail) if the component exits. */
  private async waitReady(c: Component, ready: () => Promise<boolean>, what = `${c.spec.name} ready`): Promise<void> {
    try {
      await waitFor(
        async () => {
          if (c.exited !== undefined) throw new StopWaiting(`${c.spec.name} ${c.exited}`);
          return ready();
        },
        { timeoutMs: this.timeoutMs, intervalMs: 50, describe: (err) => `${what}: not after ${this.timeoutMs}ms (${err})` },
      );
    } catch (e) {
      throw new Error(`${(e as Error).message}; ${c.spec.logFile} ends with:\n${c.logTail()}`, { cause: e });
    }
  }

  private componentExited(c: Component, exit: ExitInfo): void {
    if (this.stopping) return;
    const failure = new ComponentExitedError(c.spec.name, exit, c.spec.logFile, c.logTail(EXIT_LOG_TAIL_LINES));
    this.failure ??= failure;
    this.rejectFailed(failure);
    this.log(failure.message);
    for (const listener of [...this.exitListeners]) listener(failure);
  }

  onComponentExit(listener: (failure: ComponentExitedError) => void): () => void {
    this.exitListeners.add(listener);
    return () => this.exitListeners.delete(listener);
  }

  pids(): { scheduler?: number; kwok?: number } {
    return { scheduler: this.scheduler?.pid, kwok: this.kwok?.pid };
  }

  stop(deleteNodes = this.opts.deleteNodesOnStop !== false): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all([this.kwok?.stop(), this.scheduler?.stop()]);
      if (deleteNodes && this.tls) {
        // Best effort: the API server may be gone already. Pods bound to them stay (no podgc runs).
        await Promise.all(
          this.created.map((name) =>
            request(this.api(`/api/v1/nodes/${encodeURIComponent(name)}`), { method: "DELETE", tls: this.tls, timeoutMs: 2000 }).catch(() => undefined),
          ),
        );
      }
      if (this.ownsDataDir && !this.opts.keepDataDir) fs.rmSync(this.dataDir, { recursive: true, force: true });
      this.forgetExitCleanup();
    })();
    return this.stopping;
  }
}

export type ControlPlaneWithNodesOptions = ControlPlaneOptions & Required<Pick<ControlPlaneOptions, "nodes">>;

/** A control plane started with `nodes`: `nodes` is always there. */
export type ControlPlaneWithNodes = ControlPlane & { readonly nodes: Nodes };

/** startControlPlane({ nodes, ... }), typed so that `cp.nodes` is never undefined. */
export async function startControlPlaneWithNodes(opts: ControlPlaneWithNodesOptions): Promise<ControlPlaneWithNodes> {
  const cp = await startControlPlane(opts);
  if (!cp.nodes) {
    await cp.stop();
    throw new Error("startControlPlane({ nodes }) returned no nodes");
  }
  return cp as ControlPlaneWithNodes;
}
