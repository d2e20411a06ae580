// What the end-to-end tests and the demo share: a namespace with a root CA and signing secret, the
// reference issuer, the agent (in-process or as a real process), and waiting for states.
import { CoreV1Api, CoreV1Event, KubeConfig, V1Secret, Watch } from "@kubernetes/client-node";
import { ChildProcess, spawn } from "node:child_process";
import { get } from "node:http";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { PassThrough } from "node:stream";
import { execFileSync } from "node:child_process";
import { decodeBytes, encodeBytes, issuedCertificate, IssuedCertificateOptions } from "../shared/api/builders";
import { CERTIFICATE_REQUEST, CertificateRequest, ISSUED_CERTIFICATE, IssuedCertificate, IssuedCertificateState } from "../shared/api/types";
import { createLogger } from "../shared/controller/logger";
import { CustomResourceClient } from "../shared/kube/custom-objects";
import { isNotFound } from "../shared/kube/errors";
import { AgentOverrides, RunningAgent, startAgent } from "../agent/agent";
import { assertSharedControlPlaneRunning } from "./controlplane/shared-failure";
import { parseConfig } from "../agent/config";
import { IssuerOptions, ReferenceIssuer } from "./issuer/issuer";
import { createRootCa, Misbehaviour, signIntermediate } from "./issuer/sign";
import { KeySpec } from "../shared/pki";

/** Works from the TypeScript sources (ts-jest) and from the compiled dist/e2e alike. */
export const REPO_ROOT = basename(join(__dirname, "..")) === "dist" ? join(__dirname, "..", "..") : join(__dirname, "..");

export interface Clients {
  kc: KubeConfig;
  core: CoreV1Api;
  issued: CustomResourceClient<IssuedCertificate>;
  requests: CustomResourceClient<CertificateRequest>;
}

export function clients(kc: KubeConfig): Clients {
  return {
    kc,
    core: kc.makeApiClient(CoreV1Api),
    issued: new CustomResourceClient(kc, ISSUED_CERTIFICATE),
    requests: new CustomResourceClient(kc, CERTIFICATE_REQUEST),
  };
}

export function loadKubeConfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

let counter = 0;
export async function createNamespace(c: Clients, prefix: string): Promise<string> {
  const name = `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter++}`.slice(0, 63).replace(/-+$/, "");
  await c.core.createNamespace({ body: { metadata: { name } } });
  return name;
}

export interface RootCa {
  certPem: string;
  keyPem: string;
}

/** Creates a root CA and the issuer's signing secret `root-ca` (root-cert.pem, key.pem) in namespace. */
export async function createSigningSecret(c: Clients, namespace: string, spec?: KeySpec): Promise<RootCa> {
  const root = await createRootCa({ commonName: "cert-agent test root", spec: spec ?? { algorithm: "ECDSA", curve: "P-256" } });
  await c.core.createNamespacedSecret({
    namespace,
    body: {
      metadata: { name: "root-ca", namespace },
      data: {
        "root-cert.pem": Buffer.from(root.certPem).toString("base64"),
        "key.pem": Buffer.from(root.keyPem).toString("base64"),
      },
    },
  });
  return root;
}

export function startIssuer(kc: KubeConfig, namespace?: string, options: Partial<IssuerOptions> = {}): Promise<ReferenceIssuer> {
  const issuer = new ReferenceIssuer({ kc, namespace, log: createLogger("warn", new PassThrough()), ...options });
  return issuer.start().then(() => issuer);
}

export interface InProcessAgent extends RunningAgent {
  /** Every log line the agent wrote, as text. */
  logs(): string;
}

export async function startInProcessAgent(kc: KubeConfig, args: string[], overrides: AgentOverrides = {}): Promise<InProcessAgent> {
  const config = parseConfig(["--metrics-bind-address", "0", "--health-probe-bind-address", "0", "--log-level", "debug", ...args], {});
  if (config === "help") throw new Error("unexpected help");
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on("data", (chunk: Buffer) => lines.push(chunk.toString("utf8")));
  const agent = await startAgent(config, kc, createLogger(config.logLevel, stream), overrides);
  return { ...agent, logs: () => lines.join("") };
}

