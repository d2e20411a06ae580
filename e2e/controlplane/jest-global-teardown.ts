// Stops the control plane the global setup started (no-op when none was started). If one of its
// components exited during the run, the run fails with that report even when no test noticed.
import { GLOBAL_KEY, sharedControlPlaneInstance } from "./jest-global-setup";

export default async function globalTeardown(): Promise<void> {
  const cp = sharedControlPlaneInstance();
  if (!cp) return;
  await cp.stop();
  delete (globalThis as Record<string, unknown>)[GLOBAL_KEY];
  if (cp.failure) throw new Error(`the shared control plane broke during the run: ${cp.failure.message}`);
}
