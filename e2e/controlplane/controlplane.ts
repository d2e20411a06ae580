// A real, local Kubernetes control plane for tests, in the spirit of controller-runtime's envtest:
// etcd + kube-apiserver (+ kube-controller-manager for garbage collection and namespace deletion),
// all on loopback, in a temp dir, with a throw-away PKI, RBAC on, and an admin kubeconfig.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { resolveBinDir } from "./binaries";
import { compactToCurrent, etcdArgs, etcdHealthy } from "./etcd";
import { HttpError, request, requestJson, StopWaiting, waitFor, type TlsClient } from "./http";
// nodes.ts imports ComponentExitedError from here: a cycle, harmless as both sides only use what
// they import inside functions, long after both modules have loaded.
import { POD_CONTROLLERS, startNodes, type Nodes, type NodesOptions } from "./nodes";
import { installCrds } from "./install-crds";
import { runKubectl, type KubectlOptions } from "./kubectl";
import { writeKubeconfig } from "./kubeconfig";
import { DATA_DIR_PREFIX, sweepStaleDataDirs, writePidfile } from "./pidfile";
import { generatePki, type Pki } from "./pki";
import { freePorts } from "./ports";
import { Component, onAbnormalExit, type ExitInfo } from "./proc";
import { repoRoot } from "./repo";

export type { KubectlOptions };

export interface ControlPlaneOptions {
  /** Directory holding etcd, kube-apiserver, kube-controller-manager. Default: $CERT_AGENT_CONTROLPLANE_BIN,
   * else the directory bash e2e/controlplane/build.sh prints (building them first if needed). */
  binDir?: string;
  /** CRDs to install before start resolves. Default charts/cert-agent/crds/ (skipped when missing or
   * empty); false installs none. */
  crdDir?: string | false;
  /** Run kube-controller-manager (default true). Without it ownerReferences are never collected and
   * deleted namespaces stay Terminating forever. */
  controllerManager?: boolean;
  /** kube-controller-manager's --controllers. Default garbagecollector, namespace and serviceaccount
   * (the last creates each namespace's "default" ServiceAccount, without which Pods are rejected),
   * plus POD_CONTROLLERS (deployment, replicaset, disruption, statefulset, daemonset) with `nodes`. */
  controllers?: string[];
  /** Fake Nodes where Pods run (nodes.ts: kube-scheduler binds them, KWOK plays the kubelet): a count,
   * or startNodes options. Default none: no scheduler, Pods stay Pending. Adds about 0.7 s to the start. */
  nodes?: number | Omit<NodesOptions, "kubeconfigPath" | "dataDir">;
  /** kube-apiserver's watch cache. Default off: with it, watches are served from the API server's
   * memory and compacting etcd would not make an old resourceVersion expire (410) as tests expect. */
  watchCache?: boolean;
  /** Extra kube-apiserver flags, appended last (so they win). */
  apiServerFlags?: string[];
  /** Per-phase deadline for processes to become ready. Default 60 s (a cold first exec is slow). */
  startTimeoutMs?: number;
  /** Keep the data dir (logs, kubeconfigs) after stop(), for debugging. */
  keepDataDir?: boolean;
  /** Progress messages (timings). Default: silent. */
  log?: (message: string) => void;
}

/** Milliseconds from startControlPlane() being called to each milestone. */
export interface StartTimings {
  /** Binaries located (or built), PKI generated, ports picked. */
  prepared: number;
  etcdReady: number;
  apiServerReady: number;
  /** kube-controller-manager's controllers built and running (0 without it). */
  controllerManagerReady: number;
  crdsReady: number;
  /** kube-scheduler ready and every Node Ready (0 without nodes); nodes start after the rest. */
  nodesReady: number;
  total: number;
}

export interface ControlPlanePids {
  etcd?: number;
  apiServer?: number;
  controllerManager?: number;
  scheduler?: number;
  kwok?: number;
}

/** How many log lines a ComponentExitedError carries. */
export const EXIT_LOG_TAIL_LINES = 40;

