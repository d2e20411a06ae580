// A test builder for the IssuedCertificate reconciler WITH its I/O (cert-manager style): the in-memory
// API (fake.ts), a fake clock, in-memory Events, the agent's metrics, a captured winston logger, and
// the reference issuer's signing step to play the management plane. Tests drive time and the issuer
// explicitly; nothing here sleeps.
import { PassThrough } from "node:stream";
import { createRootCa, Misbehaviour, RootCa, signIntermediate } from "../../e2e/issuer/sign";
import { decodeBytes, encodeBytes, issuedCertificate, IssuedCertificateOptions } from "../../shared/api/builders";
import { CertificateRequest, CertificateRequestStatus, IssuedCertificate, IssuedCertificateState, PodBounceDirective } from "../../shared/api/types";
import { FakeClock } from "../../shared/controller/clock";
import { Result } from "../../shared/controller/controller";
import { MemoryEventRecorder } from "../../shared/controller/events";
import { createLogger } from "../../shared/controller/logger";
import { FakeApi, WriteRecord } from "../../shared/kube/fake";
import type { Secret } from "../../shared/kube/secrets";
import { importPrivateKeyPem, publicKeyFingerprint } from "../../shared/pki";
import { CA_KEY, KEY_ALGORITHM_ANNOTATION, PRIVATE_KEY_SECRET_KEY } from "../constants";
import { IssuedCertificateReconciler, ReconcilerOptions } from "../issued-certificate-reconciler";
import { AgentMetrics } from "../metrics";
import type { ConfigMap } from "../bouncer/pod-bouncer-reconciler";

export const T0 = new Date("2026-01-01T00:00:00Z");
export const NS = "mesh";
export const NAME = "ic";
export const KEY = `${NS}/${NAME}`;
export const TARGET = { name: "cacerts", namespace: "istio-system" };

export const SETTINGS = {
  retryBackoff: { baseMs: 10_000, maxMs: 600_000, random: () => 0.5 },
  resyncMs: 300_000,
  clockSkewToleranceMs: 300_000,
  conflictRecheckMs: 30_000,
} satisfies Partial<ReconcilerOptions>;

let root: Promise<RootCa> | undefined;
/** One signing root for the whole file (ECDSA P-256: quick), valid from a year before T0. */
export const rootCa = (): Promise<RootCa> =>
  (root ??= createRootCa({ spec: { algorithm: "ECDSA", curve: "P-256" }, now: new Date("2025-01-01T00:00:00Z"), days: 3650 }));

export interface SignOptions {
  misbehave?: Misbehaviour;
  /** The issuer's clock minus ours: notBefore/notAfter are stamped with now + offset. */
  clockOffsetMs?: number;
  /** Answer FAILED with this error instead of signing. */
  fail?: string;
  /** Sign with this root instead of the file's (a root rotation by the management plane). */
  root?: RootCa;
}

export interface EnvOptions {
  /** Overrides for the IssuedCertificate mesh/ic (ECDSA-P256, target istio-system/cacerts); false seeds none. */
  issuedCertificate?: Partial<IssuedCertificateOptions> | false;
  /** Secrets present before the first reconcile (seeded: not in any write log). */
  secrets?: Secret[];
  /** Reconciler options over SETTINGS (e.g. the root change policy). */
  settings?: Partial<ReconcilerOptions>;
  /** The reconciler's cache, always up to date with the in-memory API (an informer that has caught up), as the agent always has one; false: none (every read a request). */
  cache?: boolean;
}

/** Decoded data of a Secret. */
export function secretText(secret: Secret | undefined, key: string): string | undefined {
  const value = secret?.data?.[key];
  return value === undefined ? undefined : Buffer.from(value, "base64").toString("utf8");
}

