// `npm run demo` as a user runs it: the built dist/e2e/demo.js as a real child process with its own
// control plane (with KWOK nodes, unless --no-bounce). Checks what it prints (the transitions, and the pod
// bounce: istiod, the gateway, the workload restarted in that order), the files it writes, that it never
// prints key material, and that nothing it started outlives it: on success, on failure, on Ctrl-C during
// start and after --keep-running.
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { REPO_ROOT } from "./harness";

const DEMO = join(REPO_ROOT, "dist", "e2e", "demo.js");
/** Set in the demo's environment and inherited by etcd, kube-apiserver, kube-controller-manager,
 * kube-scheduler and kwok, so leftovers of THIS run are found precisely even while other control planes
 * run on the machine. */
const MARKER_ENV = "CERT_AGENT_DEMO_TEST_RUN";

interface DemoRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  marker: string;
  ms: number;
}

interface RunOptions {
  /** Called with the stdout so far whenever more arrives (e.g. to send a signal at the right moment). */
  onStdout?: (stdout: string, child: ChildProcess, marker: string) => void;
  timeoutMs?: number;
}

function runDemo(args: string[], o: RunOptions = {}): Promise<DemoRun> {
  const marker = randomUUID();
  const started = Date.now();
  const child = spawn(process.execPath, [DEMO, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, [MARKER_ENV]: marker },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout!.on("data", (d: Buffer) => {
    stdout += d.toString();
    o.onStdout?.(stdout, child, marker);
  });
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`demo ${args.join(" ")} did not exit within ${o.timeoutMs ?? 150_000} ms; stdout:\n${stdout}\nstderr:\n${stderr}`));
    }, o.timeoutMs ?? 150_000);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, marker, ms: Date.now() - started });
    });
  });
}

/** Processes whose environment carries this run's marker: "pid cmdline" each. */
function processesOf(marker: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const environ = readFileSync(`/proc/${pid}/environ`, "utf8");
      if (environ.split("\0").includes(`${MARKER_ENV}=${marker}`)) {
        found.push(`${pid} ${readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").slice(0, 120)}`);
      }
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

function expectNothingLeft(run: DemoRun): void {
  expect(processesOf(run.marker)).toEqual([]);
  // Every control plane process the demo reported is gone (or its pid now belongs to someone else).
  for (const m of run.stdout.matchAll(/(etcd|kube-apiserver|kube-controller-manager|kube-scheduler|kwok) pid (\d+)/g)) {
    const pid = Number(m[2]);
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, "utf8");
    } catch {
      continue; // not running: good
    }
    expect(environ.includes(run.marker)).toBe(false);
  }
}

function expectNoKeyMaterial(run: DemoRun): void {
  expect(run.stdout).not.toMatch(/PRIVATE KEY/);
  expect(run.stderr).not.toMatch(/PRIVATE KEY/);
}

/** The demo's temp dir (agent log, the bundle copy for openssl), from the "agent log: <path>" line. */
function workDirOf(run: DemoRun): string | undefined {
  const m = /agent log: (\S+\/agent\.log)/.exec(run.stdout);
  return m ? dirname(m[1]!) : undefined;
}