/** A component ended while the control plane was running, without stop() or stopApiServer() having
 * asked for it. The message names it, says how it ended and ends with the tail of its log. */
export class ComponentExitedError extends Error {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** "exited with code 1", "killed by SIGKILL", ... */
  readonly status: string;

  constructor(
    readonly component: string,
    exit: ExitInfo,
    readonly logFile: string,
    readonly logTail: string,
  ) {
    super(`${component} ${exit.status}; ${logFile} ends with:\n${logTail}`);
    this.name = "ComponentExitedError";
    this.code = exit.code;
    this.signal = exit.signal;
    this.status = exit.status;
  }
}

export interface ServiceAccountKubeconfigOptions {
  /** TokenRequest spec.expirationSeconds. Default 86400 (the API server enforces at least 600). */
  expirationSeconds?: number;
  /** Where to write the kubeconfig. Default <dataDir>/sa-<namespace>-<name>.kubeconfig. */
  file?: string;
}

export interface ControlPlane {
  /** Admin kubeconfig (user "admin" in group system:masters, client-certificate auth). */
  readonly kubeconfigPath: string;
  /** https://127.0.0.1:<port> */
  readonly server: string;
  /** Temp dir with etcd data, PKI, logs (*.log), kubeconfigs and pids.json; removed by stop(). */
  readonly dataDir: string;
  /** PEM of the CA that signed the API server's serving certificate. */
  readonly caPem: string;
  /** etcd's client URL (http://127.0.0.1:<port>). */
  readonly etcdUrl: string;
  readonly timings: StartTimings;
  /** PIDs of the components currently running. */
  pids(): ControlPlanePids;
  /** The fake Nodes when started with `nodes`, else undefined. */
  readonly nodes: Nodes | undefined;
  /** The first component that exited on its own (crashed, gave up, was killed by someone else), or
   * undefined while every component runs. Exits asked for by stop() or stopApiServer() do not count. */
  readonly failure: ComponentExitedError | undefined;
  /** Calls listener as soon as a component exits on its own (the moment the child's exit is seen),
   * with its name, exit code or signal and log tail. Returns a function that removes the listener. */
  onComponentExit(listener: (failure: ComponentExitedError) => void): () => void;
  /** Stops every component (SIGTERM, SIGKILL after a timeout) and removes dataDir. Idempotent. */
  stop(): Promise<void>;
  /** Stops only kube-apiserver; etcd keeps the data. */
  stopApiServer(): Promise<void>;
  /** Freezes kube-apiserver with SIGSTOP: its port still accepts connections, but nothing is answered
   * (a hung server, not a gone one). resumeApiServer() (SIGCONT) thaws it; stop() and stopApiServer()
   * thaw it first. */
  pauseApiServer(): void;
  resumeApiServer(): void;
  /** Starts kube-apiserver again on the same port with the same certs and etcd; resolves once ready,
   * rejects with `failure` as soon as any component has exited on its own. */
  startApiServer(): Promise<void>;
  /** Compacts etcd to its current revision (physically); returns the compaction revision. Watches
   * from any resourceVersion older than the newest then fail with 410 Gone (reason Expired). */
  compactEtcd(): Promise<number>;
  /** Creates the ServiceAccount if missing, gets a token for it via the TokenRequest API and writes a
   * kubeconfig using it. The account has no permissions until RBAC grants some. Returns the path. */
  kubeconfigForServiceAccount(namespace: string, name: string, opts?: ServiceAccountKubeconfigOptions): Promise<string>;
  /** Runs the system kubectl against this control plane; resolves to stdout, rejects with stderr. */
  kubectl(args: string[], opts?: KubectlOptions): Promise<string>;
  /** Installs the CRDs in dir and waits until they are served. Returns the CRD names. */
  installCrds(dir: string): Promise<string[]>;
}

const defaultCrdDir = (): string => path.join(repoRoot(), "charts", "cert-agent", "crds");

