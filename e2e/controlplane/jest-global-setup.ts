// Starts ONE control plane for the whole Jest run (tests create their own namespaces in it). Workers
// inherit environment variables set here, so CERT_AGENT_TEST_KUBECONFIG reaches every test file;
// the instance itself stays on globalThis for the teardown, which runs in this same process.
// CERT_AGENT_NO_CONTROLPLANE=1 starts nothing, for quick unit-only runs.
import * as fs from "node:fs";
import * as path from "node:path";
import { startControlPlane, type ControlPlane } from "./controlplane";
import { FAILURE_FILE_ENV, KUBECONFIG_ENV, NO_CONTROLPLANE_ENV } from "./testenv-names";

export const GLOBAL_KEY = "__certAgentSharedControlPlane";

export default async function globalSetup(): Promise<void> {
  if (process.env[NO_CONTROLPLANE_ENV] === "1") return;
  const cp = await startControlPlane({
    // Also prints a component's exit (with its log tail) the moment it happens.
    log: (m) => void process.stderr.write(`\n[controlplane] ${m}\n`),
  });
  process.env[KUBECONFIG_ENV] = cp.kubeconfigPath;
  process.env[FAILURE_FILE_ENV] = recordComponentExits(cp, path.join(cp.dataDir, "component-exit.txt"));
  (globalThis as Record<string, unknown>)[GLOBAL_KEY] = cp;
}

/** Writes the first component exit's report to file (atomically: workers may read it any time), where
 * testenv's helpers find it. Returns file. */
export function recordComponentExits(cp: ControlPlane, file: string): string {
  cp.onComponentExit((failure) => {
    if (fs.existsSync(file)) return; // the first exit is the cause; later ones follow from it
    fs.writeFileSync(`${file}.tmp`, failure.message);
    fs.renameSync(`${file}.tmp`, file);
  });
  return file;
}

export function sharedControlPlaneInstance(): ControlPlane | undefined {
  return (globalThis as Record<string, unknown>)[GLOBAL_KEY] as ControlPlane | undefined;
}