/** One of our executables running as a child process: its output so far, and a way to stop it. */
export interface OurProcess {
  child: ChildProcess;
  output(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}
export type AgentProcess = OurProcess;
export type IssuerProcess = OurProcess;

/** The real executable, as a child process (for crash tests). Requires `npm run build`. */
export function spawnAgent(kubeconfigPath: string, args: string[]): AgentProcess {
  return watchProcess(spawn(process.execPath, [join(REPO_ROOT, "dist", "agent", "main.js"), "--kubeconfig", kubeconfigPath,
    "--metrics-bind-address", "0", "--health-probe-bind-address", "0", ...args], { stdio: ["ignore", "pipe", "pipe"] }));
}

/** Collects a child's stdout and stderr (in arrival order) and resolves stop() with its exit code. */
export function watchProcess(child: ChildProcess): OurProcess {
  const chunks: string[] = [];
  child.stdout!.on("data", (d: Buffer) => chunks.push(d.toString()));
  child.stderr!.on("data", (d: Buffer) => chunks.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return {
    child,
    output: () => chunks.join(""),
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/**
 * The agent's log lines that speak of a 403 or a Forbidden answer. Timestamps are left out (a time
 * like 02:51:34.403Z is not an error) and 403 must stand alone (not inside a serial or fingerprint).
 */
export function forbiddenInLogs(logs: string): string[] {
  return logs.split("\n").map((line) => line.replace(/"timestamp":"[^"]*"/g, "")).filter((line) => /\b403\b|[Ff]orbidden/.test(line));
}

export function newIssuedCertificate(namespace: string, name: string, o: Partial<IssuedCertificateOptions> = {}): IssuedCertificate {
  return issuedCertificate({
    name,
    namespace,
    target: { name: "cacerts", namespace },
    signingSecret: { name: "root-ca", namespace },
    ...o,
  });
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    // A shared control plane component that died is reported at once, with its log tail.
    assertSharedControlPlaneRunning();
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export function waitForState(c: Clients, namespace: string, name: string, state: IssuedCertificateState, timeoutMs = 60_000): Promise<IssuedCertificate> {
  return waitFor(`${namespace}/${name} to be ${state}`, async () => {
    const ic = await c.issued.get(namespace, name);
    return ic?.status?.state === state && ic.status.observedGeneration === ic.metadata.generation ? ic : undefined;
  }, timeoutMs);
}

/**
 * The Events about one object once one of them has `reason` (and `type`, if given). The agent writes an Event
 * after the status it goes with and does not wait for it, so a test that saw the status waits for its Event.
 */
export async function waitForEvent(c: Clients, namespace: string, name: string, reason: string, type?: string): Promise<CoreV1Event[]> {
  return waitFor(`a ${type ?? ""}${type ? " " : ""}${reason} Event about ${namespace}/${name}`, async () => {
    const events = (await c.core.listNamespacedEvent({ namespace, fieldSelector: `involvedObject.name=${name}` })).items;
    return events.some((e) => e.reason === reason && (type === undefined || e.type === type)) ? events : undefined;
  });
}

export async function getSecretOrUndefined(c: Clients, namespace: string, name: string): Promise<V1Secret | undefined> {
  try {
    return await c.core.readNamespacedSecret({ name, namespace });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export function decodeSecret(secret: V1Secret): Record<string, string> {
  return Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, "base64").toString("utf8")]));
}

/** Runs openssl with files written from the given contents; returns stdout. Throws with stderr. */
export function openssl(args: string[], files: Record<string, string> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), "cert-agent-openssl-"));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
  return execFileSync("openssl", args, { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

/** The checks an operator would run on the final secret, with the real openssl (at a given time: tests that shift clocks). */
export function opensslCheckBundle(data: Record<string, string>, at?: Date): { verify: string; keyMatches: boolean } {
  const files = { "ca-cert.pem": data["ca-cert.pem"], "ca-key.pem": data["ca-key.pem"], "root-cert.pem": data["root-cert.pem"], "cert-chain.pem": data["cert-chain.pem"] };
  const attime = at ? ["-attime", String(Math.floor(at.getTime() / 1000))] : [];
  const verify = openssl(["verify", ...attime, "-CAfile", "root-cert.pem", "ca-cert.pem"], files).trim();
  const fromKey = openssl(["pkey", "-in", "ca-key.pem", "-pubout"], files);
  const fromCert = openssl(["x509", "-in", "ca-cert.pem", "-pubkey", "-noout"], files);
  return { verify, keyMatches: fromKey === fromCert };
}

/** GET http://127.0.0.1:port/path (the agent's probe and metrics endpoints). */
export function fetchText(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: "127.0.0.1", port, path }, (res) => {
      let body = "";
      res.on("data", (d: Buffer) => (body += d.toString()));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    }).on("error", reject);
  });
}

/**
 * Everything the agent publishes about a namespace, by where it is (for findKeyMaterial in
 * e2e/key-hygiene.ts): its log, every Event's message, every IssuedCertificate's status and every
 * CertificateRequest as JSON.
 */
