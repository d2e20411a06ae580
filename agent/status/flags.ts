// `cert-agent status` flags -> one validated StatusOptions, in the style of agent/config.ts (node:util
// parseArgs, strict; one ConfigError line per mistake). Flags only, with one exception: --renew-before
// also comes from the agent's environment variable, with the agent's default, so `cert-agent status`
// run in the agent's pod computes the agent's renewal times. KUBECONFIG is read by loadKubeConfig.
import { parseArgs } from "node:util";
import { parseDuration } from "../../shared/controller/backoff";
import { ConfigError, OPTIONS } from "../config";
import { DEFAULT_RENEW_BEFORE, parseRenewBefore, type RenewBefore } from "../renewal";
import { isNamespace } from "../spec";
import { EXIT_ERROR, EXIT_OK, EXIT_PROBLEM } from "./rows";

/** The agent's own --renew-before option (its environment variable and default). */
const AGENT_RENEW_BEFORE = OPTIONS.find((o) => o.flag === "renew-before");

export const OUTPUT_FORMATS = ["table", "json", "yaml"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export interface StatusOptions {
  /** Explicit kubeconfig file; undefined = KUBECONFIG, in-cluster, ~/.kube/config (loadKubeConfig). */
  kubeconfig?: string;
  /** One namespace; undefined = the kubeconfig context's namespace (else "default"), or all with allNamespaces. */
  namespace?: string;
  allNamespaces: boolean;
  output: OutputFormat;
  renewBefore: RenewBefore;
  /** How far past its renewal time a certificate may be before it counts as a problem. */
  overdueAfterMs: number;
  /** Deadline for all the reads together; an API server that does not answer is an error, not a hang. */
  requestTimeoutMs: number;
}

export function statusUsage(): string {
  return [
    "usage: cert-agent status [flags]",
    "",
    "Shows the IssuedCertificates and what their target secrets hold, read from the API server (works",
    "while the agent is down). Never prints key material: only ca-cert.pem is parsed.",
    "",
    "  --kubeconfig <file>        kubeconfig file (without it: KUBECONFIG merged as kubectl does, then in-cluster, then ~/.kube/config)",
    "  -n, --namespace <ns>       IssuedCertificates of this namespace (default: the kubeconfig context's namespace, else default)",
    "  -A, --all-namespaces       IssuedCertificates of every namespace",
    "  -o, --output <format>      table|json|yaml (default table); json and yaml hold the same rows",
    `  --renew-before <value>     as the agent's: a share of the lifetime (1/3, 33%) or a duration (720h, 30d) [env ${AGENT_RENEW_BEFORE?.env}, default ${AGENT_RENEW_BEFORE?.default}]`,
    "  --overdue-after <duration> a certificate this far past its renewal time is overdue (default 1h; the agent renews at that time)",
    "  --request-timeout <dur>    give up reading the API server after this long (default 30s)",
    "  -h, --help                 print this",
    "",
    "Columns: NAMESPACE NAME STATE KEY (key type in the target secret, or why it cannot be shown)",
    "  NOT AFTER (of ca-cert.pem) RENEWS IN (\"243d\", \"overdue 2h\") ERROR (status.error) BOUNCE (PodBounceDirective progress)",
    "",
    "Exit codes:",
    `  ${EXIT_OK}  all is well`,
    `  ${EXIT_PROBLEM}  a certificate is FAILED, expired, or more than --overdue-after past its renewal time`,
    `  ${EXIT_ERROR}  usage error, or the API server could not be read (also when only a secret or directive could`,
    "     not be read and nothing else is wrong: the table is printed but the verdict is incomplete)",
  ].join("\n");
}

/** Throws ConfigError (exit 2) with one line saying what is wrong. */
export function parseStatusArgs(argv: string[], env: NodeJS.ProcessEnv = {}): StatusOptions | "help" {
  let values;
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        kubeconfig: { type: "string" },
        namespace: { type: "string", short: "n" },
        "all-namespaces": { type: "boolean", short: "A" },
        output: { type: "string", short: "o" },
        "renew-before": { type: "string" },
        "overdue-after": { type: "string" },
        "request-timeout": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (err) {
    // One line: node:util joins hints with newlines.
    throw new ConfigError((err as Error).message.replace(/\s*\n\s*/g, " "));
  }
  if (values.help) return "help";

  // kubectl lets -A win silently; a script that passes both most likely has a bug, so say so.
  if (values["all-namespaces"] && values.namespace !== undefined) {
    throw new ConfigError("--namespace and --all-namespaces exclude each other");
  }
  if (values.namespace !== undefined && !isNamespace(values.namespace)) {
    throw new ConfigError(`--namespace: "${values.namespace}" is not a valid namespace name`);
  }
  const output = values.output ?? "table";
  if (!(OUTPUT_FORMATS as readonly string[]).includes(output)) {
    throw new ConfigError(`--output: "${output}" is not one of ${OUTPUT_FORMATS.join(", ")}`);
  }
  const fromEnv = AGENT_RENEW_BEFORE && env[AGENT_RENEW_BEFORE.env] ? AGENT_RENEW_BEFORE.env : undefined;
  const renewBeforeText = values["renew-before"] ?? (fromEnv && env[fromEnv]) ?? AGENT_RENEW_BEFORE?.default;
  let renewBefore = DEFAULT_RENEW_BEFORE;
  if (renewBeforeText !== undefined) {
    try {
      renewBefore = parseRenewBefore(renewBeforeText);
    } catch (err) {
      const source = values["renew-before"] === undefined && fromEnv ? ` (from ${fromEnv})` : "";
      throw new ConfigError(`${(err as Error).message}${source}`);
    }
  }
  const duration = (flag: "overdue-after" | "request-timeout", fallback: string, allowZero: boolean): number => {
    try {
      const ms = parseDuration(values[flag] ?? fallback);
      if (ms === 0 && !allowZero) throw new Error("must be positive");
      return ms;
    } catch (err) {
      throw new ConfigError(`--${flag}: ${(err as Error).message}`);
    }
  };
  return {
    kubeconfig: values.kubeconfig,
    namespace: values.namespace,
    allNamespaces: values["all-namespaces"] === true,
    output: output as OutputFormat,
    renewBefore,
    overdueAfterMs: duration("overdue-after", "1h", true),
    requestTimeoutMs: duration("request-timeout", "30s", false),
  };
}
