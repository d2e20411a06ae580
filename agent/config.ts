// Flags and environment -> one validated Config, parsed once at start. A bad value is one clear line
// and a non-zero exit; nothing else in the agent reads process.env or argv.
import { parseArgs } from "node:util";
import { parseDuration } from "../shared/controller/backoff";
import { LOG_LEVELS, LogLevel } from "../shared/controller/logger";
import { parseBindAddress } from "../shared/controller/server";
import { STRATEGIES, Strategy } from "./bouncer/plan";
import { SERVICE_ACCOUNT_DIR } from "./kubeconfig";
import { parseRenewBefore, RenewBefore } from "./renewal";
import { ROOT_CHANGE_POLICIES, RootChangePolicy } from "./root-rotation";

export interface Config {
  /** Explicit kubeconfig path; undefined = in-cluster, then KUBECONFIG, then ~/.kube/config. */
  kubeconfig?: string;
  /** Where the in-cluster service-account files (token, ca.crt, namespace) are mounted. */
  serviceAccountDir: string;
  /** Watch one namespace; undefined = all namespaces. */
  namespace?: string;
  /**
   * The only namespaces where the agent reads and writes Secrets (staged keys, targets), one watch
   * each, so that a Role per namespace is all it needs; undefined = every namespace (one
   * cluster-wide watch, which needs a ClusterRole on Secrets).
   */
  secretNamespaces?: readonly string[];
  /** The only namespaces whose pods the bouncer watches and restarts (and whose ConfigMaps rootCertSync
   * reads), one watch each; undefined = every namespace. */
  podNamespaces?: readonly string[];
  logLevel: LogLevel;
  concurrency: number;
  metricsBindAddress: string;
  healthProbeBindAddress: string;
  leaderElect: boolean;
  leaderElectionNamespace: string;
  leaderElectionId: string;
  /** Backoff before a FAILED IssuedCertificate is retried: base doubles per failure up to max. */
  retryBaseDelayMs: number;
  retryMaxDelayMs: number;
  /** How often a waiting object is looked at again even without a watch event (safety net). */
  resyncMs: number;
  /** A certificate whose notBefore is at most this far ahead of our clock is waited for, not refused. */
  clockSkewToleranceMs: number;
  /** Deadline of one reconcile: its requests are abandoned and it is retried with backoff. */
  reconcileTimeoutMs: number;
  /** How often a foreign Secret in the agent's way is looked at again (a GET; no key is made). */
  conflictRecheckMs: number;
  /** How the pod bouncer restarts pods: rollout (no downtime), evict (PDBs respected), delete (the original's). */
  bounceStrategy: Strategy;
  /** How long ISSUED waits for the pod bouncer before FAILED. */
  bounceTimeoutMs: number;
  renewBefore: RenewBefore;
  /** /healthz fails when an informer has failed, or a controller has owed work without progress, this long. */
  stallThresholdMs: number;
  /** /statusz flags (and logs) a clock skew with the API server beyond this. */
  clockSkewWarningMs: number;
  /** What a root the target does not trust yet needs before the agent trusts it (root-rotation.ts). */
  rootChangePolicy: RootChangePolicy;
  /** How long the old roots stay in root-cert.pem after the intermediate signed by the new root is written. */
  rootOverlapMs: number;
}

interface Option {
  flag: string;
  env: string;
  type: "string" | "boolean";
  help: string;
  default?: string;
}

