// Defect 8: KUBECONFIG won over in-cluster config (contrary to the README) and a colon-separated
// KUBECONFIG list exited 2. loadKubeConfig follows controller-runtime's GetConfig / kubectl instead.
// Every input is a temporary file or directory: no cluster is needed.
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { loadKubeConfig } from "./kubeconfig";

let dir: string;
let home: string;
let serviceAccountDir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "kubeconfig-test-"));
  home = join(dir, "home");
  mkdirSync(home);
  serviceAccountDir = join(dir, "serviceaccount");
  mkdirSync(serviceAccountDir);
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface FileSpec {
  clusters?: Record<string, string>; // name -> server
  users?: Record<string, string>; // name -> token
  contexts?: Record<string, [cluster: string, user: string]>;
  current?: string;
}

/** Writes a kubeconfig (JSON is YAML) and returns its path. */
function kubeconfigFile(name: string, spec: FileSpec): string {
  const file = join(dir, name);
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: "v1",
      kind: "Config",
      clusters: Object.entries(spec.clusters ?? {}).map(([n, server]) => ({ name: n, cluster: { server } })),
      users: Object.entries(spec.users ?? {}).map(([n, token]) => ({ name: n, user: { token } })),
      contexts: Object.entries(spec.contexts ?? {}).map(([n, [cluster, user]]) => ({ name: n, context: { cluster, user } })),
      ...(spec.current ? { "current-context": spec.current } : {}),
    }),
  );
  return file;
}

/** One-cluster kubeconfig whose server names the file, so a test can see which file won. */
function single(name: string): string {
  return kubeconfigFile(name, {
    clusters: { c: `https://${name}.example:6443` },
    users: { u: `token-${name}` },
    contexts: { ctx: ["c", "u"] },
    current: "ctx",
  });
}

function mountServiceAccount(): void {
  writeFileSync(join(serviceAccountDir, "token"), "sa-token");
  writeFileSync(join(serviceAccountDir, "ca.crt"), "not read by these tests");
  writeFileSync(join(serviceAccountDir, "namespace"), "cert-agent-system\n");
}

