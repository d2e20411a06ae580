// Finds kube-apiserver, etcd, kube-controller-manager, kube-scheduler and kwok. build.sh owns building
// and caching them; it prints the cache directory as its last stdout line (instantly when already built).
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { repoRoot } from "./repo";

export const BINARIES = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"] as const;
export type BinaryName = (typeof BINARIES)[number];

export const BIN_DIR_ENV = "CERT_AGENT_CONTROLPLANE_BIN";

/** opts.binDir, else $CERT_AGENT_CONTROLPLANE_BIN, else whatever build.sh prints. */
export async function resolveBinDir(binDir?: string, needed: readonly BinaryName[] = BINARIES): Promise<string> {
  const dir = binDir ?? process.env[BIN_DIR_ENV] ?? (await runBuildScript(path.join(repoRoot(), "e2e", "controlplane", "build.sh")));
  const missing = needed.filter((b) => !isExecutable(path.join(dir, b)));
  if (missing.length > 0) {
    throw new Error(`control-plane binaries missing in ${dir}: ${missing.join(", ")} (run: bash e2e/controlplane/build.sh)`);
  }
  return dir;
}

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Runs one of our build scripts (which build once and cache) and resolves with the directory it prints last. */
export function runBuildScript(script: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // stderr passes through: a cold build takes minutes and its progress lines say so.
    const child = spawn("bash", [script], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (out += d));
    child.on("error", reject);
    child.on("close", (code) => {
      const last = out.trim().split("\n").pop()?.trim() ?? "";
      if (code !== 0 || last === "") reject(new Error(`${script} failed (exit ${code}): ${out.trim()}`));
      else resolve(last);
    });
  });
}
