// The parts of e2e/istiod that need no istiod: the kubelet-style atomic write of the projected
// cacerts, istiod's log and metrics parsing, and build.sh (with a fake `go` on the PATH and a cache of
// its own: nothing touches ~/.cache/cert-agent or the Go caches).
import { spawn, spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { repoRoot } from "../controlplane/repo";
import { atomicWrite, metricSample, parseIstiodLog } from "./istiod";

const tmpDirs: string[] = [];
function tmp(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const d of tmpDirs) fs.rmSync(d, { recursive: true, force: true });
});

describe("atomicWrite (the kubelet's Secret volume update)", () => {
  const read = (dir: string, name: string): string => fs.readFileSync(path.join(dir, name), "utf8");
  const hidden = (dir: string): string[] => fs.readdirSync(dir).filter((n) => n.startsWith("..")).sort();

  it("puts the files behind ..data and the names as symlinks through it", () => {
    const dir = tmp("cert-agent-atomic-");
    const ts = atomicWrite(dir, { "ca-cert.pem": Buffer.from("A1"), "root-cert.pem": Buffer.from("R") });
    expect(ts).toMatch(/^\.\.\d{4}_\d\d_\d\d_\d\d_\d\d_\d\d\.\d{3}\./);
    expect(fs.readlinkSync(path.join(dir, "..data"))).toBe(ts);
    expect(fs.readlinkSync(path.join(dir, "ca-cert.pem"))).toBe(path.join("..data", "ca-cert.pem"));
    expect(read(dir, "ca-cert.pem")).toBe("A1");
    expect(read(dir, "root-cert.pem")).toBe("R");
    expect(hidden(dir)).toEqual(["..data", ts].sort());
    expect(fs.statSync(path.join(dir, ts, "ca-cert.pem")).mode & 0o777).toBe(0o644);
  });

  it("swaps the whole set at once: changed, added and removed names, the old directory gone", () => {
    const dir = tmp("cert-agent-atomic-");
    const first = atomicWrite(dir, { a: Buffer.from("1"), b: Buffer.from("2") });
    const linkBefore = fs.lstatSync(path.join(dir, "a")).ino;
    const second = atomicWrite(dir, { a: Buffer.from("1'"), c: Buffer.from("3") });
    expect(second).not.toBe(first);
    expect(fs.readlinkSync(path.join(dir, "..data"))).toBe(second);
    expect(read(dir, "a")).toBe("1'");
    expect(read(dir, "c")).toBe("3");
    expect(fs.existsSync(path.join(dir, "b"))).toBe(false);
    expect(fs.existsSync(path.join(dir, first))).toBe(false);
    // The visible name is the same symlink as before: only ..data moved (what the kubelet does).
    expect(fs.lstatSync(path.join(dir, "a")).ino).toBe(linkBefore);
    expect(hidden(dir)).toEqual(["..data", second].sort());
  });
});

describe("istiod's log and metrics", () => {
  it("parses log lines with and without a scope, skipping other text", () => {
    const lines = parseIstiodLog([
      "=== 2026-11-28T21:00:00.000Z starting: env ... pilot-discovery discovery",
      "2026-11-28T21:00:01.123456Z\tinfo\tUse local CA certificate",
      "2026-11-28T21:00:02.5Z\twarn\tklog\tsomething\twith tabs",
      "FLAG: --foo=\"bar\"",
    ].join("\n"));
    expect(lines).toEqual([
      { time: new Date("2026-11-28T21:00:01.123456Z"), level: "info", message: "Use local CA certificate" },
      { time: new Date("2026-11-28T21:00:02.5Z"), level: "warn", message: "klog\tsomething\twith tabs" },
    ]);
  });

  it("reads a metric's first sample by exact name, with or without labels", () => {
    const text = [
      "# HELP citadel_server_cert_chain_expiry_timestamp The unix timestamp...",
      "# TYPE citadel_server_cert_chain_expiry_timestamp gauge",
      "citadel_server_cert_chain_expiry_timestamp 1.798675223e+09",
      "citadel_server_root_cert_expiry_timestamp_x 5",
      'citadel_server_root_cert_expiry_timestamp{otel_scope_name="citadel"} 2095286400',
    ].join("\n");
    expect(metricSample(text, "citadel_server_cert_chain_expiry_timestamp")).toBe(1798675223);
    expect(metricSample(text, "citadel_server_root_cert_expiry_timestamp")).toBe(2095286400);
    expect(metricSample(text, "citadel_server_cert_chain_expiry")).toBeUndefined();
  });
});