export async function startControlPlane(opts: ControlPlaneOptions = {}): Promise<ControlPlane> {
  for (let attempt = 1; ; attempt++) {
    const cp = new LocalControlPlane(opts);
    try {
      await cp.start();
      return cp;
    } catch (e) {
      await cp.stop();
      // A free port can be taken by another process between our probe and the component's bind;
      // fresh ports fix that, anything else is a real failure.
      if (attempt >= 3 || !/address already in use/.test((e as Error).message)) throw e;
      opts.log?.(`port collision, retrying with fresh ports: ${(e as Error).message.split("\n")[0]}`);
    }
  }
}

class LocalControlPlane implements ControlPlane {
  readonly dataDir: string;
  readonly kubeconfigPath: string;
  server = "";
  caPem = "";
  etcdUrl = "";
  timings: StartTimings = { prepared: 0, etcdReady: 0, apiServerReady: 0, controllerManagerReady: 0, crdsReady: 0, nodesReady: 0, total: 0 };
  failure: ComponentExitedError | undefined;

  private readonly log: (message: string) => void;
  private readonly timeoutMs: number;
  private pki: Pki | undefined;
  private tls: TlsClient | undefined;
  private etcd: Component | undefined;
  private apiServer: Component | undefined;
  private controllerManager: Component | undefined;
  nodes: Nodes | undefined;
  private nodePids: { scheduler?: number; kwok?: number } = {};
  private stopping: Promise<void> | undefined;
  private readonly exitListeners = new Set<(failure: ComponentExitedError) => void>();
  /** Rejects with the first failure; only ever raced against, so it never goes unhandled. */
  private readonly failed: Promise<never>;
  private rejectFailed: (failure: ComponentExitedError) => void = () => {};
  private readonly forgetExitCleanup: () => void;

