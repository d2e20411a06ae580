// A real, local Kubernetes control plane for tests, in the spirit of controller-runtime's envtest:
// etcd + kube-apiserver (+ kube-controller-manager for garbage collection and namespace deletion),
// all on loopback, in a temp dir, with a throw-away PKI, RBAC on, and an admin kubeconfig.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { resolveBinDir } from "./binaries";
import { compactToCurrent, etcdArgs, etcdHealthy } from "./etcd";
import { HttpError, request, requestJson, StopWaiting, waitFor, type TlsClient } from "./http";
import { installCrds } from "./install-crds";
import { runKubectl, type KubectlOptions } from "./kubectl";
import { writeKubeconfig } from "./kubeconfig";
import { DATA_DIR_PREFIX, sweepStaleDataDirs, writePidfile } from "./pidfile";
import { generatePki, type Pki } from "./pki";
import { freePorts } from "./ports";
import { Component, onAbnormalExit } from "./proc";
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
   * (the last creates each namespace's "default" ServiceAccount, without which Pods are rejected). */
  controllers?: string[];
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
  crdsReady: number;
  total: number;
}

export interface ControlPlanePids {
  etcd?: number;
  apiServer?: number;
  controllerManager?: number;
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
  /** Stops every component (SIGTERM, SIGKILL after a timeout) and removes dataDir. Idempotent. */
  stop(): Promise<void>;
  /** Stops only kube-apiserver; etcd keeps the data. */
  stopApiServer(): Promise<void>;
  /** Starts kube-apiserver again on the same port with the same certs and etcd; resolves once ready. */
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
  timings: StartTimings = { prepared: 0, etcdReady: 0, apiServerReady: 0, crdsReady: 0, total: 0 };

  private readonly log: (message: string) => void;
  private readonly timeoutMs: number;
  private pki: Pki | undefined;
  private tls: TlsClient | undefined;
  private etcd: Component | undefined;
  private apiServer: Component | undefined;
  private controllerManager: Component | undefined;
  private stopping: Promise<void> | undefined;
  private readonly forgetExitCleanup: () => void;

  constructor(private readonly opts: ControlPlaneOptions) {
    this.log = opts.log ?? (() => {});
    this.timeoutMs = opts.startTimeoutMs ?? 60_000;
    // Leftovers of a control plane whose process was killed outright would otherwise pile up.
    sweepStaleDataDirs();
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), DATA_DIR_PREFIX));
    this.kubeconfigPath = path.join(this.dataDir, "admin.kubeconfig");
    writePidfile(this.dataDir, {});
    const dataDir = this.dataDir;
    this.forgetExitCleanup = onAbnormalExit(() => {
      if (!opts.keepDataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    });
  }

  async start(): Promise<void> {
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
    const component = (name: string, args: string[]): Component =>
      new Component({
        name,
        bin: path.join(binDir, name),
        args,
        logFile: path.join(this.dataDir, `${name}.log`),
        cwd: this.dataDir,
        onPidChange: () => writePidfile(this.dataDir, this.pidRecord()),
      });

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
    if (this.opts.controllerManager !== false) {
      this.controllerManager = component("kube-controller-manager", this.controllerManagerArgs(kcmPort!));
      this.controllerManager.start();
    }
    const installed = await crds;
    this.timings.crdsReady = since();
    this.timings.total = since();
    this.log(
      `control plane ready at ${this.server} in ${this.timings.total}ms ` +
        `(prepared ${this.timings.prepared}ms, etcd ${this.timings.etcdReady}ms, ` +
        `kube-apiserver ${this.timings.apiServerReady}ms, ${installed.length} CRDs ${this.timings.crdsReady}ms); ` +
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
      `--cert-dir=${path.join(this.dataDir, "controller-manager-certs")}`,
      `--controllers=${(this.opts.controllers ?? ["garbagecollector", "namespace", "serviceaccount"]).join(",")}`,
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

  private pidRecord(): Record<string, number | undefined> {
    return { etcd: this.etcd?.pid, "kube-apiserver": this.apiServer?.pid, "kube-controller-manager": this.controllerManager?.pid };
  }

  pids(): ControlPlanePids {
    return { etcd: this.etcd?.pid, apiServer: this.apiServer?.pid, controllerManager: this.controllerManager?.pid };
  }

  async stopApiServer(): Promise<void> {
    await this.apiServer?.stop();
  }

  async startApiServer(): Promise<void> {
    if (!this.apiServer) throw new Error("control plane not started");
    if (this.stopping) throw new Error("control plane stopped");
    this.apiServer.start();
    await this.waitReady(this.apiServer, async () => (await request(`${this.server}/readyz`, { tls: this.tls })).status === 200);
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
      // Reverse start order: nothing should see its dependency vanish while it is still working.
      await this.controllerManager?.stop();
      await this.apiServer?.stop();
      await this.etcd?.stop();
      if (!this.opts.keepDataDir) fs.rmSync(this.dataDir, { recursive: true, force: true });
      this.forgetExitCleanup();
    })();
    return this.stopping;
  }
}