export async function fingerprintOf(privateKeyPem: string): Promise<string> {
  return publicKeyFingerprint((await importPrivateKeyPem(privateKeyPem)).publicKey);
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

export class ReconcilerEnv {
  readonly clock = new FakeClock(T0);
  readonly api = new FakeApi({ clock: this.clock, garbageCollect: true });
  readonly issuedCertificates = this.api.client<IssuedCertificate>("IssuedCertificate");
  readonly certificateRequests = this.api.client<CertificateRequest>("CertificateRequest");
  readonly secrets = this.api.client<Secret>("Secret");
  readonly directives = this.api.client<PodBounceDirective>("PodBounceDirective");
  readonly configMaps = this.api.client<ConfigMap>("ConfigMap");
  readonly events = new MemoryEventRecorder();
  readonly metrics = new AgentMetrics();
  /** Writes made by the reconciler (not by the test nor the issuer), in order. */
  readonly writes: WriteRecord[] = [];
  /** Every private key PEM the agent ever stored, to prove none of it leaks. */
  readonly privateKeys = new Set<string>();
  reconciler!: IssuedCertificateReconciler;
  private readonly rawLog: string[] = [];
  private readonly log;
  private reconciling = false;
  private readonly settings: Partial<ReconcilerOptions>;

  constructor(o: EnvOptions = {}) {
    this.settings = {
      ...(o.cache !== false ? { cache: {
        issuedCertificate: (ns: string, name: string) => this.api.peek<IssuedCertificate>("IssuedCertificate", ns, name),
        secretVersion: (ns: string, name: string) => this.api.peek<Secret>("Secret", ns, name)?.metadata.resourceVersion,
        requestVersion: (ns: string, name: string) => this.api.peek<CertificateRequest>("CertificateRequest", ns, name)?.metadata.resourceVersion,
      } } : {}),
      ...o.settings,
    };
    const stream = new PassThrough();
    stream.on("data", (chunk: Buffer) => this.rawLog.push(chunk.toString("utf8")));
    this.log = createLogger("debug", stream);
    this.api.onWrite((w) => {
      if (this.reconciling) this.writes.push(w);
      if (w.kind !== "Secret") return;
      const secret = this.api.peek<Secret>("Secret", w.namespace, w.name);
      for (const k of [PRIVATE_KEY_SECRET_KEY, CA_KEY]) {
        const pem = secretText(secret, k);
        if (pem) this.privateKeys.add(pem);
      }
    });
    if (o.issuedCertificate !== false) {
      this.api.seed("IssuedCertificate", issuedCertificate({
        name: NAME,
        namespace: NS,
        target: TARGET,
        annotations: { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" },
        ...o.issuedCertificate,
      }));
    }
    for (const s of o.secrets ?? []) this.api.seed("Secret", s);
    this.restart();
  }

  /** A new reconciler instance on the same API, clock, log, Events and metrics (an agent restart). */
  restart(): void {
    this.reconciler = new IssuedCertificateReconciler({
      issuedCertificates: this.issuedCertificates,
      certificateRequests: this.certificateRequests,
      secrets: this.secrets,
      clock: this.clock,
      log: this.log,
      events: this.events,
      metrics: this.metrics,
      directives: this.directives,
      configMaps: this.configMaps,
      ...SETTINGS,
      ...this.settings,
    });
  }

  /** One reconcile with a fresh signal (or the given one). */
  async reconcile(key = KEY, signal: AbortSignal = new AbortController().signal): Promise<Result | void> {
    this.reconciling = true;
    try {
      return await this.reconciler.reconcile(key, signal);
    } finally {
      this.reconciling = false;
    }
  }

  /** Plays the issuer: answers the CertificateRequest ns/name for its current generation. */
  async sign(ns = NS, name = NAME, o: SignOptions = {}): Promise<void> {
    const cr = this.api.peek<CertificateRequest>("CertificateRequest", ns, name);
    if (!cr) throw new Error(`no CertificateRequest ${ns}/${name} to sign`);
    const observedGeneration = cr.metadata.generation;
    let status: CertificateRequestStatus;
    if (o.fail !== undefined) {
      status = { observedGeneration, state: "FAILED", error: o.fail };
    } else {
      const ic = this.api.peek<IssuedCertificate>("IssuedCertificate", ns, name);
      const ca = o.root ?? await rootCa();
      const pem = await signIntermediate({
        csrPem: decodeBytes(cr.spec?.certificateSigningRequest) ?? "",
        hosts: ic?.spec?.hosts ?? [],
        ttlDays: ic?.spec?.certOptions?.ttlDays ?? 0,
        root: ca,
        now: new Date(this.clock.now().getTime() + (o.clockOffsetMs ?? 0)),
        misbehave: o.misbehave ?? "none",
      });
      status = { observedGeneration, state: "FINISHED", ...(pem ? { signedCertificate: encodeBytes(pem) } : {}), signingRootCa: encodeBytes(ca.certPem) };
    }
    await this.certificateRequests.replaceStatus({ ...cr, status });
  }

  /** Reconciles (signing each new request on the way) until the IssuedCertificate is in `state`. */
  async runUntil(state: IssuedCertificateState, o: SignOptions & { key?: string; maxSteps?: number } = {}): Promise<(Result | void)[]> {
    const key = o.key ?? KEY;
    const [ns, name] = key.split("/");
    const results: (Result | void)[] = [];
    for (let step = 0; step < (o.maxSteps ?? 12); step++) {
      if (this.state(key) === state) return results;
      const cr = this.api.peek<CertificateRequest>("CertificateRequest", ns, name);
      if (this.state(key) === "REQUESTED" && cr && cr.status?.observedGeneration !== cr.metadata.generation) await this.sign(ns, name, o);
      results.push(await this.reconcile(key));
    }
    if (this.state(key) === state) return results;
    throw new Error(`${key} did not reach ${state}: it is ${this.state(key)} (${this.ic(key)?.status?.error ?? ""})`);
  }

  ic(key = KEY): IssuedCertificate | undefined {
    const [ns, name] = key.split("/");
    return this.api.peek<IssuedCertificate>("IssuedCertificate", ns, name);
  }

  state(key = KEY): IssuedCertificateState | undefined {
    return this.ic(key)?.status?.state;
  }

  annotations(key = KEY): Record<string, string> {
    return this.ic(key)?.metadata.annotations ?? {};
  }

  request(ns = NS, name = NAME): CertificateRequest | undefined {
    return this.api.peek<CertificateRequest>("CertificateRequest", ns, name);
  }

  stagedKey(ns = NS, name = NAME): Secret | undefined {
    return this.api.peek<Secret>("Secret", ns, name);
  }

  target(): Secret | undefined {
    return this.api.peek<Secret>("Secret", TARGET.namespace, TARGET.name);
  }

  /** Fingerprint of the staged private key as stored (not as annotated). */
  async stagedFingerprint(): Promise<string> {
    const pem = secretText(this.stagedKey(), PRIVATE_KEY_SECRET_KEY);
    if (!pem) throw new Error("no staged key");
    return fingerprintOf(pem);
  }

  /** How many keys the reconciler generated (keygenSeconds observations, all algorithms). */
  async keygenCount(): Promise<number> {
    const metric = await this.metrics.keygenSeconds.get();
    return metric.values.filter((v) => v.metricName?.endsWith("_count")).reduce((sum, v) => sum + v.value, 0);
  }

  /** [type, reason] of every Event recorded. */
  eventReasons(): [string, string][] {
    return this.events.events.map((e) => [e.type, e.reason]);
  }

  /** The captured log records (after letting the logger's streams drain). */
  async logRecords(): Promise<Record<string, unknown>[]> {
    await tick();
    await tick();
    return this.rawLog.join("").split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /**
   * Everything an operator can read (log lines, Events, IssuedCertificate statuses) that shows key
   * material: a PEM private key, base64 DER of a key ("MII" PKCS#8/RSA, "MHc" SEC1 EC, "MIG" PKCS#8
   * P-256), or a line of any private key the agent stored. Empty when clean.
   */
  async keyMaterialLeaks(): Promise<string[]> {
    const issued = (await this.issuedCertificates.list()).items;
    const texts = [
      ...(await this.logRecords()).map((r) => JSON.stringify(r)),
      ...this.events.events.map((e) => e.message),
      ...issued.map((ic) => JSON.stringify(ic.status ?? {})),
    ];
    const bodyLines = [...this.privateKeys].flatMap((pem) => pem.split("\n").filter((l) => l.length >= 16 && !l.startsWith("-----")));
    return texts.filter((t) => /PRIVATE KEY|redacted PEM|MII|MHc|MIG/.test(t) || bodyLines.some((l) => t.includes(l)));
  }
}

export const newEnv = (o: EnvOptions = {}) => new ReconcilerEnv(o);