function openssl(dir: string, args: string[]): string {
  return execFileSync("openssl", args, { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function explain(run: DemoRun): string {
  return `exit ${run.code} (${run.signal ?? "no signal"}) after ${run.ms} ms\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
}

/** The Deployments the demo bounces, in the PodBounceDirective's order, with their selectors' text. */
const WORKLOADS = [
  { name: "istiod", selector: "pods in istio-system with app=istiod", replicas: 2 },
  { name: "istio-ingressgateway", selector: "pods in istio-system with app=istio-ingressgateway", replicas: 1 },
  { name: "web", selector: "pods in gloo-mesh with app=web", replicas: 2 },
];
const CONFIGMAP_WAIT = "pods in istio-system with app=istio-ingressgateway: waiting for ConfigMap istio-system/istio-ca-root-cert";

/** The agent's bounce lines as the demo prints them ("      bounce <reason>: <detail> (t+N ms)"), in order. */
function bounceLines(stdout: string): { reason: string; detail: string; t: number; line: number }[] {
  return stdout.split("\n").flatMap((text, line) => {
    const m = /^ {6}bounce (\w+): (.*) \(t\+(\d+) ms\)$/.exec(text);
    return m ? [{ reason: m[1]!, detail: m[2]!, t: Number(m[3]), line }] : [];
  });
}

/**
 * The bounce in the transcript: requested once, istiod -> gateway -> web restarted once each with the
 * strategy, the gateway only after the bouncer waited for istio-ca-root-cert and the demo (playing istiod)
 * published it; FINISHED after the last restart; each restart an Event too; the pods replaced.
 */
function expectBounceInOrder(stdout: string, strategy: "rollout" | "evict" | "delete"): void {
  const lines = bounceLines(stdout);
  const all = lines.map((l) => `${l.reason}: ${l.detail}`).join("\n");
  expect(lines[0]).toMatchObject({ reason: "BounceRequested", detail: "asked PodBounceDirective gloo-mesh/istio-pods to restart its pods" });
  expect(lines.filter((l) => l.reason === "BounceRequested")).toHaveLength(1);
  expect(lines.filter((l) => !["BounceRequested", "PodsRestarted", "BounceWaiting"].includes(l.reason))).toEqual([]);
  const restarts = lines.filter((l) => l.reason === "PodsRestarted");
  expect({ order: restarts.map((l) => WORKLOADS.find((w) => l.detail.startsWith(`${w.selector}: `))?.name), all })
    .toEqual({ order: ["istiod", "istio-ingressgateway", "web"], all });
  for (const [i, w] of WORKLOADS.entries()) {
    const restarted = strategy === "rollout"
      ? `Deployment/${w.name}`
      : Array.from({ length: w.replicas }, () => `Pod/${w.name}-[a-z0-9]+-[a-z0-9]+`).join(", ");
    expect(restarts[i]!.detail).toMatch(new RegExp(`^${w.selector}: restarted ${restarted} \\(${strategy}\\)$`));
  }
  // The gateway waited for the root istiod publishes; the demo published it, then the gateway restarted.
  const waited = lines.findIndex((l) => l.reason === "BounceWaiting" && l.detail === CONFIGMAP_WAIT);
  expect(waited).toBeGreaterThan(lines.indexOf(restarts[0]!));
  expect(waited).toBeLessThan(lines.indexOf(restarts[1]!));
  const text = stdout.split("\n");
  const played = text.findIndex((l) => /^ {6}istiod \(played by the demo\): published the new root-cert\.pem .* in ConfigMap istio-system\/istio-ca-root-cert/.test(l));
  expect(played).toBeGreaterThan(lines[waited]!.line);
  expect(played).toBeLessThan(restarts[1]!.line);
  const ts = lines.map((l) => l.t);
  expect(ts).toEqual([...ts].sort((a, b) => a - b));
  // FINISHED only after the last group; every bounce line is an Event on the IssuedCertificate as well.
  expect(text.findIndex((l) => /^ {2}ISSUED +-> FINISHED +\(t\+\d+ ms\)$/.test(l))).toBeGreaterThan(restarts[2]!.line);
  expect(stdout.match(/^ {6}event Normal PodsRestarted(:| \(same as its bounce line\))/gm)).toHaveLength(3);
  expect(stdout).toMatch(/^ {6}event Normal BounceRequested(:| \(same as its bounce line\))/m);
  expect(stdout).toContain(`pods bounced (${strategy}), in the order of the agent's PodsRestarted lines`);
  for (const [i, w] of WORKLOADS.entries()) {
    const ns = w.name === "web" ? "gloo-mesh" : "istio-system";
    const pods = Array.from({ length: w.replicas }, () => `${w.name}-[a-z0-9]+-[a-z0-9]+`).join(", ");
    expect(stdout).toMatch(new RegExp(`^ {2}${i + 1}\\. ${ns}/${w.name}: +${pods} -> ${pods}$`, "m"));
  }
  expect(stdout).toMatch(/^ {2}PodBounceDirective gloo-mesh\/istio-pods status\.podsBounced: \[istiod-\S+, istiod-\S+\] \[istio-ingressgateway-\S+\] \[web-\S+, web-\S+\]$/m);
  expect(stdout).toMatch(new RegExp(`^ {2}bounced: +\\d+ ms \\(ISSUED -> FINISHED: istiod, istio-ingressgateway, web restarted in order, ${strategy}\\)$`, "m"));
}

beforeAll(() => {
  if (!existsSync(DEMO)) throw new Error(`${DEMO} is missing: run \`npm run build\` first (npm test does)`);
});

describe("npm run demo (dist/e2e/demo.js as a child process)", () => {
  const outDirs: string[] = [];
  afterAll(() => {
    for (const d of outDirs) rmSync(d, { recursive: true, force: true });
  });

  it("issues an ECDSA-P256 cacerts, shows every transition and the bounce (evict), writes --out files that openssl verifies, and stops everything", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "cert-agent-demo-test-")), "bundle");
    outDirs.push(dirname(out));
    const run = await runDemo(["--out", out, "--key-algorithm", "ECDSA-P256", "--bounce-strategy", "evict"]);
    process.stderr.write(`[figure] demo --key-algorithm ECDSA-P256 --bounce-strategy evict --out: ${run.ms} ms wall\n`);
    expect({ code: run.code, run: explain(run) }).toEqual({ code: 0, run: explain(run) });

    const s = run.stdout;
    expect(s).toMatch(/control plane ready in \d+ ms at https:\/\/127\.0\.0\.1:\d+ \(etcd pid \d+, kube-apiserver pid \d+, kube-controller-manager pid \d+/);
    expect(s).toMatch(/3 KWOK nodes Ready in \d+ ms \(kube-scheduler pid \d+, kwok pid \d+/);
    expect(s).toMatch(/Deployments Ready in \d+ ms: istio-system\/istiod \(istiod-\S+, istiod-\S+\), istio-system\/istio-ingressgateway \(istio-ingressgateway-\S+\), gloo-mesh\/web \(web-\S+, web-\S+\)$/m);
    expect(s).toContain("agent (all namespaces, --bounce-strategy evict) started in-process");
    expect(s).toContain("root CA \"CN=cert-agent demo root CA\"");
    expect(s).toContain("created IssuedCertificate gloo-mesh/istiod for spiffe://cluster.local/ns/istio-system/sa/istiod");
    const transitions = [...s.matchAll(/^ {2}(\S+) +-> (\S+) +\(t\+(\d+) ms\)$/gm)].map((m) => `${m[1]}->${m[2]}`);
    expect(transitions).toEqual(["(new)->PENDING", "PENDING->REQUESTED", "REQUESTED->ISSUED", "ISSUED->FINISHED"]);
    for (const reason of ["SpecChanged", "CertificateRequested", "Issued", "Finished"]) expect(s).toMatch(new RegExp(`event Normal ${reason}: `));
    expect(s).toContain("shared/pki verifyIssuedCertificate: OK");
    expect(s).toContain("openssl verify -CAfile root-cert.pem ca-cert.pem: ca-cert.pem: OK");
    expect(s).toMatch(/openssl pkey -pubout \(ca-key\.pem\) = openssl x509 -pubkey \(ca-cert\.pem\): OK/);
    expect(s).toContain("summary of secret istio-system/cacerts:");
    expect(s).toMatch(/^ {2}subject: +\(empty/m);
    expect(s).toMatch(/^ {2}SANs: +spiffe:\/\/cluster\.local\/ns\/istio-system\/sa\/istiod$/m);
    expect(s).toMatch(/^ {2}key: +ECDSA P-256 \(256 bits\)$/m);
    expect(s).toMatch(/^ {2}validity: +\d{4}-\d\d-\d\dT\S+Z -> \d{4}-\d\d-\d\dT\S+Z \(365 days\)$/m);
    expect(s).toMatch(/^ {2}issuer: +CN=cert-agent demo root CA$/m);
    expect(s).toMatch(/^ {2}chain: +intermediate ca-cert\.pem -> root root-cert\.pem \(subject CN=cert-agent demo root CA/m);
    expect(s).toMatch(/^ {2}serial: +[0-9a-f]+$/m);
    expect(s).toMatch(/^ {2}issued in: +\d+ ms \(IssuedCertificate created -> ISSUED: secret written\)$/m);
    expectBounceInOrder(s, "evict");
    expect(s).toMatch(/stopped agent, issuer and control plane in \d+ ms; done$/m);
    expect(run.stderr).toBe("");
    expectNoKeyMaterial(run);

    expect(readdirSync(out).sort()).toEqual(["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"]);
    expect(statSync(join(out, "ca-key.pem")).mode & 0o777).toBe(0o600);
    expect(openssl(out, ["verify", "-CAfile", "root-cert.pem", "ca-cert.pem"]).trim()).toBe("ca-cert.pem: OK");
    // cert-chain.pem is what Envoy serves: the intermediate must verify through it as well.
    expect(openssl(out, ["verify", "-CAfile", "root-cert.pem", "-untrusted", "cert-chain.pem", "ca-cert.pem"]).trim()).toBe("ca-cert.pem: OK");
    expect(openssl(out, ["pkey", "-in", "ca-key.pem", "-pubout"])).toBe(openssl(out, ["x509", "-in", "ca-cert.pem", "-pubkey", "-noout"]));
    const text = openssl(out, ["x509", "-in", "ca-cert.pem", "-noout", "-text"]);
    expect(text).toContain("ASN1 OID: prime256v1");
    expect(text).toMatch(/CA:TRUE/);
    expect(text).toContain("URI:spiffe://cluster.local/ns/istio-system/sa/istiod");
    // The serial printed is the certificate's.
    const serial = /^ {2}serial: +([0-9a-f]+)$/m.exec(s)![1]!;
    expect(openssl(out, ["x509", "-in", "ca-cert.pem", "-noout", "-serial"]).trim().toLowerCase()).toBe(`serial=${serial}`);

    expectNothingLeft(run);
    const workDir = workDirOf(run);
    expect(workDir).toBeDefined();
    expect(existsSync(workDir!)).toBe(false); // its bundle copy (with the key) is gone too
  }, 180_000);

  it("defaults to RSA-4096 and a rollout bounce, and leaves no files behind without --out", async () => {
    const run = await runDemo([]);
    process.stderr.write(`[figure] demo with defaults (RSA-4096, rollout): ${run.ms} ms wall\n`);
    expect({ code: run.code, run: explain(run) }).toEqual({ code: 0, run: explain(run) });
    expect(run.stdout).toContain("RSA-4096 key, then istiod, istio-ingressgateway, web restarted (rollout)");
    expect(run.stdout).toMatch(/^ {2}key: +RSA 4096 bits$/m);
    const transitions = [...run.stdout.matchAll(/^ {2}(\S+) +-> (\S+) +\(t\+(\d+) ms\)$/gm)].map((m) => `${m[1]}->${m[2]}`);
    expect(transitions).toEqual(["(new)->PENDING", "PENDING->REQUESTED", "REQUESTED->ISSUED", "ISSUED->FINISHED"]);
    expectBounceInOrder(run.stdout, "rollout");
    expect(run.stdout).toContain("openssl verify -CAfile root-cert.pem ca-cert.pem: ca-cert.pem: OK");
    expect(run.stdout).not.toMatch(/files: /);
    expectNoKeyMaterial(run);
    expectNothingLeft(run);
    expect(existsSync(workDirOf(run)!)).toBe(false);
  }, 180_000);

  it("--keep-running serves kubectl (the bounced pods too) until Ctrl-C, then exits 0 and stops everything", async () => {
    let kubeconfig = "";
    let listed = "";
    let pods = "";
    let bounced = "";
    const run = await runDemo(["--key-algorithm", "ECDSA-P256", "--bounce-strategy", "delete", "--keep-running"], {
      onStdout: (stdout, child) => {
        if (kubeconfig || !stdout.includes("press Ctrl-C to stop")) return;
        kubeconfig = /export KUBECONFIG=(\S+)/.exec(stdout)![1]!;
        const kubectl = (...args: string[]): string => execFileSync("kubectl", args, {
          env: { ...process.env, KUBECONFIG: kubeconfig },
          encoding: "utf8",
          stdio: ["ignore", "pipe", "pipe"],
        });
        try {
          listed = kubectl("get", "issuedcertificates", "-A", "-o", "jsonpath={.items[*].status.state}");
          pods = kubectl("get", "pods", "-A", "-o", "jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.labels.app} {.status.phase}{\"\\n\"}{end}");
          bounced = kubectl("get", "podbouncedirective", "-n", "gloo-mesh", "istio-pods", "-o", "jsonpath={range .status.podsBounced[*]}{.bouncedPods}{\"\\n\"}{end}");
        } finally {
          child.kill("SIGINT");
        }
      },
    });
    expect({ code: run.code, run: explain(run) }).toEqual({ code: 0, run: explain(run) });
    expect(listed).toBe("FINISHED");
    expect(pods.trim().split("\n").sort()).toEqual([
      "gloo-mesh/web Running", "gloo-mesh/web Running",
      "istio-system/istio-ingressgateway Running",
      "istio-system/istiod Running", "istio-system/istiod Running",
    ]);
    expect(bounced.trim().split("\n")).toHaveLength(3);
    expectBounceInOrder(run.stdout, "delete");
    expect(run.stdout).toContain("kubectl get pods -A -o wide; kubectl get podbouncedirective -n gloo-mesh istio-pods -o yaml");
    expect(run.stdout).toMatch(/stopped agent, issuer and control plane in \d+ ms; done$/m);
    expectNoKeyMaterial(run);
    expectNothingLeft(run);
    expect(existsSync(kubeconfig)).toBe(false); // the control plane's data dir is removed
  }, 180_000);

  it("Ctrl-C while the control plane starts: exit 130, nothing left running (nodes included)", async () => {
    let watching = false;
    let runningAtSignal: string[] = [];
    let stdoutAtSignal = "";
    let latest = "";
    const run = await runDemo(["--key-algorithm", "ECDSA-P256"], {
      onStdout: (stdout, child, marker) => {
        latest = stdout;
        if (watching || !stdout.includes("starting a local control plane")) return;
        watching = true;
        // On a condition, not after a fixed delay (binaries, PKI and ports come first and take longer on a
        // busy machine): the moment etcd or kube-apiserver runs, well before the control plane is ready.
        const started = Date.now();
        const poll = setInterval(() => {
          runningAtSignal = processesOf(marker);
          if (!/etcd|kube-apiserver/.test(runningAtSignal.join("\n")) && Date.now() - started < 60_000) return;
          clearInterval(poll);
          stdoutAtSignal = latest;
          child.kill("SIGINT");
        }, 20);
        child.once("exit", () => clearInterval(poll));
      },
    });
    // The signal really came while components ran and before the control plane was ready.
    expect(runningAtSignal.join("\n")).toMatch(/etcd|kube-apiserver/);
    expect(stdoutAtSignal).not.toContain("control plane ready");
    expect({ code: run.code, run: explain(run) }).toEqual({ code: 130, run: explain(run) });
    expect(run.stderr).toContain("demo: interrupted by SIGINT, stopping everything");
    expect(run.stdout).not.toContain("created IssuedCertificate");
    expectNothingLeft(run);
  }, 120_000);

  it("a failed issuance is one clear message and a non-zero exit, and still stops everything", async () => {
    const run = await runDemo(["--key-algorithm", "ECDSA-P256", "--issuer-fail", "signing CA is offline"]);
    const kept = /agent log kept at (\S+)/.exec(run.stderr)?.[1];
    if (kept) rmSync(dirname(kept), { recursive: true, force: true });
    expect({ code: run.code, run: explain(run) }).toEqual({ code: 1, run: explain(run) });
    expect(run.stdout).toContain("REQUESTED -> FAILED");
    expect(run.stdout).toContain("event Warning IssuerFailed: certificate request gloo-mesh.istiod failed to be signed by Issuer: signing CA is offline");
    expect(run.stderr).toContain("demo failed: IssuedCertificate gloo-mesh/istiod FAILED: certificate request gloo-mesh.istiod failed to be signed by Issuer: signing CA is offline");
    expect(kept).toBeDefined();
    // No certificate, no bounce: nothing was asked of the bouncer and no pod was restarted.
    expect(bounceLines(run.stdout)).toEqual([]);
    expect(run.stdout).not.toContain("pods bounced");
    expectNoKeyMaterial(run);
    expectNothingLeft(run);
  }, 180_000);

  it("--no-bounce: the control plane without nodes, no pods and no PodBounceDirective; ISSUED goes straight to FINISHED", async () => {
    const run = await runDemo(["--key-algorithm", "ECDSA-P256", "--no-bounce"]);
    process.stderr.write(`[figure] demo --key-algorithm ECDSA-P256 --no-bounce: ${run.ms} ms wall\n`);
    expect({ code: run.code, run: explain(run) }).toEqual({ code: 0, run: explain(run) });
    expect(run.stdout).toContain("ECDSA-P256 key, no pods (--no-bounce)");
    expect(run.stdout).toContain("starting a local control plane (etcd, kube-apiserver, kube-controller-manager) and making a root CA");
    expect(run.stdout).not.toMatch(/KWOK nodes Ready|Deployments Ready|PodBounceDirective/);
    const transitions = [...run.stdout.matchAll(/^ {2}(\S+) +-> (\S+) +\(t\+(\d+) ms\)$/gm)].map((m) => `${m[1]}->${m[2]}`);
    expect(transitions).toEqual(["(new)->PENDING", "PENDING->REQUESTED", "REQUESTED->ISSUED", "ISSUED->FINISHED"]);
    expect(bounceLines(run.stdout)).toEqual([]);
    expect(run.stdout).toMatch(/^ {2}issued in: +\d+ ms \(IssuedCertificate created -> FINISHED\)$/m);
    expect(run.stdout).toContain("event Normal Finished: certificate issued");
    expectNoKeyMaterial(run);
    expectNothingLeft(run);
  }, 180_000);

  it("--istiod --no-bounce: a real istiod, restarted after FINISHED, uses the agent's CA (metrics, log serial, ConfigMaps, a workload certificate)", async () => {
    const run = await runDemo(["--key-algorithm", "ECDSA-P256", "--no-bounce", "--istiod"]);
    process.stderr.write(`[figure] demo --key-algorithm ECDSA-P256 --no-bounce --istiod: ${run.ms} ms wall\n`);
    expect({ code: run.code, run: explain(run) }).toEqual({ code: 0, run: explain(run) });
    const serial = /^ {2}serial: +([0-9a-f]+)$/m.exec(run.stdout)?.[1];
    expect(serial).toBeDefined();
    expect(run.stdout).toMatch(/istiod restarted to load cacerts \(pid \d+ -> \d+, ready in \d+ ms\)/);
    expect(run.stdout).toContain('log: "Use local CA certificate", "Istiod CA has started"');
    expect(run.stdout).toMatch(/metric citadel_server_cert_chain_expiry_timestamp = \S+ = ca-cert\.pem notAfter: OK/);
    expect(run.stdout).toMatch(/metric citadel_server_root_cert_expiry_timestamp +=  ?\S+ = root-cert\.pem notAfter: OK/);
    expect(run.stdout).toContain(`its log lists ca-cert.pem's serial ${serial} in the chain of its own serving certificate`);
    expect(run.stdout).toMatch(/ConfigMap istio-ca-root-cert in \d+ namespaces \(.*istio-system.*\), each = root-cert\.pem byte for byte: OK/);
    expect(run.stdout).toMatch(/CreateCertificate .*: signed by ca-cert\.pem, chain ends in root-cert\.pem: OK/);
    expectNoKeyMaterial(run);
    expectNothingLeft(run);
  }, 240_000);

  it.each([
    [["--key-size", "1024"], /^demo: --key-size must be 2048, 3072 or 4096/],
    [["--key-algorithm", "DSA"], /^demo: --key-algorithm: unsupported key algorithm "DSA"/],
    [["--key-algorithm", "ECDSA-P384", "--key-size", "4096"], /^demo: --key-size is for RSA keys/],
    [["--verbose"], /^demo: Unknown option '--verbose'/],
    [["now"], /^demo: Unexpected argument 'now'/],
    [["--bounce-strategy", "restart"], /^demo: --bounce-strategy must be rollout, evict, delete, got "restart"/],
    [["--no-bounce", "--bounce-strategy", "evict"], /^demo: --bounce-strategy and --no-bounce exclude each other/],
  ])("bad options %j: one line on stderr, exit 2, nothing started", async (args, message) => {
    const run = await runDemo(args);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toMatch(message);
    expect(run.stderr.trimEnd().split("\n")).toHaveLength(1);
    expectNothingLeft(run);
  });
});
