// A real istiod (pilot-discovery, built by ./build.sh from the istio.io/istio module) against a local
// control plane, for tests that must see what Istio itself does with the `cacerts` Secret the agent
// writes: which CA it signs with, what its metrics say, the `istio-ca-root-cert` ConfigMaps it writes
// into every namespace, and workload certificates from its CA service.
//
// istiod runs as a plain process on loopback (free ports, a temp dir); outside a pod nothing mounts
// the Secret into its ROOT_CA_DIR, so a projector plays the kubelet: it watches istio-system/cacerts
// and, `projectionDelayMs` after a change (the kubelet's sync period, scaled down), writes the files the
// way the kubelet's atomic writer does: a new `..<timestamp>` directory, then the `..data` symlink
// swapped by a rename, the file names being symlinks through `..data`. istiod's file watcher therefore
// sees the real order of events. At start the current content is projected at once, as a pod's volume
// is mounted before its container starts.
//
//   const istiod = await startIstiod({ kubeconfigPath: cp.kubeconfigPath, kc });
//   await istiod.caMetrics();                 // { certChainExpiry, rootCertExpiry } from its metrics
//   await istiod.rootCertConfigMaps();        // Map namespace -> root-cert.pem
//   await istiod.signWorkloadCertificate({ namespace: "default", serviceAccount: "web" });
//   await istiod.restart();                   // as a pod restart: same ports and CA dir, new process
//   await istiod.stop();
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { CoreV1Api, KubeConfig, type V1Secret, Watch } from "@kubernetes/client-node";
import { X509Certificate } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as tls from "node:tls";
import { buildCsr, exportPrivateKeyPem, generateKeyPair } from "../../shared/pki";
import { ComponentExitedError, EXIT_LOG_TAIL_LINES } from "../controlplane/controlplane";
import { request, StopWaiting, waitFor } from "../controlplane/http";
import { runKubectl } from "../controlplane/kubectl";
import { DATA_DIR_PREFIX, writePidfile } from "../controlplane/pidfile";
import { freePorts } from "../controlplane/ports";
import { Component, onAbnormalExit, type ExitInfo } from "../controlplane/proc";
import { runBuildScript } from "../controlplane/binaries";
import { repoRoot } from "../controlplane/repo";

export const ISTIOD_BIN_DIR_ENV = "CERT_AGENT_ISTIOD_BIN";
export const ISTIO_NAMESPACE = "istio-system";
export const CACERTS_SECRET = "cacerts";
/** The ConfigMap istiod writes into every namespace it does not ignore, with its roots under ROOT_CERT_KEY. */
export const ROOT_CERT_CONFIGMAP = "istio-ca-root-cert";
export const ROOT_CERT_KEY = "root-cert.pem";
/** Namespaces istiod writes no istio-ca-root-cert into (its namespace controller's ignore list; kube-system
 * is not on it). */
export const ROOT_CERT_IGNORED_NAMESPACES: readonly string[] = ["kube-public", "kube-node-lease", "local-path-storage"];
/** The DNS name in istiod's serving certificate that clients check (istiod.<namespace>.svc). */
export const ISTIOD_HOST = `istiod.${ISTIO_NAMESPACE}.svc`;
/** The audience istiod's CA accepts service-account tokens for (TOKEN_AUDIENCES default). */
export const CA_TOKEN_AUDIENCE = "istio-ca";
/** The CRD file build.sh copies next to pilot-discovery. */
export const CRD_FILE = "crd-all.gen.yaml";
/** Lines istiod logs (istio.io/istio pilot/pkg/bootstrap). */
export const LOG = {
  pluggedCa: "Use local CA certificate",
  selfSignedCa: "Use self-signed certificate as the CA certificate",
  caStarted: "Istiod CA has started",
  /** After a change in ROOT_CA_DIR was loaded (same root, or a root change it accepted). */
  intermediateReloaded: "Istiod has detected the newly added intermediate CA and updated its key and certs accordingly",
  reloadFailed: "Failed to update new Plug-in CA certs",
  rootChangeRefused: /Multi root is disabled, updating new ROOT-CA not supported|Updating new ROOT-CA not supported/,
} as const;