const IN_CLUSTER_ENV = { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" };

describe("loadKubeConfig (defect 8: kubectl's order and KUBECONFIG lists)", () => {
  it("uses the --kubeconfig file over KUBECONFIG, in-cluster and ~/.kube/config", () => {
    mountServiceAccount();
    const kc = loadKubeConfig(single("flag"), {
      env: { HOME: home, KUBECONFIG: single("env"), ...IN_CLUSTER_ENV },
      serviceAccountDir,
    });
    expect(kc.getCurrentCluster()?.server).toBe("https://flag.example:6443");
  });

  it("refuses a --kubeconfig file that does not exist (no fallback)", () => {
    mountServiceAccount();
    expect(() =>
      loadKubeConfig(join(dir, "missing"), { env: { HOME: home, ...IN_CLUSTER_ENV }, serviceAccountDir }),
    ).toThrow(`--kubeconfig: file ${join(dir, "missing")} does not exist`);
  });

  it("uses KUBECONFIG over in-cluster config when the flag is absent", () => {
    mountServiceAccount();
    const kc = loadKubeConfig(undefined, { env: { HOME: home, KUBECONFIG: single("env"), ...IN_CLUSTER_ENV }, serviceAccountDir });
    expect(kc.getCurrentCluster()?.server).toBe("https://env.example:6443");
  });

  it("takes a path equal to KUBECONFIG (how main.ts passes config.kubeconfig) as the KUBECONFIG list", () => {
    const list = [single("a"), single("b")].join(delimiter);
    const kc = loadKubeConfig(list, { env: { HOME: home, KUBECONFIG: list }, serviceAccountDir });
    expect(kc.getCurrentCluster()?.server).toBe("https://a.example:6443");
  });

  it("merges a colon-separated KUBECONFIG list with the first file winning, and does not fail", () => {
    const first = kubeconfigFile("first", {
      clusters: { shared: "https://first.example", onlyFirst: "https://only-first.example" },
      users: { u: "token-first" },
      contexts: { dev: ["shared", "u"] },
      current: "dev",
    });
    const second = kubeconfigFile("second", {
      clusters: { shared: "https://second.example", onlySecond: "https://only-second.example" },
      users: { u: "token-second", u2: "token-u2" },
      contexts: { dev: ["onlySecond", "u2"], prod: ["onlySecond", "u2"] },
      current: "prod",
    });
    const kc = loadKubeConfig(undefined, { env: { HOME: home, KUBECONFIG: `${first}${delimiter}${second}` }, serviceAccountDir });
    expect(kc.getCurrentContext()).toBe("dev"); // the first current-context wins
    expect(kc.getCurrentCluster()?.server).toBe("https://first.example");
    expect(kc.getCurrentUser()?.token).toBe("token-first");
    expect(kc.getCluster("shared")?.server).toBe("https://first.example");
    expect(kc.getUser("u")?.token).toBe("token-first");
    expect(kc.getContextObject("dev")).toMatchObject({ cluster: "shared", user: "u" });
    // What only the second file defines is there too.
    expect(kc.getCluster("onlyFirst")?.server).toBe("https://only-first.example");
    expect(kc.getCluster("onlySecond")?.server).toBe("https://only-second.example");
    expect(kc.getUser("u2")?.token).toBe("token-u2");
    expect(kc.getContextObject("prod")).toMatchObject({ cluster: "onlySecond", user: "u2" });
    expect(kc.getClusters()).toHaveLength(3);
  });

  it("takes current-context from a later file when earlier ones set none", () => {
    const noCurrent = kubeconfigFile("no-current", { clusters: { c: "https://c.example" }, users: { u: "t" }, contexts: { x: ["c", "u"] } });
    const withCurrent = kubeconfigFile("with-current", { current: "x" });
    const kc = loadKubeConfig(undefined, { env: { HOME: home, KUBECONFIG: [noCurrent, withCurrent].join(delimiter) }, serviceAccountDir });
    expect(kc.getCurrentCluster()?.server).toBe("https://c.example");
  });

  it("skips files in the KUBECONFIG list that do not exist, and empty entries", () => {
    const list = ["", join(dir, "missing-1"), single("present"), join(dir, "missing-2"), ""].join(delimiter);
    const kc = loadKubeConfig(undefined, { env: { HOME: home, KUBECONFIG: list }, serviceAccountDir });
    expect(kc.getCurrentCluster()?.server).toBe("https://present.example:6443");
  });

  it.each([
    ["an empty", ""],
    ["a blank (whitespace only)", "\n  \n"],
  ])("reads %s file in the KUBECONFIG list as an empty config, as kubectl does", (_what, content) => {
    const empty = join(dir, "empty");
    writeFileSync(empty, content);
    const kc = loadKubeConfig(undefined, { env: { HOME: home, KUBECONFIG: [empty, single("after-empty")].join(delimiter) }, serviceAccountDir });
    expect(kc.getCurrentCluster()?.server).toBe("https://after-empty.example:6443");
  });

  it("fails when no file of a set KUBECONFIG exists, without falling back to in-cluster", () => {
    mountServiceAccount();
    const list = [join(dir, "missing-1"), join(dir, "missing-2")].join(delimiter);
    expect(() => loadKubeConfig(undefined, { env: { HOME: home, KUBECONFIG: list, ...IN_CLUSTER_ENV }, serviceAccountDir })).toThrow(
      `KUBECONFIG=${list}: none of these files exists`,
    );
  });

  it("uses the in-cluster config when KUBECONFIG is unset, even with a ~/.kube/config", () => {
    mountServiceAccount();
    mkdirSync(join(home, ".kube"));
    writeFileSync(join(home, ".kube", "config"), JSON.stringify({ clusters: [{ name: "h", cluster: { server: "https://home.example" } }] }));
    const kc = loadKubeConfig(undefined, { env: { HOME: home, ...IN_CLUSTER_ENV }, serviceAccountDir });
    // The names client-node's loadFromCluster() uses; the CA is verified, never skipped.
    expect(kc.getCurrentCluster()).toEqual({
      name: "inCluster",
      server: "https://10.96.0.1:443",
      caFile: join(serviceAccountDir, "ca.crt"),
      skipTLSVerify: false,
    });
    expect(kc.getCurrentUser()).toEqual({ name: "inClusterUser", authProvider: { name: "tokenFile", config: { tokenFile: join(serviceAccountDir, "token") } } });
    expect(kc.getCurrentContext()).toBe("inClusterContext");
    expect(kc.getContextObject("inClusterContext")).toEqual({ name: "inClusterContext", cluster: "inCluster", user: "inClusterUser", namespace: "cert-agent-system" });
  });

  it("treats an empty KUBECONFIG as unset", () => {
    mountServiceAccount();
    const kc = loadKubeConfig(undefined, { env: { HOME: home, KUBECONFIG: "", ...IN_CLUSTER_ENV }, serviceAccountDir });
    expect(kc.getCurrentCluster()?.server).toBe("https://10.96.0.1:443");
  });

  it("brackets an IPv6 service host", () => {
    mountServiceAccount();
    const kc = loadKubeConfig(undefined, { env: { HOME: home, KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" }, serviceAccountDir });
    expect(kc.getCurrentCluster()?.server).toBe("https://[fd00::1]:443");
  });

  it("is not in-cluster without the token file, and falls back to ~/.kube/config", () => {
    mkdirSync(join(home, ".kube"));
    writeFileSync(
      join(home, ".kube", "config"),
      JSON.stringify({
        clusters: [{ name: "h", cluster: { server: "https://home.example" } }],
        users: [{ name: "u", user: { token: "t" } }],
        contexts: [{ name: "c", context: { cluster: "h", user: "u" } }],
        "current-context": "c",
      }),
    );
    const kc = loadKubeConfig(undefined, { env: { HOME: home, ...IN_CLUSTER_ENV }, serviceAccountDir });
    expect(kc.getCurrentCluster()?.server).toBe("https://home.example");
  });

  it("says what it tried when nothing is configured", () => {
    expect(() => loadKubeConfig(undefined, { env: { HOME: home }, serviceAccountDir })).toThrow(
      `no Kubernetes cluster configured: pass --kubeconfig, set KUBECONFIG, run in a pod ` +
        `(KUBERNETES_SERVICE_HOST and ${join(serviceAccountDir, "token")}) or create ${join(home, ".kube", "config")}`,
    );
  });

  it.each<[string, FileSpec, string]>([
    ["no current-context", { clusters: { c: "https://c.example" } }, "no current-context set"],
    ["a current context naming a cluster that is not defined", { clusters: { c: "https://c.example" }, users: { u: "t" }, contexts: { ctx: ["elsewhere", "u"] }, current: "ctx" },
      'current context "ctx" does not name a cluster defined there'],
    ["a current context that is not defined", { clusters: { c: "https://c.example" }, current: "ghost" }, 'current context "ghost" does not name a cluster defined there'],
  ])("says which source lacks a usable current context: %s", (_what, spec, why) => {
    const file = kubeconfigFile("no-context", spec);
    expect(() => loadKubeConfig(file, { env: { HOME: home }, serviceAccountDir })).toThrow(`--kubeconfig ${file}: ${why}`);
  });

  it("takes an empty --kubeconfig as absent, not as a file that does not exist", () => {
    const kc = loadKubeConfig("", { env: { HOME: home, KUBECONFIG: single("env") }, serviceAccountDir });
    expect(kc.getCurrentCluster()?.server).toBe("https://env.example:6443");
  });

  it("names KUBECONFIG, not --kubeconfig, in an error about a path equal to KUBECONFIG (main.ts passes it on)", () => {
    const file = kubeconfigFile("no-context", { clusters: { c: "https://c.example" } });
    expect(() => loadKubeConfig(file, { env: { HOME: home, KUBECONFIG: file }, serviceAccountDir })).toThrow(`KUBECONFIG=${file}: no current-context set`);
  });
});