  constructor(private readonly opts: ControlPlaneOptions) {
    this.log = opts.log ?? (() => {});
    this.timeoutMs = opts.startTimeoutMs ?? 60_000;
    // Leftovers of a control plane whose process was killed outright would otherwise pile up.
    sweepStaleDataDirs();
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), DATA_DIR_PREFIX));
    this.kubeconfigPath = path.join(this.dataDir, "admin.kubeconfig");
    writePidfile(this.dataDir, {});
    this.failed = new Promise<never>((_, reject) => (this.rejectFailed = reject));
    this.failed.catch(() => {});
    const dataDir = this.dataDir;
    this.forgetExitCleanup = onAbnormalExit(() => {
      if (!opts.keepDataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    });
  }

  start(): Promise<void> {
    return this.unlessFailed(this.startComponents());
  }

  /** p, or the failure as soon as any component exits, whatever step p is at. */
  private unlessFailed<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.failed]);
  }

  private async startComponents(): Promise<void> {
    const t0 = Date.now();
    const since = (): number => Date.now() - t0;
    // Independent preparations run together: finding (or building) binaries, PKI, ports.
    const [binDir, pki, [etcdClientPort, etcdPeerPort, apiPort, kcmPort]] = await Promise.all([
      resolveBinDir(
        this.opts.binDir,
        this.opts.controllerManager === false ? ["etcd", "kube-apiserver"] : ["etcd", "kube-apiserver", "kube-controller-manager"],
      ),
      generatePki(path.join(this.dataDir, "pki")),
      freePorts(4),
    ]);
    this.timings.prepared = since();
    this.pki = pki;
    this.caPem = pki.servingCa.certPem;
    this.tls = { ca: pki.servingCa.certPem, cert: pki.admin.certPem, key: pki.admin.keyPem };
    this.server = `https://127.0.0.1:${apiPort}`;
    this.etcdUrl = `http://127.0.0.1:${etcdClientPort}`;
    const component = (name: string, args: string[]): Component => {
      const c: Component = new Component({
        name,
        bin: path.join(binDir, name),
        args,
        logFile: path.join(this.dataDir, `${name}.log`),
        cwd: this.dataDir,
        onPidChange: () => writePidfile(this.dataDir, this.pidRecord()),
        onUnexpectedExit: (exit) => this.componentExited(c, exit),
      });
      return c;
    };

    this.etcd = component("etcd", etcdArgs(path.join(this.dataDir, "etcd"), etcdClientPort!, etcdPeerPort!));
    this.etcd.start();
    // kube-apiserver retries its etcd connections, so it starts without waiting for etcd: their
    // startups overlap (a few hundred ms saved on each start).
    const etcdReady = this.waitReady(this.etcd, () => etcdHealthy(this.etcdUrl)).then(() => {
      this.timings.etcdReady = since();
    });

    this.apiServer = component("kube-apiserver", this.apiServerArgs(apiPort!));
    writeKubeconfig(this.kubeconfigPath, this.server, this.caPem, "admin", {
      clientCertPem: pki.admin.certPem,
      clientKeyPem: pki.admin.keyPem,
    });
    await Promise.all([this.startApiServer(), etcdReady]);
    this.timings.apiServerReady = since();

    const crdDir = this.opts.crdDir === undefined ? defaultCrdDir() : this.opts.crdDir;
    const crds = crdDir === false ? Promise.resolve([]) : this.installCrds(crdDir);
    let controllerManagerReady = Promise.resolve();
    if (this.opts.controllerManager !== false) {
      // Waited for, not just started: until its controllers are built, kube-controller-manager
      // exits (code 1) if the API server is unhealthy for 10 s ("Error building controller
      // context"), and a test restarting the API server on a busy machine caused exactly that.
      const kcm = component("kube-controller-manager", this.controllerManagerArgs(kcmPort!));
      this.controllerManager = kcm;
      kcm.start();
      controllerManagerReady = this.waitReady(kcm, () => this.controllersRunning(kcmPort!)).then(() => {
        this.timings.controllerManagerReady = since();
      });
    }
    const [installed] = await Promise.all([crds, controllerManagerReady]);
    this.timings.crdsReady = since();
    if (this.opts.nodes !== undefined) {
      // After kube-controller-manager: a Deployment created the moment start() resolves is then
      // handled at once. Their logs go to dataDir; their exits are reported like ours.
      const n = this.opts.nodes;
      this.nodes = await startNodes({
        log: this.opts.log,
        binDir: this.opts.binDir,
        startTimeoutMs: this.timeoutMs,
        deleteNodesOnStop: false, // the whole control plane goes with stop()
        ...(typeof n === "number" ? { count: n } : n),
        kubeconfigPath: this.kubeconfigPath,
        dataDir: this.dataDir,
        onPidChange: (pids) => {
          this.nodePids = pids;
          writePidfile(this.dataDir, this.pidRecord());
        },
      });
      this.nodes.onComponentExit((failure) => this.recordFailure(failure, false)); // nodes.ts logged it
      this.timings.nodesReady = since();
    }
    this.timings.total = since();
    this.log(
      `control plane ready at ${this.server} in ${this.timings.total}ms ` +
        `(prepared ${this.timings.prepared}ms, etcd ${this.timings.etcdReady}ms, ` +
        `kube-apiserver ${this.timings.apiServerReady}ms, kube-controller-manager ${this.timings.controllerManagerReady}ms, ` +
        `${installed.length} CRDs ${this.timings.crdsReady}ms` +
        (this.nodes ? `, ${this.nodes.names.length} nodes ${this.timings.nodesReady}ms` : "") +
        "); " +
        `KUBECONFIG=${this.kubeconfigPath}`,
    );
  }

  private apiServerArgs(port: number): string[] {
    const pki = this.pki!;
    return [
      "--bind-address=127.0.0.1",
      "--advertise-address=127.0.0.1",
      `--secure-port=${port}`,
      `--cert-dir=${path.join(this.dataDir, "apiserver-certs")}`,
      `--tls-cert-file=${pki.serving.certFile}`,
      `--tls-private-key-file=${pki.serving.keyFile}`,
      `--client-ca-file=${pki.clientCa.certFile}`,
      `--etcd-servers=${this.etcdUrl}`,
      "--service-cluster-ip-range=10.0.0.0/24",
      `--service-account-issuer=${this.server}`,
      `--service-account-key-file=${pki.serviceAccount.publicKeyFile}`,
      `--service-account-signing-key-file=${pki.serviceAccount.privateKeyFile}`,
      "--authorization-mode=RBAC",
      // The "kubernetes" Service's Endpoints would point at 127.0.0.1, which validation rejects
      // (loopback), so the reconciler would just fail and log every few seconds.
      "--endpoint-reconciler-type=none",
      `--watch-cache=${this.opts.watchCache === true}`,
      "--profiling=false",
      // Without a watch grace period, SIGTERM leaves open watches (the controller manager always has
      // some) hanging until the 60 s HTTP shutdown timeout; with one, they are ended and the server
      // exits in about a second, so restarts and stop() stay fast.
      "--shutdown-watch-termination-grace-period=2s",
      ...(this.opts.apiServerFlags ?? []),
    ];
  }

  private controllerManagerArgs(port: number): string[] {
    const kubeconfig = writeKubeconfig(
      path.join(this.dataDir, "controller-manager.kubeconfig"),
      this.server,
      this.caPem,
      "system:kube-controller-manager",
      { clientCertPem: this.pki!.controllerManager.certPem, clientKeyPem: this.pki!.controllerManager.keyPem },
    );
    return [
      `--kubeconfig=${kubeconfig}`,
      "--bind-address=127.0.0.1",
      `--secure-port=${port}`,
      // The API server's certificate (for 127.0.0.1, from our serving CA) rather than one it makes
      // up itself: then its /healthz verifies like the API server's, and it skips a key generation.
      `--tls-cert-file=${this.pki!.serving.certFile}`,
      `--tls-private-key-file=${this.pki!.serving.keyFile}`,
      `--controllers=${this.controllers().join(",")}`,
      "--use-service-account-credentials=false",
      "--leader-elect=false",
      "--profiling=false",
    ];
  }

  /** Polls ready() until true; gives up at once (with the log tail) if the process exits. */
  private async waitReady(c: Component, ready: () => Promise<boolean>): Promise<void> {
    try {
      await waitFor(
        async () => {
          if (c.exited !== undefined) throw new StopWaiting(`${c.spec.name} ${c.exited}`);
          return ready();
        },
        { timeoutMs: this.timeoutMs, intervalMs: 50, describe: (err) => `${c.spec.name} not ready after ${this.timeoutMs}ms (${err})` },
      );
    } catch (e) {
      throw new Error(`${(e as Error).message}; ${c.spec.logFile} ends with:\n${c.logTail()}`, { cause: e });
    }
  }

  private controllers(): string[] {
    const controllers = [...(this.opts.controllers ?? ["garbagecollector", "namespace", "serviceaccount"])];
    if (this.opts.nodes !== undefined) for (const c of POD_CONTROLLERS) if (!controllers.includes(c)) controllers.push(c);
    return controllers;
  }

  /** True once kube-controller-manager has built its controllers: its /healthz then lists a check
   * per controller. Before that it is still waiting for (at most 10 s of) a healthy API server. */
  private async controllersRunning(port: number): Promise<boolean> {
    const res = await request(`https://127.0.0.1:${port}/healthz?verbose`, { tls: { ca: this.caPem } });
    return res.status === 200 && /^\[\+\]\S+-controller ok$/m.test(res.body);
  }

  /** Runs from the child's exit event: records the first failure and tells every listener at once. */
  private componentExited(c: Component, exit: ExitInfo): void {
    if (this.stopping) return; // stop() is ending everything anyway
    this.recordFailure(new ComponentExitedError(c.spec.name, exit, c.spec.logFile, c.logTail(EXIT_LOG_TAIL_LINES)));
  }

  /** Records the first failure and tells every listener at once. */
  private recordFailure(failure: ComponentExitedError, log = true): void {
    if (this.stopping) return;
    this.failure ??= failure;
    this.rejectFailed(failure);
    if (log) this.log(failure.message);
    for (const listener of [...this.exitListeners]) listener(failure);
  }

  onComponentExit(listener: (failure: ComponentExitedError) => void): () => void {
    this.exitListeners.add(listener);
    return () => this.exitListeners.delete(listener);
  }

  private pidRecord(): Record<string, number | undefined> {
    return {
      etcd: this.etcd?.pid,
      "kube-apiserver": this.apiServer?.pid,
      "kube-controller-manager": this.controllerManager?.pid,
      "kube-scheduler": this.nodePids.scheduler,
      kwok: this.nodePids.kwok,
    };
  }

  pids(): ControlPlanePids {
    return { etcd: this.etcd?.pid, apiServer: this.apiServer?.pid, controllerManager: this.controllerManager?.pid, ...this.nodes?.pids() };
  }

  async stopApiServer(): Promise<void> {
    this.resumeApiServer(); // a frozen process would only take SIGTERM once thawed
    await this.apiServer?.stop();
  }

  private paused = false;

  pauseApiServer(): void {
    const pid = this.apiServer?.pid;
    if (pid === undefined) throw new Error("kube-apiserver is not running");
    process.kill(pid, "SIGSTOP");
    this.paused = true;
  }

  resumeApiServer(): void {
    if (!this.paused) return;
    this.paused = false;
    const pid = this.apiServer?.pid;
    if (pid !== undefined) process.kill(pid, "SIGCONT");
  }

  async startApiServer(): Promise<void> {
    if (!this.apiServer) throw new Error("control plane not started");
    if (this.stopping) throw new Error("control plane stopped");
    this.apiServer.start();
    await this.unlessFailed(this.waitReady(this.apiServer, async () => (await request(`${this.server}/readyz`, { tls: this.tls })).status === 200));
  }

  compactEtcd(): Promise<number> {
    return compactToCurrent(this.etcdUrl);
  }

  installCrds(dir: string): Promise<string[]> {
    return installCrds(this.server, this.tls!, dir, this.timeoutMs);
  }

  async kubeconfigForServiceAccount(
    namespace: string,
    name: string,
    opts: ServiceAccountKubeconfigOptions = {},
  ): Promise<string> {
    const accounts = `${this.server}/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts`;
    try {
      await requestJson(accounts, {
        body: { apiVersion: "v1", kind: "ServiceAccount", metadata: { name } },
        tls: this.tls,
      });
    } catch (e) {
      if (!(e instanceof HttpError && e.status === 409)) throw e; // 409: it exists already, fine
    }
    const tokenRequest = await requestJson<{ status: { token: string } }>(
      `${accounts}/${encodeURIComponent(name)}/token`,
      {
        body: {
          apiVersion: "authentication.k8s.io/v1",
          kind: "TokenRequest",
          spec: { expirationSeconds: opts.expirationSeconds ?? 86_400 },
        },
        tls: this.tls,
      },
    );
    const file = opts.file ?? path.join(this.dataDir, `sa-${namespace}-${name}.kubeconfig`);
    return writeKubeconfig(file, this.server, this.caPem, `system:serviceaccount:${namespace}:${name}`, {
      token: tokenRequest.status.token,
    });
  }

  kubectl(args: string[], opts: KubectlOptions = {}): Promise<string> {
    return runKubectl(this.kubeconfigPath, args, opts);
  }


  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.resumeApiServer(); // a frozen API server would hold up everyone's shutdown
      // Reverse start order: nothing should see its dependency vanish while it is still working.
      await this.nodes?.stop();
      await this.controllerManager?.stop();
      await this.apiServer?.stop();
      await this.etcd?.stop();
      if (!this.opts.keepDataDir) fs.rmSync(this.dataDir, { recursive: true, force: true });
      this.forgetExitCleanup();
    })();
    return this.stopping;
  }
}