export interface IstiodOptions {
  /** Admin kubeconfig of the control plane (istiod and the projector use it). */
  kubeconfigPath: string;
  /** The same cluster as a KubeConfig; default loaded from kubeconfigPath. */
  kc?: KubeConfig;
  /** Holds pilot-discovery and crd-all.gen.yaml. Default $CERT_AGENT_ISTIOD_BIN, else what build.sh prints. */
  binDir?: string;
  /** istiod's ROOT_CA_DIR, where the projector writes cacerts. Default <dataDir>/cacerts. */
  caDir?: string;
  /** From a change of the Secret being seen to its files being swapped in. Default 2000 ms (the
   * kubelet's one-minute sync period, scaled down). */
  projectionDelayMs?: number;
  /** Start istiod only once istio-system/cacerts exists with all four keys (and is projected): it then
   * starts with the plugged-in CA. Default false: without the Secret istiod makes a self-signed CA
   * (istio-ca-secret) and, as in a cluster, ignores a cacerts that appears later until restarted. */
  waitForCacerts?: boolean;
  /** ISTIO_MULTIROOT_MESH (istiod then accepts a root-cert.pem that adds or drops roots). Default true. */
  multiRoot?: boolean;
  /** More environment for istiod (wins over ours). */
  env?: Record<string, string>;
  /** Where the log, kubeconfig copy and CA dir go. Default a temp dir, removed by stop() unless keepDataDir. */
  dataDir?: string;
  keepDataDir?: boolean;
  /** Deadline for /ready (and for waitForCacerts). Default 120 s: a first start of a cold 100 MB binary on a busy machine. */
  startTimeoutMs?: number;
  /** Progress messages and istiod's exit. Default: silent. */
  log?: (message: string) => void;
}

export interface IstiodPorts {
  http: number;
  https: number;
  grpc: number;
  secureGrpc: number;
  monitoring: number;
}

/** One swap of the projected files. Times are epoch milliseconds. */
export interface Projection {
  /** When the projector first saw the Secret content it projected (a watch event or the initial read). */
  observedAt: number;
  /** When the `..data` symlink was swapped. */
  projectedAt: number;
  resourceVersion: string;
  /** The `..<timestamp>` directory now behind `..data`. */
  dir: string;
  /** File name -> content (UTF-8), as projected. */
  files: Record<string, string>;
}

/** A line of istiod's log: `<RFC 3339 time>\t<level>\t[<scope>\t]<message>`. */
export interface IstiodLogLine {
  time: Date;
  level: string;
  message: string;
}

export interface WorkloadCertificateRequest {
  namespace: string;
  serviceAccount: string;
  /** validity_duration asked for; istiod caps it at MAX_WORKLOAD_CERT_TTL. Default 3600. */
  ttlSeconds?: number;
  /** Root(s) to trust for istiod's serving certificate. Default: istio-system's istio-ca-root-cert ConfigMap,
   * as a workload's proxy does. */
  trustRootPem?: string;
  /** Create the ServiceAccount when missing (default true). */
  createServiceAccount?: boolean;
}

export interface WorkloadCertificate {
  /** spiffe://cluster.local/ns/<namespace>/sa/<serviceAccount>, which the CSR asked for. */
  spiffeId: string;
  /** The workload key (PKCS#8 PEM). */
  keyPem: string;
  /** The signed leaf (istiod's response's first element). */
  certPem: string;
  /** istiod's response as it came, one certificate an element but the last: the leaf, each certificate
   * of its cert-chain.pem (ca-cert.pem, then the root), then root-cert.pem whole. */
  certChain: string[];
  /** Between leaf and roots: the intermediates (our ca-cert.pem), the roots left out. */
  intermediatesPem: string;
  /** The last element: istiod's root-cert.pem. */
  rootPem: string;
}

export interface Istiod {
  readonly dataDir: string;
  /** ROOT_CA_DIR. */
  readonly caDir: string;
  readonly logFile: string;
  readonly ports: IstiodPorts;
  /** The running pilot-discovery's PID, undefined while stopped. */
  pid(): number | undefined;
  /** Set when istiod exited on its own (not through stop() or restart()). */
  readonly failure: ComponentExitedError | undefined;
  onExit(listener: (failure: ComponentExitedError) => void): () => void;
  /** The whole log (stdout and stderr of every start). */
  log(): string;
  /** The log lines of the current (last) start, parsed; lines without a timestamp are left out. */
  logLines(): IstiodLogLine[];
  /** The monitoring port's /metrics (Prometheus text). */
  metrics(): Promise<string>;
  /** A metric's value (the first sample whose name matches exactly), or undefined. */
  metricValue(name: string): Promise<number | undefined>;
  /** citadel_server_cert_chain_expiry_timestamp (ca-cert.pem's notAfter) and
   * citadel_server_root_cert_expiry_timestamp (the first root's notAfter), to the second. */
  caMetrics(): Promise<{ certChainExpiry?: Date; rootCertExpiry?: Date }>;
  /** istio-ca-root-cert's root-cert.pem in every namespace that has one. */
  rootCertConfigMaps(): Promise<Map<string, string | undefined>>;
  rootCertConfigMap(namespace: string): Promise<string | undefined>;
  /** Namespaces that should hold istio-ca-root-cert: all but ROOT_CERT_IGNORED_NAMESPACES and Terminating ones. */
  namespacesForRootCert(): Promise<string[]>;
  /** Every swap the projector made, oldest first. */
  projections(): readonly Projection[];
  /** A workload certificate from istiod's CA service (secure gRPC), authenticated by a service-account
   * token (TokenRequest, audience istio-ca) as istio-agent does. */
  signWorkloadCertificate(req: WorkloadCertificateRequest): Promise<WorkloadCertificate>;
  /** Stops istiod and starts it again with the same ports, environment and CA dir, as a new pod: the
   * Secret's current content is projected first (no delay), the projector keeps running. Resolves once
   * /ready. */
  restart(): Promise<void>;
  /** Stops istiod and the projector; removes dataDir unless kept. Idempotent. */
  stop(): Promise<void>;
}

