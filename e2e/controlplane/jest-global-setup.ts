// Starts ONE control plane for the whole Jest run (tests create their own namespaces in it). Workers
// inherit environment variables set here, so CERT_AGENT_TEST_KUBECONFIG reaches every test file;
// the instance itself stays on globalThis for the teardown, which runs in this same process.
// CERT_AGENT_NO_CONTROLPLANE=1 starts nothing, for quick unit-only runs.
import { startControlPlane, type ControlPlane } from "./controlplane";
import { KUBECONFIG_ENV, NO_CONTROLPLANE_ENV } from "./testenv-names";

export const GLOBAL_KEY = "__certAgentSharedControlPlane";

export default async function globalSetup(): Promise<void> {
  if (process.env[NO_CONTROLPLANE_ENV] === "1") return;
  const cp = await startControlPlane({
    log: (m) => void process.stderr.write(`\n[controlplane] ${m}\n`),
  });
  process.env[KUBECONFIG_ENV] = cp.kubeconfigPath;
  (globalThis as Record<string, unknown>)[GLOBAL_KEY] = cp;
}

export function sharedControlPlaneInstance(): ControlPlane | undefined {
  return (globalThis as Record<string, unknown>)[GLOBAL_KEY] as ControlPlane | undefined;
}