export const OPTIONS: Option[] = [
  { flag: "kubeconfig", env: "KUBECONFIG", type: "string", help: "kubeconfig file, must exist (without it: the KUBECONFIG list merged as kubectl does, then in-cluster, then ~/.kube/config)" },
  { flag: "namespace", env: "CERT_AGENT_NAMESPACE", type: "string", help: "watch only this namespace (default: all)" },
  { flag: "secret-namespaces", env: "CERT_AGENT_SECRET_NAMESPACES", type: "string", help: "comma-separated namespaces where Secrets are read and written (staged keys, targets); must include --namespace (default: all)" },
  { flag: "pod-namespaces", env: "CERT_AGENT_POD_NAMESPACES", type: "string", help: "comma-separated namespaces whose pods PodBounceDirectives may restart (and rootCertSync ConfigMaps are read) (default: all)" },
  { flag: "service-account-dir", env: "CERT_AGENT_SERVICE_ACCOUNT_DIR", type: "string", help: "in-cluster config: where the pod's token, ca.crt and namespace are mounted (the token file is re-read, so a rotated token is used)", default: SERVICE_ACCOUNT_DIR },
  { flag: "log-level", env: "CERT_AGENT_LOG_LEVEL", type: "string", help: "error|warn|info|debug", default: "info" },
  { flag: "concurrency", env: "CERT_AGENT_CONCURRENCY", type: "string", help: "IssuedCertificates reconciled in parallel (1-64)", default: "4" },
  { flag: "metrics-bind-address", env: "CERT_AGENT_METRICS_BIND_ADDRESS", type: "string", help: "host:port for /metrics, 0 disables", default: "127.0.0.1:8080" },
  { flag: "health-probe-bind-address", env: "CERT_AGENT_HEALTH_PROBE_BIND_ADDRESS", type: "string", help: "host:port for /healthz and /readyz, 0 disables", default: "127.0.0.1:8081" },
  { flag: "leader-elect", env: "CERT_AGENT_LEADER_ELECT", type: "boolean", help: "run only while holding a Lease (for several replicas)", default: "false" },
  { flag: "leader-election-namespace", env: "CERT_AGENT_LEADER_ELECTION_NAMESPACE", type: "string", help: "namespace of the Lease", default: "default" },
  { flag: "leader-election-id", env: "CERT_AGENT_LEADER_ELECTION_ID", type: "string", help: "name of the Lease", default: "cert-agent" },
  { flag: "retry-base-delay", env: "CERT_AGENT_RETRY_BASE_DELAY", type: "string", help: "first retry delay after FAILED (doubles each time)", default: "10s" },
  { flag: "retry-max-delay", env: "CERT_AGENT_RETRY_MAX_DELAY", type: "string", help: "cap of the retry delay", default: "10m" },
  { flag: "resync-period", env: "CERT_AGENT_RESYNC_PERIOD", type: "string", help: "re-check waiting objects this often without events", default: "5m" },
  { flag: "clock-skew-tolerance", env: "CERT_AGENT_CLOCK_SKEW_TOLERANCE", type: "string", help: "wait for a certificate whose notBefore is at most this far ahead (issuer clock ahead of ours); 0 refuses it", default: "5m" },
  { flag: "conflict-recheck-period", env: "CERT_AGENT_CONFLICT_RECHECK_PERIOD", type: "string", help: "look again this often at a foreign Secret in the way (no key is made meanwhile)", default: "30s" },
  { flag: "bounce-strategy", env: "CERT_AGENT_BOUNCE_STRATEGY", type: "string", help: "how PodBounceDirective pods are restarted: rollout|evict|delete", default: "rollout" },
  { flag: "bounce-timeout", env: "CERT_AGENT_BOUNCE_TIMEOUT", type: "string", help: "how long a pod bounce may take before the IssuedCertificate goes FAILED", default: "10m" },
  { flag: "renew-before", env: "CERT_AGENT_RENEW_BEFORE", type: "string", help: "renew this long before notAfter: a share of the lifetime (1/3, 33%) or a duration (720h, 30d); jitter moves it up to 24 h earlier", default: "1/3" },
  { flag: "reconcile-timeout", env: "CERT_AGENT_RECONCILE_TIMEOUT", type: "string", help: "deadline of one reconcile (a hung API request never holds a worker longer)", default: "1m" },
  { flag: "stall-threshold", env: "CERT_AGENT_STALL_THRESHOLD", type: "string", help: "/healthz fails when a watch has been failing, or a work queue has had work but no reconcile finished, this long", default: "10m" },
  { flag: "clock-skew-warning", env: "CERT_AGENT_CLOCK_SKEW_WARNING", type: "string", help: "/statusz and the log warn when our clock and the API server's differ by more than this", default: "1m" },
  { flag: "root-change-policy", env: "CERT_AGENT_ROOT_CHANGE_POLICY", type: "string", help: "a new root from the issuer: accept (rotate without downtime, a Warning Event) or require-approval (wait until its SHA-256 is in the IssuedCertificate's cert-agent.io/approved-root-sha256 annotation)", default: "accept" },
  { flag: "root-overlap", env: "CERT_AGENT_ROOT_OVERLAP", type: "string", help: "after a root change, how long root-cert.pem keeps the old root next to the new one (longer than the mesh's workload certificate lifetime)", default: "25h" },
];