export async function startIstiod(opts: IstiodOptions): Promise<Istiod> {
  for (let attempt = 1; ; attempt++) {
    const istiod = new LocalIstiod(opts);
    try {
      await istiod.start();
      return istiod;
    } catch (e) {
      await istiod.stop();
      // A port probed free can be taken before istiod binds it: fresh ports, another try.
      if (attempt >= 3 || !/address already in use/.test((e as Error).message)) throw e;
      opts.log?.(`istiod: port collision, retrying with fresh ports: ${(e as Error).message.split("\n")[0]}`);
    }
  }
}

/** opts.binDir, else $CERT_AGENT_ISTIOD_BIN, else what e2e/istiod/build.sh prints (building if needed). */
export async function resolveIstiodBinDir(binDir?: string): Promise<string> {
  const dir = binDir ?? process.env[ISTIOD_BIN_DIR_ENV] ?? (await runBuildScript(path.join(repoRoot(), "e2e", "istiod", "build.sh")));
  for (const f of ["pilot-discovery", CRD_FILE]) {
    if (!fs.existsSync(path.join(dir, f))) throw new Error(`${path.join(dir, f)} missing (run: bash e2e/istiod/build.sh)`);
  }
  return dir;
}


/** The istio.v1.auth.IstioCertificateService of istio.io/api security/v1alpha1, described in protobuf.js's
 * JSON form: the two messages with the fields we use (metadata, field 4, is left out) and the one method. */
const CA_SERVICE: Parameters<typeof protoLoader.fromJSON>[0] = {
  nested: {
    istio: {
      nested: {
        v1: {
          nested: {
            auth: {
              nested: {
                IstioCertificateRequest: {
                  fields: { csr: { type: "string", id: 1 }, validityDuration: { type: "int64", id: 3 } },
                },
                IstioCertificateResponse: {
                  fields: { certChain: { rule: "repeated", type: "string", id: 1 } },
                },
                IstioCertificateService: {
                  methods: {
                    CreateCertificate: { requestType: "IstioCertificateRequest", responseType: "IstioCertificateResponse", comment: "" },
                  },
                },
              },
            },
          },
        },
      },
    },
  },
};

interface CaClient extends grpc.Client {
  CreateCertificate(
    request: { csr: string; validityDuration: string },
    metadata: grpc.Metadata,
    options: grpc.CallOptions,
    callback: (err: grpc.ServiceError | null, response?: { certChain?: string[] }) => void,
  ): grpc.ClientUnaryCall;
}

let caClientConstructor: (new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions) => CaClient) | undefined;

function caClient(address: string, trustedPem: string): CaClient {
  if (!caClientConstructor) {
    const definition = protoLoader.fromJSON(CA_SERVICE, { longs: String, defaults: true });
    const loaded = grpc.loadPackageDefinition(definition) as unknown as {
      istio: { v1: { auth: { IstioCertificateService: NonNullable<typeof caClientConstructor> } } };
    };
    caClientConstructor = loaded.istio.v1.auth.IstioCertificateService;
  }
  return new caClientConstructor(address, grpc.credentials.createSsl(Buffer.from(trustedPem)), {
    // We dial 127.0.0.1; istiod's serving certificate is for its Service name.
    "grpc.ssl_target_name_override": ISTIOD_HOST,
    "grpc.default_authority": ISTIOD_HOST,
  });
}

/**
 * istiod's serving chain on `port`, checked here rather than by OpenSSL: each certificate signed by the
 * next, the last by one of the roots in trustRootPem, all valid now, the first for ISTIOD_HOST. Returns
 * the serving certificate (PEM).
 *
 * Why not OpenSSL (Node's TLS): Gloo Mesh's intermediates have an EMPTY subject, so every certificate
 * istiod issues under one has an empty issuer name, and its leaves (istiod's own serving certificate, the
 * workload certificates) have an empty subject and no subjectKeyIdentifier too. OpenSSL then takes such
 * a leaf for self-signed (subject = issuer, nothing in the AKID contradicts it) and fails at depth 0,
 * "self-signed certificate", without looking at the chain istiod sends. signWorkloadCertificate therefore
 * verifies the chain here and then pins the certificate it verified (plus the roots) for the gRPC channel.
 */
