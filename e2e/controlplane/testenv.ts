// Helpers for test files that use the control plane shared by the whole Jest run
// (see jest-global-setup.ts). Each test file works in namespaces of its own.
import * as k8s from "@kubernetes/client-node";
import { randomBytes } from "node:crypto";
import type { ControlPlane } from "./controlplane";
import { runKubectl, type KubectlOptions } from "./kubectl";
import { assertSharedControlPlaneRunning, sharedControlPlaneFailure } from "./shared-failure";
import { FAILURE_FILE_ENV, KUBECONFIG_ENV, NO_CONTROLPLANE_ENV } from "./testenv-names";

export { FAILURE_FILE_ENV, KUBECONFIG_ENV, NO_CONTROLPLANE_ENV };
export { assertSharedControlPlaneRunning, sharedControlPlaneFailure };

/** True when the global setup was told to start no control plane (CERT_AGENT_NO_CONTROLPLANE=1). */
export function controlPlaneDisabled(): boolean {
  return process.env[NO_CONTROLPLANE_ENV] === "1";
}

/** `describe`, or `describe.skip` when CERT_AGENT_NO_CONTROLPLANE=1 asked for a unit-only run. */
export const describeWithControlPlane: jest.Describe = controlPlaneDisabled() ? describe.skip : describe;

export interface EventuallyOptions {
  /** Default 60 s. */
  timeoutMs?: number;
  /** Pause between attempts. Default 200 ms. */
  intervalMs?: number;
  /** Whose components to watch. Default: the shared control plane. */
  controlPlane?: Pick<ControlPlane, "failure">;
}

/** Calls fn until it returns something other than undefined (a throw counts as "not yet") and returns
 * that. Fails at once, with the component's log tail, when a control plane component has exited:
 * what is awaited would then never happen, and a timeout would hide why. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined>, opts: EventuallyOptions = {}): Promise<T> {
  const { timeoutMs = 60_000, intervalMs = 200 } = opts;
  const failure = (): string | undefined =>
    opts.controlPlane ? opts.controlPlane.failure?.message : sharedControlPlaneFailure();
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    const broken = failure();
    if (broken !== undefined) throw new Error(`gave up waiting for ${what}: ${broken}`);
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}` + (last === undefined ? "" : `: ${String(last)}`));
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Path of the shared control plane's admin kubeconfig. Throws if one of its components exited. */
export function sharedKubeconfigPath(): string {
  assertSharedControlPlaneRunning();
  const file = process.env[KUBECONFIG_ENV];
  if (!file) {
    throw new Error(
      `${KUBECONFIG_ENV} is not set: no shared control plane is running. Run tests through jest.config.js ` +
        `(its globalSetup starts one)` +
        (controlPlaneDisabled() ? `, without ${NO_CONTROLPLANE_ENV}=1` : "") +
        ", or set it to an admin kubeconfig.",
    );
  }
  return file;
}

/** A KubeConfig for the shared control plane's admin user (system:masters). */
export function sharedKubeConfig(): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(sharedKubeconfigPath());
  return kc;
}

/** Runs the system kubectl against the shared control plane (admin unless opts.kubeconfig says
 * otherwise); resolves to stdout, rejects with kubectl's stderr in the message. */
export function sharedKubectl(args: string[], opts: KubectlOptions = {}): Promise<string> {
  return runKubectl(sharedKubeconfigPath(), args, opts);
}

export interface TestNamespace {
  name: string;
  /** Deletes the namespace; the controller manager then removes everything in it. Tolerates 404. */
  cleanup: () => Promise<void>;
}

/** Creates a namespace named <prefix>-<random>, unique across test files and runs. */
export async function createTestNamespace(kc: k8s.KubeConfig, prefix: string): Promise<TestNamespace> {
  assertSharedControlPlaneRunning();
  // A DNS-1123 label: lowercase alphanumerics and '-', at most 63 characters.
  const base = prefix.toLowerCase().replace(/[^a-z0-9-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 50) || "test";
  const name = `${base}-${randomBytes(4).toString("hex")}`;
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name, labels: { "cert-agent.test/namespace": "true" } } } });
  return {
    name,
    cleanup: async () => {
      try {
        await core.deleteNamespace({ name });
      } catch (e) {
        if (!(e instanceof k8s.ApiException && e.code === 404)) throw e;
      }
    },
  };
}
