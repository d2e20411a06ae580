// `cert-agent status`: flags -> kubeconfig -> gather (API reads) -> rows (pure) -> format -> exit code.
// Everything that can go wrong before the rows exist is one line on stderr and exit 2.
import type { KubeConfig } from "@kubernetes/client-node";
import { loadKubeConfig } from "../kubeconfig";
import { formatReport } from "./format";
import { parseStatusArgs, statusUsage } from "./flags";
import { apiReaders, gather, type StatusReaders } from "./gather";
import { EXIT_ERROR, EXIT_OK, statusReport } from "./rows";

export interface StatusIo {
  /** Read for CERT_AGENT_RENEW_BEFORE only (flags.ts); KUBECONFIG is read by loadKubeConfig. */
  env: NodeJS.ProcessEnv;
  /** Resolves once written, so the caller may exit right after without cutting the output short. */
  stdout(text: string): Promise<void>;
  stderr(text: string): void;
  now(): Date;
  /** The API readers for a kubeconfig; tests may substitute their own. */
  readers(kc: KubeConfig): StatusReaders;
}

const write = (stream: NodeJS.WriteStream) => (text: string) =>
  new Promise<void>((resolve, reject) => stream.write(text, (err) => (err ? reject(err) : resolve())));

export const processIo: StatusIo = {
  env: process.env,
  stdout: write(process.stdout),
  stderr: (text) => void process.stderr.write(text),
  now: () => new Date(),
  readers: apiReaders,
};

/** kubectl's default: the current context's namespace, else "default". */
export function contextNamespace(kc: KubeConfig): string {
  return kc.getContextObject(kc.getCurrentContext())?.namespace || "default";
}

/** Returns the exit code; never throws (a bug is reported as exit 2, never mistaken for a verdict). */
export async function runStatus(argv: string[], io: StatusIo = processIo): Promise<number> {
  const fail = (message: string) => {
    io.stderr(`cert-agent status: ${message}\n`);
    return EXIT_ERROR;
  };
  try {
    const options = parseStatusArgs(argv, io.env);
    if (options === "help") {
      await io.stdout(statusUsage() + "\n");
      return EXIT_OK;
    }
    let kc: KubeConfig;
    try {
      kc = loadKubeConfig(options.kubeconfig);
    } catch (err) {
      return fail((err as Error).message);
    }
    const namespace = options.allNamespaces ? undefined : (options.namespace ?? contextNamespace(kc));
    const inputs = await withDeadline(gather(io.readers(kc), namespace), options.requestTimeoutMs,
      `no answer from the API server ${kc.getCurrentCluster()?.server ?? ""} within --request-timeout (${options.requestTimeoutMs} ms)`);
    const report = await statusReport(inputs, { now: io.now(), renewBefore: options.renewBefore, overdueAfterMs: options.overdueAfterMs });

    if (options.output !== "table") {
      await io.stdout(formatReport(report, options.output));
    } else if (report.rows.length === 0) {
      // kubectl's wording, on stderr, so that stdout stays empty for a script counting lines.
      io.stderr(`No IssuedCertificates found${namespace === undefined ? "" : ` in ${namespace} namespace`}.\n`);
    } else {
      await io.stdout(formatReport(report, "table"));
      // The table says what; this says why the exit code is not 0.
      const flagged = report.rows.filter((r) => r.problems.length > 0);
      if (flagged.length > 0) {
        io.stderr(`cert-agent status: ${flagged.length} of ${report.rows.length} need attention: ` +
          `${flagged.map((r) => `${r.namespace}/${r.name} (${r.problems.join(", ")})`).join(", ")}\n`);
      }
    }
    if (report.exitCode === EXIT_ERROR) io.stderr("cert-agent status: some secrets or directives could not be read; the verdict is incomplete\n");
    return report.exitCode;
  } catch (err) {
    // A ConfigError (usage), a StatusReadError (the LIST), the deadline, or a bug: all exit 2.
    return fail(err instanceof Error ? err.message : String(err));
  }
}

async function withDeadline<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)));
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