export async function verifiedServingCertificate(port: number, trustRootPem: string, now = new Date()): Promise<string> {
  const chain = await new Promise<X509Certificate[]>((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername: ISTIOD_HOST, rejectUnauthorized: false, ALPNProtocols: ["h2"] }, () => {
      // getPeerCertificate(true) links each presented certificate to its issuer among the presented ones.
      const certs: X509Certificate[] = [];
      const seen = new Set<string>();
      for (let c: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true); c?.raw && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
        seen.add(c.fingerprint256);
        certs.push(new X509Certificate(c.raw));
      }
      socket.destroy();
      resolve(certs);
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error(`istiod's secure port ${port}: TLS handshake timed out`)));
    socket.on("error", reject);
  });
  const roots = pemBlocks(trustRootPem).map((p) => new X509Certificate(p));
  const problem = servingChainProblem(chain, roots, now);
  if (problem) throw new Error(`istiod's serving certificate on port ${port}: ${problem}`);
  return chain[0]!.toString();
}

function servingChainProblem(chain: X509Certificate[], roots: X509Certificate[], now: Date): string | undefined {
  if (chain.length === 0) return "none presented";
  if (!chain[0]!.checkHost(ISTIOD_HOST)) return `not for ${ISTIOD_HOST} (SANs: ${chain[0]!.subjectAltName})`;
  for (const [i, cert] of chain.entries()) {
    if (new Date(cert.validFrom) > now || new Date(cert.validTo) < now) return `certificate ${i} not valid now (${cert.validFrom} - ${cert.validTo})`;
    if (roots.some((r) => r.fingerprint256 === cert.fingerprint256 || cert.verify(r.publicKey))) return undefined;
    const next = chain[i + 1];
    if (!next) break;
    if (!next.ca) return `certificate ${i + 1} is not a CA`;
    if (!cert.verify(next.publicKey)) return `certificate ${i} is not signed by certificate ${i + 1}`;
  }
  return `no certificate of the chain (${chain.length}) is signed by a trusted root`;
}

/** Every PEM certificate block in text, each ending in a newline. */
function pemBlocks(text: string): string[] {
  return (text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []).map((b) => `${b}\n`);
}

const isNotFound = (e: unknown): boolean => (e as { code?: number }).code === 404;
const isConflict = (e: unknown): boolean => (e as { code?: number }).code === 409;

/** Plays the kubelet for one Secret volume (see the file comment). */
class Projector {
  readonly projected: Projection[] = [];
  private lastProjectedKey = "";
  private latest: { secret: V1Secret; observedAt: number } | undefined;
  private pendingSince: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  private watch: AbortController | undefined;
  private resourceVersion: string | undefined;
  private stopped = false;
  private readonly core: CoreV1Api;

  constructor(
    private readonly kc: KubeConfig,
    private readonly namespace: string,
    private readonly name: string,
    readonly dir: string,
    private readonly delayMs: number,
    private readonly log: (message: string) => void,
  ) {
    this.core = kc.makeApiClient(CoreV1Api);
    fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  }

  /** Projects the current content at once (a volume mounted before the container starts), then watches. */
  async start(): Promise<void> {
    await this.resync(true);
    await this.openWatch();
  }

  /** True once the projected content has all of `keys`. */
  hasProjected(keys: readonly string[]): boolean {
    const last = this.projected[this.projected.length - 1];
    return last !== undefined && keys.every((k) => k in last.files);
  }

  /** Projects the Secret's current content now, without the delay: what the kubelet mounts for a new
   * pod (restart()). */
  syncNow(): Promise<void> {
    return this.resync(true);
  }

  private async resync(immediately: boolean): Promise<void> {
    try {
      const secret = await this.core.readNamespacedSecret({ name: this.name, namespace: this.namespace });
      this.resourceVersion = secret.metadata?.resourceVersion;
      this.observe(secret, immediately);
    } catch (e) {
      if (!isNotFound(e)) throw e;
      this.resourceVersion = undefined;
    }
  }

  private async openWatch(): Promise<void> {
    if (this.stopped) return;
    const reopen = (): void => {
      if (!this.stopped) setTimeout(() => void this.reopen(), 200).unref();
    };
    try {
      this.watch = await new Watch(this.kc).watch(
        `/api/v1/namespaces/${this.namespace}/secrets`,
        { fieldSelector: `metadata.name=${this.name}`, ...(this.resourceVersion ? { resourceVersion: this.resourceVersion } : {}) },
        (type: string, obj: V1Secret & { code?: number }) => {
          if (type === "ERROR") {
            if (obj.code === 410) this.resourceVersion = undefined; // expired: list again on reopen
            return;
          }
          this.resourceVersion = obj.metadata?.resourceVersion ?? this.resourceVersion;
          // A deleted Secret leaves the files as they are (the kubelet keeps a volume's last content).
          if (type === "ADDED" || type === "MODIFIED") this.observe(obj, false);
        },
        reopen,
      );
    } catch {
      reopen();
    }
  }

