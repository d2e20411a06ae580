// Runs the system kubectl against a given kubeconfig. KUBECONFIG is blanked so that nothing from the
// developer's environment (their real clusters!) can leak into a test's kubectl call.
import { execFile } from "node:child_process";

export interface KubectlOptions {
  /** Written to kubectl's stdin (e.g. for `apply -f -`). */
  input?: string;
  /** Use this kubeconfig instead of the default one of the caller. */
  kubeconfig?: string;
  timeoutMs?: number;
}

/** Resolves to kubectl's stdout; rejects with an Error whose message includes kubectl's stderr. */
export function runKubectl(kubeconfig: string, args: string[], opts: KubectlOptions = {}): Promise<string> {
  const argv = ["--kubeconfig", opts.kubeconfig ?? kubeconfig, ...args];
  return new Promise((resolve, reject) => {
    const child = execFile(
      "kubectl",
      argv,
      { timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, KUBECONFIG: "" } },
      (err, stdout, stderr) => {
        if (err) reject(new Error(`kubectl ${args.join(" ")} failed: ${err.message.split("\n")[0]}\n${stderr}`));
        else resolve(stdout);
      },
    );
    child.stdin?.end(opts.input ?? "");
  });
}