// A stand-in for the Go tool: install writes a stub $GOBIN/<name>; `mod download -json` names a module
// directory holding the CRD file unless FAKE_GO_NO_CRDS is set; every call is recorded; FAKE_GO_SLEEP
// slows installs down (to overlap two builds).
const FAKE_GO = `#!/usr/bin/env bash
echo "$*" >>"$FAKE_GO_ARGS"
case $1 in
  install)
    [ -n "\${FAKE_GO_SLEEP:-}" ] && sleep "$FAKE_GO_SLEEP"
    echo "go: downloading istio.io/istio v0.0.0-fake" >&2
    last=\${*: -1}; target=\${last%@*}
    printf '#!/bin/sh\\necho stub\\n' >"$GOBIN/\${target##*/}"; chmod +x "$GOBIN/\${target##*/}" ;;
  mod)
    mkdir -p "$FAKE_GO_DIR/istio/manifests/charts/base/files"
    [ -z "\${FAKE_GO_NO_CRDS:-}" ] && echo "kind: CustomResourceDefinition" >"$FAKE_GO_DIR/istio/manifests/charts/base/files/crd-all.gen.yaml"
    printf '{\\n\\t"Path": "istio.io/istio",\\n\\t"Dir": "%s",\\n\\t"Sum": "h1:x"\\n}\\n' "$FAKE_GO_DIR/istio" ;;
esac
`;

describe("e2e/istiod/build.sh", () => {
  const script = path.join(repoRoot(), "e2e", "istiod", "build.sh");
  const version = fs.readFileSync(path.join(repoRoot(), "e2e", "istiod", "ISTIO_VERSION"), "utf8").trim();

  function sandbox(extra: NodeJS.ProcessEnv = {}): { env: NodeJS.ProcessEnv; cache: string; args: string } {
    const dir = tmp("cert-agent-istiod-build-");
    fs.mkdirSync(path.join(dir, "bin"));
    fs.writeFileSync(path.join(dir, "bin", "go"), FAKE_GO, { mode: 0o755 });
    const env = {
      ...process.env,
      PATH: `${path.join(dir, "bin")}:${process.env.PATH}`,
      CERT_AGENT_CACHE: path.join(dir, "cache"),
      FAKE_GO_ARGS: path.join(dir, "go-args"),
      FAKE_GO_DIR: dir,
      ...extra,
    };
    return { env, cache: path.join(dir, "cache"), args: path.join(dir, "go-args") };
  }
  const calls = (file: string): string[] => (fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n") : []);

  it("builds pilot-discovery with the pinned version, copies the CRDs, prints only the directory; a second run builds nothing", () => {
    const box = sandbox();
    const out = path.join(box.cache, `istiod-${version}`);
    const first = spawnSync("bash", [script], { env: box.env, encoding: "utf8" });
    expect(first.status).toBe(0);
    expect(first.stdout).toBe(`${out}\n`);
    expect(first.stderr).toMatch(new RegExp(`^\\[1/2\\] pilot-discovery ${version} -> .* built in \\d+s\\n\\[2/2\\] Istio CRDs \\(crd-all.gen.yaml\\) -> .* built in \\d+s\\n$`));
    expect(calls(box.args)[0]).toBe(`install -trimpath -ldflags -s -w istio.io/istio/pilot/cmd/pilot-discovery@${version}`);
    expect(calls(box.args)[1]).toBe(`mod download -json istio.io/istio@${version}`);
    expect(fs.statSync(path.join(out, "pilot-discovery")).mode & 0o111).not.toBe(0);
    expect(fs.readFileSync(path.join(out, "crd-all.gen.yaml"), "utf8")).toBe("kind: CustomResourceDefinition\n");
    expect(fs.readFileSync(`${out}.log`, "utf8")).toContain("go: downloading istio.io/istio");

    const second = spawnSync("bash", [script], { env: box.env, encoding: "utf8" });
    expect([second.status, second.stdout, second.stderr]).toEqual([0, `${out}\n`, ""]);
    expect(calls(box.args)).toHaveLength(2);
  });

  it("fails, leaving nothing that counts as built, when the module has no CRD file", () => {
    const box = sandbox({ FAKE_GO_NO_CRDS: "1" });
    const run = spawnSync("bash", [script], { env: box.env, encoding: "utf8" });
    expect(run.status).not.toBe(0);
    expect(run.stdout).toBe("");
    expect(run.stderr).toMatch(/\[2\/2\] Istio CRDs .* FAILED after \d+s \(exit 1\)/);
    expect(run.stderr).toContain("no manifests/charts/base/files/crd-all.gen.yaml in istio.io/istio@");
    expect(fs.existsSync(path.join(box.cache, `istiod-${version}`))).toBe(false);
  });

  it("two runs at once build once, and both print the directory", async () => {
    const box = sandbox({ FAKE_GO_SLEEP: "1" });
    const run = () => new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const child = spawn("bash", [script], { env: box.env });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      child.on("close", (code) => resolve({ code, stdout, stderr }));
    });
    const [a, b] = await Promise.all([run(), run()]);
    const out = `${path.join(box.cache, `istiod-${version}`)}\n`;
    expect([a.code, a.stdout, b.code, b.stdout]).toEqual([0, out, 0, out]);
    expect(calls(box.args).filter((l) => l.startsWith("install"))).toHaveLength(1);
    expect(a.stderr + b.stderr).toContain("waiting for another build of");
  });
});