  private async reopen(): Promise<void> {
    if (this.stopped) return;
    if (this.resourceVersion === undefined) {
      try {
        await this.resync(false);
      } catch {
        // the API server may be restarting; the next reopen tries again
      }
    }
    await this.openWatch();
  }

  private observe(secret: V1Secret, immediately: boolean): void {
    const now = Date.now();
    if (contentKey(secret) === this.lastProjectedKey) {
      this.latest = undefined; // back to what is projected: nothing to do
      return;
    }
    this.latest = { secret, observedAt: now };
    this.pendingSince ??= now;
    if (immediately) {
      this.flush();
    } else if (!this.timer) {
      // The kubelet's next sync projects whatever is current then, however many changes came before.
      this.timer = setTimeout(() => this.flush(), this.delayMs);
      this.timer.unref();
    }
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const latest = this.latest;
    if (!latest || this.stopped) return;
    this.latest = undefined;
    const observedAt = this.pendingSince ?? latest.observedAt;
    this.pendingSince = undefined;
    const files = Object.fromEntries(Object.entries(latest.secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64")]));
    const dir = atomicWrite(this.dir, files);
    this.lastProjectedKey = contentKey(latest.secret);
    const projection: Projection = {
      observedAt,
      projectedAt: Date.now(),
      resourceVersion: latest.secret.metadata?.resourceVersion ?? "",
      dir,
      files: Object.fromEntries(Object.entries(files).map(([k, v]) => [k, v.toString("utf8")])),
    };
    this.projected.push(projection);
    this.log(`projector: ${this.namespace}/${this.name} resourceVersion ${projection.resourceVersion} -> ${this.dir}/${dir} ` +
      `(${projection.projectedAt - observedAt} ms after it was seen)`);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.watch?.abort();
  }
}

function contentKey(secret: V1Secret): string {
  return JSON.stringify(Object.entries(secret.data ?? {}).sort(([a], [b]) => a.localeCompare(b)));
}

/**
 * The kubelet's AtomicWriter (pkg/volume/util/atomic_writer.go), in its order: the payload goes into
 * a new hidden directory `..<timestamp>.<random>`; a symlink `..data_tmp` to it is renamed over `..data`
 * (the one atomic step); each visible name is a symlink `<name> -> ..data/<name>`, created if missing,
 * and names no longer in the payload are removed; then the previous timestamped directory goes.
 * Returns the new directory's name.
 */
export function atomicWrite(dir: string, files: Record<string, Buffer>): string {
  const dataLink = path.join(dir, "..data");
  let previous: string | undefined;
  try {
    previous = fs.readlinkSync(dataLink);
  } catch {
    previous = undefined;
  }
  const previousNames = previous ? fs.readdirSync(path.join(dir, previous)) : [];
  const stamp = new Date().toISOString().replace(/[-:]/g, "_").replace("T", "_").replace("Z", "");
  const tsDir = fs.mkdtempSync(path.join(dir, `..${stamp}.`));
  for (const [name, content] of Object.entries(files)) {
    // A Secret volume's default mode (0644), as Istio's manifests mount cacerts.
    fs.writeFileSync(path.join(tsDir, name), content, { mode: 0o644 });
  }
  fs.chmodSync(tsDir, 0o755);
  const tmpLink = path.join(dir, "..data_tmp");
  fs.rmSync(tmpLink, { force: true });
  fs.symlinkSync(path.basename(tsDir), tmpLink);
  fs.renameSync(tmpLink, dataLink);
  for (const name of Object.keys(files)) {
    const visible = path.join(dir, name);
    if (!isSymlink(visible)) fs.symlinkSync(path.join("..data", name), visible);
  }
  for (const name of previousNames) {
    if (!(name in files)) fs.rmSync(path.join(dir, name), { force: true });
  }
  if (previous) fs.rmSync(path.join(dir, previous), { recursive: true, force: true });
  return path.basename(tsDir);
}

function isSymlink(file: string): boolean {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

/** Istio's log line: `2026-11-28T21:50:00.123456Z\tinfo\t[scope\t]message`. */
export function parseIstiodLog(text: string): IstiodLogLine[] {
  const lines: IstiodLogLine[] = [];
  for (const line of text.split("\n")) {
    const m = /^(\d{4}-\d\d-\d\dT[\d:.]+Z)\t(\w+)\t(.*)$/.exec(line);
    if (!m) continue;
    lines.push({ time: new Date(m[1]!), level: m[2]!, message: m[3]! });
  }
  return lines;
}

/** The first sample of metric `name` (exact name, any labels) in Prometheus text, or undefined. */
export function metricSample(text: string, name: string): number | undefined {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line);
    if (m && m[1] === name) return Number(m[3]);
  }
  return undefined;
}

class LocalIstiod implements Istiod {
  readonly dataDir: string;
  readonly caDir: string;
  readonly logFile: string;
  ports: IstiodPorts = { http: 0, https: 0, grpc: 0, secureGrpc: 0, monitoring: 0 };
  failure: ComponentExitedError | undefined;

