// build.sh, charts/build-helm.sh and image/build-crane.sh: one progress line per component on stderr, the Go tool's output in
// a log file in the cache, its tail only on failure, only the result's path on stdout, and a cache key
// that follows the build flags. Every run here uses its own temporary cache (CERT_AGENT_CACHE) and a
// fake `go` on the PATH (it records its arguments, prints "go: downloading" lines and writes a stub
// binary), except the failure tests that run the real Go tool with GOPROXY=off against an empty
// module cache. Nothing touches ~/.cache/cert-agent, ~/go or the Go build cache.
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { repoRoot } from "./repo";

const CONTROLPLANE_DIR = path.join(repoRoot(), "e2e", "controlplane");
const BUILD_SH = path.join(CONTROLPLANE_DIR, "build.sh");
const BUILD_HELM_SH = path.join(repoRoot(), "charts", "build-helm.sh");
const BUILD_CRANE_SH = path.join(repoRoot(), "image", "build-crane.sh");
const K8S_VERSION = fs.readFileSync(path.join(CONTROLPLANE_DIR, "K8S_VERSION"), "utf8").trim();
const KWOK_VERSION = fs.readFileSync(path.join(CONTROLPLANE_DIR, "KWOK_VERSION"), "utf8").trim();

// A stand-in for the Go tool: build -o FILE / install (GOBIN) write a stub binary, mod download -json
// answers with a go.mod; FAKE_GO_FAIL=<word> makes a call whose arguments contain <word> print 100
// numbered lines and exit 3; FAKE_GO_SLEEP delays each call (with FAKE_GO_SLEEP_ON, only those whose
// arguments contain it).
const FAKE_GO = `#!/usr/bin/env bash
echo "$*" >>"$FAKE_GO_ARGS"
echo "go: downloading example.com/dep v1.0.0" >&2
echo "go: downloading example.com/other v2.0.0" >&2
[ -n "\${FAKE_GO_SLEEP:-}" ] && [[ "$*" == *"\${FAKE_GO_SLEEP_ON:-}"* ]] && sleep "$FAKE_GO_SLEEP"
if [ -n "\${FAKE_GO_FAIL:-}" ] && [[ "$*" == *"$FAKE_GO_FAIL"* ]]; then
  for i in $(seq 1 100); do echo "fake go: error line $i" >&2; done
  exit 3
fi
stub() { printf '#!/bin/sh\\necho "stub $(basename "$0") v0.0.0-fake"\\n' >"$1"; chmod +x "$1"; }
case $1 in
  build)
    while [ $# -gt 0 ]; do [ "$1" = -o ] && stub "$2"; shift; done ;;
  install)
    last=\${*: -1}; target=\${last%@*}; stub "$GOBIN/\${target##*/}" ;;
  mod)
    printf 'module helm.sh/helm/v3\\nrequire (\\n\\tk8s.io/client-go v0.35.1\\n)\\n' >"$FAKE_GO_DIR/helm.go.mod"
    printf '{\\n\\t"Path": "helm.sh/helm/v3",\\n\\t"GoMod": "%s"\\n}\\n' "$FAKE_GO_DIR/helm.go.mod" ;;
esac
`;

interface Sandbox {
  dir: string;
  cache: string;
  argsFile: string;
  env: NodeJS.ProcessEnv;
}

let sandboxes: string[] = [];

/** A temp dir with a cache root and a fake go first on the PATH. */
function sandbox(extraEnv: NodeJS.ProcessEnv = {}): Sandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cert-agent-build-test-"));
  sandboxes.push(dir);
  const bin = path.join(dir, "bin");
  fs.mkdirSync(bin);
  fs.writeFileSync(path.join(bin, "go"), FAKE_GO, { mode: 0o755 });
  const cache = path.join(dir, "cache");
  const argsFile = path.join(dir, "go-args");
  const env = {
    PATH: `${bin}:${process.env.PATH}`,
    HOME: process.env.HOME,
    CERT_AGENT_CACHE: cache,
    FAKE_GO_ARGS: argsFile,
    FAKE_GO_DIR: dir,
    ...extraEnv,
  };
  return { dir, cache, argsFile, env };
}

/** Real go, no network, an empty module and build cache of its own. */
function realGoOffline(): Sandbox {
  const box = sandbox();
  box.env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    CERT_AGENT_CACHE: box.cache,
    GOPROXY: "off",
    GOMODCACHE: path.join(box.dir, "gomodcache"),
    GOCACHE: path.join(box.dir, "gocache"),
    GOTOOLCHAIN: "local",
  };
  return box;
}

function run(script: string, env: NodeJS.ProcessEnv): SpawnSyncReturns<string> {
  return spawnSync("bash", [script], { encoding: "utf8", env, timeout: 60_000 });
}