function renewBefore(text: string): RenewBefore {
  try {
    return parseRenewBefore(text);
  } catch (err) {
    throw new ConfigError((err as Error).message);
  }
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

export function usage(): string {
  const lines = OPTIONS.map((o) => `  --${o.flag}${o.type === "string" ? " <value>" : ""}  ${o.help} [env ${o.env}${o.default !== undefined ? `, default ${o.default}` : ""}]`);
  return ["usage: cert-agent [flags]", ...lines, "  --help  print this"].join("\n");
}

/** Flags win over environment variables, which win over defaults. Throws ConfigError. */
export function parseConfig(argv: string[], env: NodeJS.ProcessEnv): Config | "help" {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: Object.fromEntries([
        ...OPTIONS.map((o) => [o.flag, { type: o.type }] as const),
        ["help", { type: "boolean" }],
      ]),
    }).values as Record<string, string | boolean | undefined>;
  } catch (err) {
    // One line: node:util joins hints with newlines.
    throw new ConfigError((err as Error).message.replace(/\s*\n\s*/g, " "));
  }
  if (parsed.help) return "help";

  const raw = (flag: string): string | undefined => {
    const option = OPTIONS.find((o) => o.flag === flag)!;
    const value = parsed[flag];
    if (value !== undefined) return String(value);
    const fromEnv = env[option.env];
    if (fromEnv !== undefined && fromEnv !== "") return fromEnv;
    return option.default;
  };

  const logLevel = raw("log-level")!;
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError(`--log-level: "${logLevel}" is not one of ${LOG_LEVELS.join(", ")}`);
  }
  const concurrency = Number(raw("concurrency"));
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw new ConfigError(`--concurrency: "${raw("concurrency")}" must be an integer from 1 to 64`);
  }
  const duration = (flag: string, allowZero = false): number => {
    try {
      const ms = parseDuration(raw(flag)!);
      if (ms < 0 || (ms === 0 && !allowZero)) throw new Error(`must be positive`);
      return ms;
    } catch (err) {
      throw new ConfigError(`--${flag}: ${(err as Error).message}`);
    }
  };
  const bind = (flag: string): string => {
    const value = raw(flag)!;
    try {
      parseBindAddress(value);
    } catch (err) {
      throw new ConfigError(`--${flag}: ${(err as Error).message}`);
    }
    return value;
  };
  const bool = (flag: string): boolean => {
    const value = raw(flag)!.toLowerCase();
    if (!["true", "false", "1", "0"].includes(value)) throw new ConfigError(`--${flag}: "${value}" is not true or false`);
    return value === "true" || value === "1";
  };

  const config: Config = {
    kubeconfig: raw("kubeconfig"),
    serviceAccountDir: raw("service-account-dir")!,
    namespace: raw("namespace"),
    secretNamespaces: namespaceList(raw("secret-namespaces")),
    podNamespaces: namespaceList(raw("pod-namespaces")),
    logLevel: logLevel as LogLevel,
    concurrency,
    metricsBindAddress: bind("metrics-bind-address"),
    healthProbeBindAddress: bind("health-probe-bind-address"),
    leaderElect: bool("leader-elect"),
    leaderElectionNamespace: raw("leader-election-namespace")!,
    leaderElectionId: raw("leader-election-id")!,
    retryBaseDelayMs: duration("retry-base-delay"),
    retryMaxDelayMs: duration("retry-max-delay"),
    resyncMs: duration("resync-period"),
    clockSkewToleranceMs: duration("clock-skew-tolerance", true),
    reconcileTimeoutMs: duration("reconcile-timeout"),
    conflictRecheckMs: duration("conflict-recheck-period"),
    bounceStrategy: raw("bounce-strategy") as Strategy,
    bounceTimeoutMs: duration("bounce-timeout"),
    renewBefore: renewBefore(raw("renew-before")!),
    stallThresholdMs: duration("stall-threshold"),
    clockSkewWarningMs: duration("clock-skew-warning"),
    rootChangePolicy: raw("root-change-policy") as RootChangePolicy,
    rootOverlapMs: duration("root-overlap", true),
  };
  if (!(ROOT_CHANGE_POLICIES as readonly string[]).includes(config.rootChangePolicy)) {
    throw new ConfigError(`--root-change-policy: "${config.rootChangePolicy}" is not one of ${ROOT_CHANGE_POLICIES.join(", ")}`);
  }
  if (!(STRATEGIES as readonly string[]).includes(config.bounceStrategy)) {
    throw new ConfigError(`--bounce-strategy: "${config.bounceStrategy}" is not one of ${STRATEGIES.join(", ")}`);
  }
  if (config.retryMaxDelayMs < config.retryBaseDelayMs) {
    throw new ConfigError(`--retry-max-delay (${raw("retry-max-delay")}) is below --retry-base-delay (${raw("retry-base-delay")})`);
  }
  if (config.namespace !== undefined && !NAMESPACE.test(config.namespace)) {
    throw new ConfigError(`--namespace: "${config.namespace}" is not a valid namespace name`);
  }
  for (const flag of ["secret-namespaces", "pod-namespaces"] as const) {
    const bad = namespaceList(raw(flag))?.find((ns) => !NAMESPACE.test(ns));
    if (bad !== undefined) throw new ConfigError(`--${flag}: "${bad}" is not a valid namespace name`);
  }
  if (config.secretNamespaces && config.namespace && !config.secretNamespaces.includes(config.namespace)) {
    throw new ConfigError(`--secret-namespaces (${config.secretNamespaces.join(",")}) must include --namespace (${config.namespace}): the staged private keys live there`);
  }
  return config;
}

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** "a, b,a" -> ["a", "b"]; undefined or blank -> undefined (every namespace). */
function namespaceList(value: string | undefined): string[] | undefined {
  const names = [...new Set((value ?? "").split(",").map((n) => n.trim()).filter(Boolean))];
  return names.length ? names : undefined;
}