  private readonly ownsDataDir: boolean;
  private readonly kc: KubeConfig;
  private readonly core: CoreV1Api;
  private readonly say: (message: string) => void;
  private readonly timeoutMs: number;
  private component: Component | undefined;
  private projector: Projector | undefined;
  private stopping: Promise<void> | undefined;
  private restarting = false;
  private readonly exitListeners = new Set<(failure: ComponentExitedError) => void>();
  private readonly forgetExitCleanup: () => void;

  constructor(private readonly opts: IstiodOptions) {
    this.say = opts.log ?? (() => {});
    this.timeoutMs = opts.startTimeoutMs ?? 120_000;
    this.ownsDataDir = opts.dataDir === undefined;
    // The control plane's prefix and a pidfile: if this process is killed outright, the next control
    // plane start kills a leftover istiod (its command line names this directory) and removes it.
    this.dataDir = opts.dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), `${DATA_DIR_PREFIX}istiod-`));
    fs.mkdirSync(this.dataDir, { recursive: true });
    if (this.ownsDataDir) writePidfile(this.dataDir, {});
    this.caDir = opts.caDir ?? path.join(this.dataDir, "cacerts");
    this.logFile = path.join(this.dataDir, "istiod.log");
    if (opts.kc) {
      this.kc = opts.kc;
    } else {
      this.kc = new KubeConfig();
      this.kc.loadFromFile(opts.kubeconfigPath);
    }
    this.core = this.kc.makeApiClient(CoreV1Api);
    const { dataDir, ownsDataDir } = this;
    this.forgetExitCleanup = onAbnormalExit(() => {
      if (ownsDataDir && !opts.keepDataDir) fs.rmSync(dataDir, { recursive: true, force: true });
    });
  }

  async start(): Promise<void> {
    const t0 = Date.now();
    const [binDir, [http, https, grpcPort, secureGrpc, monitoring]] = await Promise.all([resolveIstiodBinDir(this.opts.binDir), freePorts(5)]);
    this.ports = { http: http!, https: https!, grpc: grpcPort!, secureGrpc: secureGrpc!, monitoring: monitoring! };
    // A copy inside dataDir, so istiod's command line names dataDir (the stale-data-dir sweep checks that).
    const kubeconfig = path.join(this.dataDir, "istiod.kubeconfig");
    fs.copyFileSync(this.opts.kubeconfigPath, kubeconfig);
    fs.chmodSync(kubeconfig, 0o600);

    try {
      await this.core.createNamespace({ body: { metadata: { name: ISTIO_NAMESPACE } } });
    } catch (e) {
      if (!isConflict(e)) throw e;
    }
    const crds = path.join(binDir, CRD_FILE);
    await runKubectl(kubeconfig, ["apply", "--server-side", "--field-manager=istio-e2e", "-f", crds], { timeoutMs: this.timeoutMs });
    await runKubectl(kubeconfig, ["wait", "--for=condition=Established", `--timeout=${Math.ceil(this.timeoutMs / 1000)}s`, "-f", crds], { timeoutMs: this.timeoutMs + 5000 });
    const crdsMs = Date.now() - t0;

    this.projector = new Projector(this.kc, ISTIO_NAMESPACE, CACERTS_SECRET, this.caDir, this.opts.projectionDelayMs ?? 2000, this.say);
    await this.projector.start();
    if (this.opts.waitForCacerts) {
      const keys = ["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"];
      await waitFor(async () => this.projector!.hasProjected(keys), {
        timeoutMs: this.timeoutMs,
        describe: () => `${ISTIO_NAMESPACE}/${CACERTS_SECRET} with ${keys.join(", ")} not projected into ${this.caDir} after ${this.timeoutMs} ms`,
      });
    }

    // On top of our environment (through env(1): Component passes its own on).
    const env: Record<string, string> = {
      KUBECONFIG: "", // never the developer's clusters
      POD_NAMESPACE: ISTIO_NAMESPACE,
      // Stable across restart(): istiod's leader elections (e.g. the namespace controller that writes
      // istio-ca-root-cert) then take the lease back at once instead of waiting for it to expire.
      POD_NAME: "istiod-e2e",
      ROOT_CA_DIR: this.caDir,
      ISTIO_MULTIROOT_MESH: String(this.opts.multiRoot ?? true),
      // No webhook configurations exist to patch (empty names turn the patchers off).
      INJECTION_WEBHOOK_CONFIG_NAME: "",
      VALIDATION_WEBHOOK_CONFIG_NAME: "",
      // Controllers we do not exercise: less CPU on a small machine, fewer log lines about missing CRDs.
      PILOT_ENABLE_GATEWAY_API: "false",
      PILOT_ENABLE_AGENTGATEWAY: "false",
      ...this.opts.env,
    };
    const loop = (p: number): string => `127.0.0.1:${p}`;
    this.component = new Component({
      name: "istiod",
      bin: "env",
      args: [
        ...Object.entries(env).map(([k, v]) => `${k}=${v}`),
        path.join(binDir, "pilot-discovery"),
        "discovery",
        `--kubeconfig=${kubeconfig}`,
        `--httpAddr=${loop(this.ports.http)}`,
        `--httpsAddr=${loop(this.ports.https)}`,
        `--grpcAddr=${loop(this.ports.grpc)}`,
        `--secureGRPCAddr=${loop(this.ports.secureGrpc)}`,
        `--monitoringAddr=${loop(this.ports.monitoring)}`,
        "--ctrlz_address=127.0.0.1",
        "--ctrlz_port=0",
        // SIGTERM: drain for 1 s rather than 10 (nothing is connected for long here).
        "--shutdownDuration=1s",
      ],
      logFile: this.logFile,
      // Its relative default paths (./etc/istio/config/mesh, ./var/lib/istio/inject, ...) then name
      // nothing: Istio's default mesh config (trust domain cluster.local), no injector templates.
      cwd: this.dataDir,
      onPidChange: () => {
        if (this.ownsDataDir) writePidfile(this.dataDir, { istiod: this.component?.pid });
      },
      onUnexpectedExit: (exit) => this.exited(exit),
    });
    await this.launch();
    this.say(`istiod ready in ${Date.now() - t0} ms (CRDs ${crdsMs} ms; pid ${this.pid()}, secure gRPC ${loop(this.ports.secureGrpc)}, ` +
      `metrics ${loop(this.ports.monitoring)}, ROOT_CA_DIR ${this.caDir}, log ${this.logFile})`);
  }

  /** Starts the process and waits for /ready; fails at once, with the log tail, if it exits. */
  private async launch(): Promise<void> {
    const c = this.component!;
    c.start();
    try {
      await waitFor(
        async () => {
          if (c.exited !== undefined) throw new StopWaiting(`istiod ${c.exited}`);
          const ready = (await request(`http://127.0.0.1:${this.ports.http}/ready`, { timeoutMs: 2000 })).status === 200;
          // The CA service is registered by a start function that may run just after /ready turns 200.
          return ready && (this.logSinceStart().includes(LOG.caStarted) || this.opts.env?.ENABLE_CA_SERVER === "false");
        },
        { timeoutMs: this.timeoutMs, intervalMs: 100, describe: (err) => `istiod not ready after ${this.timeoutMs} ms (${err})` },
      );
    } catch (e) {
      throw new Error(`${(e as Error).message}; ${this.logFile} ends with:\n${c.logTail(EXIT_LOG_TAIL_LINES)}`, { cause: e });
    }
  }

  private exited(exit: ExitInfo): void {
    if (this.stopping || this.restarting) return;
    const failure = new ComponentExitedError("istiod", exit, this.logFile, this.component!.logTail(EXIT_LOG_TAIL_LINES));
    this.failure ??= failure;
    this.say(failure.message);
    for (const listener of [...this.exitListeners]) listener(failure);
  }

  onExit(listener: (failure: ComponentExitedError) => void): () => void {
    this.exitListeners.add(listener);
    return () => this.exitListeners.delete(listener);
  }

  pid(): number | undefined {
    return this.component?.pid;
  }

  log(): string {
    try {
      return fs.readFileSync(this.logFile, "utf8");
    } catch {
      return "";
    }
  }

  /** The log after the last "=== <time> starting:" line Component writes at each start. */
  private logSinceStart(): string {
    const text = this.log();
    const at = text.lastIndexOf("\n=== ");
    return at < 0 ? text : text.slice(at + 1);
  }

  logLines(): IstiodLogLine[] {
    return parseIstiodLog(this.logSinceStart());
  }

  async metrics(): Promise<string> {
    const res = await request(`http://127.0.0.1:${this.ports.monitoring}/metrics`, { timeoutMs: 5000 });
    if (res.status !== 200) throw new Error(`istiod /metrics: HTTP ${res.status}`);
    return res.body;
  }

  async metricValue(name: string): Promise<number | undefined> {
    return metricSample(await this.metrics(), name);
  }

  async caMetrics(): Promise<{ certChainExpiry?: Date; rootCertExpiry?: Date }> {
    const text = await this.metrics();
    const at = (name: string): Date | undefined => {
      const v = metricSample(text, name);
      return v === undefined || !Number.isFinite(v) ? undefined : new Date(v * 1000);
    };
    return {
      certChainExpiry: at("citadel_server_cert_chain_expiry_timestamp"),
      rootCertExpiry: at("citadel_server_root_cert_expiry_timestamp"),
    };
  }

  async rootCertConfigMaps(): Promise<Map<string, string | undefined>> {
    const list = await this.core.listConfigMapForAllNamespaces({ fieldSelector: `metadata.name=${ROOT_CERT_CONFIGMAP}` });
    return new Map(list.items.map((cm) => [cm.metadata!.namespace!, cm.data?.[ROOT_CERT_KEY]]));
  }

  async rootCertConfigMap(namespace: string): Promise<string | undefined> {
    try {
      return (await this.core.readNamespacedConfigMap({ name: ROOT_CERT_CONFIGMAP, namespace })).data?.[ROOT_CERT_KEY];
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  async namespacesForRootCert(): Promise<string[]> {
    const list = await this.core.listNamespace();
    return list.items
      .filter((ns) => ns.status?.phase !== "Terminating" && !ROOT_CERT_IGNORED_NAMESPACES.includes(ns.metadata!.name!))
      .map((ns) => ns.metadata!.name!)
      .sort();
  }

  projections(): readonly Projection[] {
    return this.projector?.projected ?? [];
  }

  async signWorkloadCertificate(req: WorkloadCertificateRequest): Promise<WorkloadCertificate> {
    const { namespace, serviceAccount } = req;
    if (req.createServiceAccount !== false) {
      try {
        await this.core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: serviceAccount } } });
      } catch (e) {
        if (!isConflict(e)) throw e;
      }
    }
    const token = (await this.core.createNamespacedServiceAccountToken({
      name: serviceAccount,
      namespace,
      body: { spec: { audiences: [CA_TOKEN_AUDIENCE], expirationSeconds: 600 } },
    })).status?.token;
    if (!token) throw new Error(`TokenRequest for ${namespace}/${serviceAccount} returned no token`);
    const trustRootPem = req.trustRootPem ?? (await this.rootCertConfigMap(ISTIO_NAMESPACE));
    if (!trustRootPem) throw new Error(`no root to trust istiod with: ${ISTIO_NAMESPACE}/${ROOT_CERT_CONFIGMAP} has no ${ROOT_CERT_KEY}`);

    const spiffeId = `spiffe://cluster.local/ns/${namespace}/sa/${serviceAccount}`;
    const keys = await generateKeyPair({ algorithm: "ECDSA", curve: "P-256" });
    const csr = await buildCsr({ keys, org: "", hosts: [spiffeId] });
    // The roots, and the serving certificate we verified ourselves (see verifiedServingCertificate).
    const pinned = await verifiedServingCertificate(this.ports.secureGrpc, trustRootPem);
    const client = caClient(`127.0.0.1:${this.ports.secureGrpc}`, trustRootPem.trimEnd() + "\n" + pinned);
    const metadata = new grpc.Metadata();
    metadata.set("authorization", `Bearer ${token}`);
    let certChain: string[];
    try {
      certChain = await new Promise<string[]>((resolve, reject) => {
        client.CreateCertificate(
          { csr, validityDuration: String(req.ttlSeconds ?? 3600) },
          metadata,
          { deadline: Date.now() + 30_000 },
          (err, response) => (err ? reject(new Error(`istiod CreateCertificate: ${err.code} ${err.details}`, { cause: err })) : resolve(response?.certChain ?? [])),
        );
      });
    } finally {
      client.close();
    }
    if (certChain.length < 2) throw new Error(`istiod CreateCertificate returned ${certChain.length} certificates`);
    const rootBlocks = pemBlocks(certChain[certChain.length - 1]!);
    return {
      spiffeId,
      keyPem: await exportPrivateKeyPem(keys.privateKey),
      certPem: certChain[0]!,
      certChain,
      // istiod sends its cert-chain.pem whole (ca-cert.pem, then the root) before root-cert.pem.
      intermediatesPem: certChain.slice(1, -1).flatMap(pemBlocks).filter((b) => !rootBlocks.includes(b)).join(""),
      rootPem: certChain[certChain.length - 1]!,
    };
  }

  async restart(): Promise<void> {
    const c = this.component;
    if (!c || this.stopping) throw new Error("istiod is not running");
    this.restarting = true;
    try {
      await c.stop();
    } finally {
      this.restarting = false;
    }
    this.failure = undefined;
    // A new pod's volume holds the Secret as it is now, whatever the old pod's sync was waiting for.
    await this.projector!.syncNow();
    await this.launch();
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.projector?.stop();
      await this.component?.stop();
      if (this.ownsDataDir && !this.opts.keepDataDir) fs.rmSync(this.dataDir, { recursive: true, force: true });
      this.forgetExitCleanup();
    })();
    return this.stopping;
  }
}