function lines(text: string): string[] {
  return text.split("\n").filter((l) => l !== "");
}

afterEach(() => {
  for (const dir of sandboxes) {
    // Go marks module cache directories read-only.
    spawnSync("chmod", ["-R", "u+w", dir]);
    fs.rmSync(dir, { recursive: true, force: true });
  }
  sandboxes = [];
});

describe("e2e/controlplane/build.sh", () => {
  it("shows one line per component, keeps the Go output in a log, prints only the directory on stdout", () => {
    const box = sandbox();
    const result = run(BUILD_SH, box.env);
    expect(result.stderr).not.toContain("go: downloading");
    expect(result.status).toBe(0);
    const out = result.stdout.trim();
    expect(result.stdout).toBe(`${out}\n`);
    expect(path.dirname(out)).toBe(box.cache);
    expect(path.basename(out)).toMatch(new RegExp(`^controlplane-${K8S_VERSION}-[0-9a-f]{12}$`));

    const kwokDir = path.join(box.cache, `kwok-${KWOK_VERSION}`);
    const expected: [string, string][] = [
      [`kube-apiserver ${K8S_VERSION}`, out],
      [`etcd ${K8S_VERSION}`, out],
      [`kube-controller-manager ${K8S_VERSION}`, out],
      [`kube-scheduler ${K8S_VERSION}`, out],
      [`kwok ${KWOK_VERSION}`, kwokDir],
    ];
    expect(lines(result.stderr)).toEqual(
      expected.map(([what, dest], i) => expect.stringMatching(new RegExp(`^\\[${i + 1}/5\\] ${what} -> ${dest} \\.\\.\\. built in \\d+s$`))),
    );
    for (const bin of ["kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "kwok"]) {
      expect(fs.statSync(path.join(out, bin)).mode & 0o111).not.toBe(0);
    }
    // The Go tool's own output, in the cache next to what it built.
    expect(fs.readFileSync(`${out}.log`, "utf8")).toContain("go: downloading example.com/dep v1.0.0");
    expect(fs.readFileSync(`${kwokDir}.log`, "utf8")).toContain("go: downloading example.com/dep v1.0.0");

    // Built: the directory at once, nothing on stderr, no go call.
    fs.rmSync(box.argsFile);
    const again = run(BUILD_SH, box.env);
    expect(again).toMatchObject({ status: 0, stdout: `${out}\n`, stderr: "" });
    expect(fs.existsSync(box.argsFile)).toBe(false);
  });

  it("stamps the Kubernetes version into every control-plane binary, the way Kubernetes' own build does", () => {
    const box = sandbox();
    expect(run(BUILD_SH, box.env).status).toBe(0);
    const builds = lines(fs.readFileSync(box.argsFile, "utf8")).filter((l) => l.startsWith("build "));
    expect(builds).toHaveLength(4);
    const [, minor] = /^v1\.(\d+)\./.exec(K8S_VERSION)!;
    for (const args of builds) {
      for (const pkg of ["k8s.io/component-base/version", "k8s.io/client-go/pkg/version"]) {
        expect(args).toContain(`-X ${pkg}.gitVersion=${K8S_VERSION} `);
        expect(args).toContain(`-X ${pkg}.gitMajor=1 `);
        expect(args).toContain(`-X ${pkg}.gitMinor=${minor} `);
        expect(args).toMatch(new RegExp(`-X ${pkg}\\.gitCommit=[0-9a-f]{40} `));
        expect(args).toContain(`-X ${pkg}.gitTreeState=clean `);
        // Fixed, so that two builds of the same sources are the same.
        expect(args).toMatch(new RegExp(`-X ${pkg}\\.buildDate=\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ( |$)`));
      }
    }
  });

  it("keys the cache directory by the build flags: changed flags never reuse stale binaries", () => {
    // A copy of the module's directory, so the copy of build.sh can be edited.
    const box = sandbox();
    const copy = path.join(box.dir, "controlplane");
    fs.mkdirSync(copy);
    for (const f of ["build.sh", "build-step.sh", "K8S_VERSION", "KWOK_VERSION", "go.mod", "go.sum", "cmd"]) {
      fs.cpSync(path.join(CONTROLPLANE_DIR, f), path.join(copy, f), { recursive: true });
    }
    const script = path.join(copy, "build.sh");
    const outDir = (): string => {
      const result = run(script, box.env);
      expect(result.status).toBe(0);
      return result.stdout.trim();
    };
    const original = outDir();
    const text = fs.readFileSync(script, "utf8");

    fs.writeFileSync(script, text.replace("# Builds the real", "# (a comment changed) Builds the real"));
    expect(outDir()).toBe(original);

    fs.writeFileSync(script, text.replace("gitTreeState=clean", "gitTreeState=dirty"));
    const otherFlags = outDir();
    expect(otherFlags).not.toBe(original);
    expect(path.basename(otherFlags)).toMatch(new RegExp(`^controlplane-${K8S_VERSION}-[0-9a-f]{12}$`));
  });

  it("on failure: the line says FAILED, the last 40 lines of the log follow, the exit status is the Go tool's", () => {
    const box = sandbox({ FAKE_GO_FAIL: "./cmd/kube-controller-manager" });
    const result = run(BUILD_SH, box.env);
    expect(result.status).toBe(3);
    expect(result.stdout).toBe("");
    const err = lines(result.stderr);
    expect(err[0]).toMatch(/^\[1\/5\] kube-apiserver .* built in \d+s$/);
    expect(err[1]).toMatch(/^\[2\/5\] etcd .* built in \d+s$/);
    expect(err[2]).toMatch(/^\[3\/5\] kube-controller-manager .* FAILED after \d+s \(exit 3\)$/);
    const log = err[3]!.replace(/^--- last 40 lines of (.*):$/, "$1");
    expect(log).toMatch(new RegExp(`^${box.cache}/controlplane-${K8S_VERSION}-[0-9a-f]{12}\\.log$`));
    expect(err.slice(4, 44)).toEqual(Array.from({ length: 40 }, (_, i) => `fake go: error line ${i + 61}`));
    expect(err.slice(44)).toEqual(["---"]);
    // The whole output stays in the log.
    expect(fs.readFileSync(log, "utf8")).toContain("fake go: error line 1\n");
    expect(fs.readFileSync(log, "utf8")).toContain("go: downloading example.com/dep");
  });

  it("on failure of the real Go tool (no module proxy, empty module cache): its error, from the log's tail", () => {
    const box = realGoOffline();
    const result = run(BUILD_SH, box.env);
    expect(result.status).toBe(1);
    expect(result.stdout).toBe("");
    const err = lines(result.stderr);
    expect(err[0]).toMatch(new RegExp(`^\\[1/5\\] kube-apiserver ${K8S_VERSION} -> ${box.cache}/controlplane-\\S+ \\.\\.\\. FAILED after \\d+s \\(exit 1\\)$`));
    expect(err[1]).toMatch(/^--- last 40 lines of .*\.log:$/);
    expect(result.stderr).toContain("module lookup disabled by GOPROXY=off");
    expect(err.at(-1)).toBe("---");
    expect(err.length).toBeLessThanOrEqual(43);
  });

  it("on a terminal, counts the seconds up in place on the component's line", () => {
    const box = sandbox({ FAKE_GO_SLEEP: "1.2", FAKE_GO_SLEEP_ON: "kube-apiserver" });
    // script(1) gives bash a pseudo-terminal; the typescript goes to stdout.
    const result = spawnSync("script", ["-qec", `stty cols 200; bash ${BUILD_SH} 2>&1 >/dev/null`, "/dev/null"], {
      encoding: "utf8",
      env: box.env,
      timeout: 60_000,
    });
    expect(result.status).toBe(0);
    const screen = result.stdout.replace(/\r\n/g, "\n");
    // Five lines, each rewritten with \r while its step runs.
    expect(lines(screen)).toHaveLength(5);
    const first = lines(screen)[0]!.split("\r");
    expect(first[0]).toBe("");
    expect(first[1]).toMatch(/^\[1\/5\] kube-apiserver \S+ -> \S+ \.\.\. 0s$/);
    // The last rewrite ends the line and erases what the counter left behind (ESC [ K).
    const last = first.at(-1)!;
    expect(last.endsWith("\u001b[K")).toBe(true);
    expect(last.slice(0, -3)).toMatch(/^\[1\/5\] kube-apiserver \S+ -> \S+ \.\.\. built in \d+s$/);
  });
});

describe("charts/build-helm.sh", () => {
  it("shows one line, keeps the Go output in a log, prints only the binary's path on stdout", () => {
    const box = sandbox({ HELM_VERSION: "v3.22.0" });
    const result = run(BUILD_HELM_SH, box.env);
    expect(result.status).toBe(0);
    const helm = path.join(box.cache, "helm", "v3.22.0", "helm");
    expect(result.stdout).toBe(`${helm}\n`);
    expect(lines(result.stderr)).toEqual([expect.stringMatching(new RegExp(`^\\[1/1\\] helm v3\\.22\\.0 -> ${path.dirname(helm)} \\.\\.\\. built in \\d+s$`))]);
    const log = fs.readFileSync(`${path.dirname(helm)}.log`, "utf8");
    expect(log).toContain("go: downloading example.com/dep");
    expect(log).toContain("stub helm v0.0.0-fake"); // its `helm version --short`, run after the build
    // The Kubernetes version helm assumes comes from its go.mod's client-go (v0.35.1 -> 1.35).
    expect(fs.readFileSync(box.argsFile, "utf8")).toContain("pkg/chartutil.k8sVersionMinor=35");

    const again = run(BUILD_HELM_SH, box.env);
    expect(again).toMatchObject({ status: 0, stdout: `${helm}\n`, stderr: "" });
  });

  it("on failure of the real Go tool (no module proxy): FAILED, the log's tail with Go's error, exit 1", () => {
    const box = realGoOffline();
    const result = run(BUILD_HELM_SH, { ...box.env, HELM_VERSION: "v3.22.0" });
    expect(result.status).toBe(1);
    expect(result.stdout).toBe("");
    const err = lines(result.stderr);
    expect(err[0]).toMatch(new RegExp(`^\\[1/1\\] helm v3\\.22\\.0 -> ${box.cache}/helm/v3\\.22\\.0 \\.\\.\\. FAILED after \\d+s \\(exit 1\\)$`));
    expect(err[1]).toBe(`--- last 40 lines of ${box.cache}/helm/v3.22.0.log:`);
    expect(result.stderr).toContain("module lookup disabled by GOPROXY=off");
    expect(fs.existsSync(path.join(box.cache, "helm", "v3.22.0", "helm"))).toBe(false);
  });
});

describe("image/build-crane.sh", () => {
  it("shows one line, keeps the Go output in a log, prints only the binary's path on stdout", () => {
    const box = sandbox({ CRANE_VERSION: "v0.22.1" });
    const result = run(BUILD_CRANE_SH, box.env);
    expect(result.status).toBe(0);
    const crane = path.join(box.cache, "crane", "v0.22.1", "crane");
    expect(result.stdout).toBe(`${crane}\n`);
    expect(lines(result.stderr)).toEqual([expect.stringMatching(new RegExp(`^\\[1/1\\] crane v0\\.22\\.1 -> ${path.dirname(crane)} \\.\\.\\. built in \\d+s$`))]);
    const log = fs.readFileSync(`${path.dirname(crane)}.log`, "utf8");
    expect(log).toContain("go: downloading example.com/dep");
    expect(log).toContain("stub crane v0.0.0-fake"); // its `crane version`, run after the build
    expect(fs.readFileSync(box.argsFile, "utf8")).toContain("github.com/google/go-containerregistry/cmd/crane@v0.22.1");

    const again = run(BUILD_CRANE_SH, box.env);
    expect(again).toMatchObject({ status: 0, stdout: `${crane}\n`, stderr: "" });
  });

  it("two runs at once build once, and both print the binary's path", () => {
    const box = sandbox({ CRANE_VERSION: "v0.22.1", FAKE_GO_SLEEP: "1", FAKE_GO_SLEEP_ON: "install" });
    // stdin from /dev/null: bash started with a socket on stdin reads ~/.bashrc (its rshd rule),
    // which may put the real go first on the PATH.
    const both = spawnSync("bash", ["-c", `bash "$1" >"$2/1.out" 2>&1 & bash "$1" >"$2/2.out" 2>&1 & wait`, "-", BUILD_CRANE_SH, box.dir], {
      encoding: "utf8",
      env: box.env,
      timeout: 60_000,
      stdio: ["ignore", "pipe", "pipe"],
    });
    expect(both.status).toBe(0);
    const crane = path.join(box.cache, "crane", "v0.22.1", "crane");
    for (const out of ["1.out", "2.out"]) expect(fs.readFileSync(path.join(box.dir, out), "utf8")).toMatch(new RegExp(`(^|\\n)${crane}\\n$`));
    expect(fs.readFileSync(box.argsFile, "utf8").split("\n").filter((l) => l.startsWith("install"))).toHaveLength(1);
  });

  it("on failure of the real Go tool (no module proxy): FAILED, the log's tail with Go's error, exit 1", () => {
    const box = realGoOffline();
    const result = run(BUILD_CRANE_SH, { ...box.env, CRANE_VERSION: "v0.22.1" });
    expect(result.status).toBe(1);
    expect(result.stdout).toBe("");
    const err = lines(result.stderr);
    expect(err[0]).toMatch(new RegExp(`^\\[1/1\\] crane v0\\.22\\.1 -> ${box.cache}/crane/v0\\.22\\.1 \\.\\.\\. FAILED after \\d+s \\(exit 1\\)$`));
    expect(err[1]).toBe(`--- last 40 lines of ${box.cache}/crane/v0.22.1.log:`);
    expect(result.stderr).toContain("module lookup disabled by GOPROXY=off");
    expect(fs.existsSync(path.join(box.cache, "crane", "v0.22.1", "crane"))).toBe(false);
  });
});