export async function publishedTexts(c: Clients, namespace: string, log: string): Promise<Record<string, string>> {
  const texts: Record<string, string> = { "agent log": log };
  for (const e of (await c.core.listNamespacedEvent({ namespace })).items) texts[`Event ${e.metadata?.name}`] = e.message ?? "";
  for (const ic of (await c.issued.list(namespace)).items) texts[`IssuedCertificate ${ic.metadata.name} status`] = JSON.stringify(ic.status ?? {});
  for (const cr of (await c.requests.list(namespace)).items) texts[`CertificateRequest ${cr.metadata.name}`] = JSON.stringify(cr);
  return texts;
}

/**
 * Answers the CertificateRequest `namespace/name` as the reference issuer would (its current
 * generation, FINISHED, signed by `root` for the IssuedCertificate's hosts and ttlDays, wrongly on
 * purpose with `misbehave`), with `status` overriding any field: for tests that play the issuer
 * themselves (twice, late, for an old generation, with hostile payloads). Returns the PEM it signed.
 */
export async function answerRequest(c: Clients, namespace: string, name: string, root: RootCa,
  o: { misbehave?: Misbehaviour; status?: Partial<NonNullable<CertificateRequest["status"]>> } = {}): Promise<string> {
  const cr = (await c.requests.get(namespace, name))!;
  const ic = (await c.issued.get(namespace, name))!;
  const pem = await signIntermediate({
    csrPem: decodeBytes(cr.spec?.certificateSigningRequest) ?? "",
    hosts: ic.spec?.hosts ?? [],
    ttlDays: ic.spec?.certOptions?.ttlDays ?? 0,
    root,
    misbehave: o.misbehave,
  });
  await c.requests.replaceStatus({ ...cr, status: {
    observedGeneration: cr.metadata.generation ?? 0,
    state: "FINISHED",
    // As the reference issuer: an empty answer is an absent field (proto3 JSON, and format: byte refuses "").
    ...(pem ? { signedCertificate: encodeBytes(pem) } : {}),
    signingRootCa: encodeBytes(root.certPem),
    ...o.status,
  } });
  return pem;
}

/** The reference issuer as a real process (dist/e2e/issuer/main.js; requires `npm run build`). */
export function spawnIssuer(kubeconfigPath: string, args: string[]): IssuerProcess {
  return watchProcess(spawn(process.execPath, [join(REPO_ROOT, "dist", "e2e", "issuer", "main.js"), "--kubeconfig", kubeconfigPath, ...args],
    { stdio: ["ignore", "pipe", "pipe"] }));
}

/**
 * Calls onSecret with every version of every Secret of a namespace that a watch sees, from the
 * watch's start, until stop(). Unlike a bare Watch it starts again when its connection ends (client-node
 * ends a watch after 30 s without events, and at any API-server restart), from the last version seen,
 * or from scratch once that has expired (410). Resolves once the first watch is open.
 */
export async function watchSecrets(kc: KubeConfig, namespace: string, onSecret: (type: string, secret: V1Secret) => void): Promise<{ stop(): void }> {
  let stopped = false;
  let resourceVersion: string | undefined;
  let current: AbortController | undefined;
  const reopen = () => {
    if (!stopped) setTimeout(() => void open(), 200);
  };
  const open = async (): Promise<void> => {
    try {
      current = await new Watch(kc).watch(`/api/v1/namespaces/${namespace}/secrets`, resourceVersion ? { resourceVersion } : {},
        (type: string, secret: V1Secret & { code?: number }) => {
          if (type === "ERROR") {
            if (secret.code === 410) resourceVersion = undefined;
            return;
          }
          resourceVersion = secret.metadata?.resourceVersion ?? resourceVersion;
          onSecret(type, secret);
        },
        reopen);
    } catch {
      reopen();
    }
  };
  await open();
  return { stop: () => { stopped = true; current?.abort(); } };
}

/**
 * Every version of every Secret of a namespace (watchSecrets), to count the writes of a target. It also
 * hands each to `keys` (a KeyRecorder from key-hygiene.ts), so one watch serves both.
 */
export class SecretVersions {
  private readonly seen: { name: string; data: Record<string, string> }[] = [];
  private watch?: { stop(): void };
  constructor(private readonly kc: KubeConfig, private readonly namespace: string, private readonly keys?: { add(secret: V1Secret): void }) {}
  async start(): Promise<void> {
    this.watch = await watchSecrets(this.kc, this.namespace, (type, s) => {
      this.keys?.add(s);
      if (type === "ADDED" || type === "MODIFIED") this.seen.push({ name: s.metadata!.name!, data: s.data ?? {} });
    });
  }
  stop(): void {
    this.watch?.stop();
  }
  /** The distinct contents the Secret was written with, in order. */
  contents(name: string): Record<string, string>[] {
    const out: Record<string, string>[] = [];
    for (const v of this.seen.filter((s) => s.name === name)) {
      if (out.length === 0 || JSON.stringify(out[out.length - 1]) !== JSON.stringify(v.data)) out.push(v.data);
    }
    return out;
  }
}
