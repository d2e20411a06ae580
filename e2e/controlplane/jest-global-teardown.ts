// Stops the control plane the global setup started (no-op when none was started).
import { GLOBAL_KEY, sharedControlPlaneInstance } from "./jest-global-setup";

export default async function globalTeardown(): Promise<void> {
  const cp = sharedControlPlaneInstance();
  if (!cp) return;
  await cp.stop();
  delete (globalThis as Record<string, unknown>)[GLOBAL_KEY];
}
