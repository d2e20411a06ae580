// `npm run demo` as a user runs it: the built dist/e2e/demo.js as a real child process with its own
// control plane. Checks what it prints, the files it writes, that it never prints key material, and that
// nothing it started outlives it: on success, on failure, on Ctrl-C during start and after --keep-running.
import { ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { REPO_ROOT } from "./harness";

const DEMO = join(REPO_ROOT, "dist", "e2e", "demo.js");
/** Set in the demo's environment and inherited by etcd, kube-apiserver and kube-controller-manager,
 * so leftovers of THIS run are found precisely even while other control planes run on the machine. */
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
  for (const m of run.stdout.matchAll(/(etcd|kube-apiserver|kube-controller-manager) pid (\d+)/g)) {
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

beforeAll(() => {
  if (!existsSync(DEMO)) throw new Error(`${DEMO} is missing: run \`npm run build\` first (npm test does)`);
});

describe("npm run demo (dist/e2e/demo.js as a child process)", () => {
  const outDirs: string[] = [];
  afterAll(() => {
    for (const d of outDirs) rmSync(d, { recursive: true, force: true });
  });

  it("issues an ECDSA-P256 cacerts, shows every transition, writes --out files that openssl verifies, and stops everything", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "cert-agent-demo-test-")), "bundle");
    outDirs.push(dirname(out));
    const run = await runDemo(["--out", out, "--key-algorithm", "ECDSA-P256"]);
    process.stderr.write(`[figure] demo --key-algorithm ECDSA-P256 --out: ${run.ms} ms wall\n`);
    expect({ code: run.code, run: explain(run) }).toEqual({ code: 0, run: explain(run) });

    const s = run.stdout;
    expect(s).toMatch(/control plane ready in \d+ ms at https:\/\/127\.0\.0\.1:\d+ \(etcd pid \d+, kube-apiserver pid \d+, kube-controller-manager pid \d+/);
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
    expect(s).toMatch(/^ {2}issued in: +\d+ ms \(IssuedCertificate created -> FINISHED\)$/m);
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

  it("defaults to RSA-4096 and leaves no files behind without --out", async () => {
    const run = await runDemo([]);
    process.stderr.write(`[figure] demo with defaults (RSA-4096): ${run.ms} ms wall\n`);
    expect({ code: run.code, run: explain(run) }).toEqual({ code: 0, run: explain(run) });
    expect(run.stdout).toContain("RSA-4096 key");
    expect(run.stdout).toMatch(/^ {2}key: +RSA 4096 bits$/m);
    expect(run.stdout).toContain("ISSUED    -> FINISHED");
    expect(run.stdout).toContain("openssl verify -CAfile root-cert.pem ca-cert.pem: ca-cert.pem: OK");
    expect(run.stdout).not.toMatch(/files: /);
    expectNoKeyMaterial(run);
    expectNothingLeft(run);
    expect(existsSync(workDirOf(run)!)).toBe(false);
  }, 180_000);

  it("--keep-running serves kubectl until Ctrl-C, then exits 0 and stops everything", async () => {
    let kubeconfig = "";
    let listed = "";
    const run = await runDemo(["--key-algorithm", "ECDSA-P256", "--keep-running"], {
      onStdout: (stdout, child) => {
        if (kubeconfig || !stdout.includes("press Ctrl-C to stop")) return;
        kubeconfig = /export KUBECONFIG=(\S+)/.exec(stdout)![1]!;
        try {
          listed = execFileSync("kubectl", ["get", "issuedcertificates", "-A", "-o", "jsonpath={.items[*].status.state}"], {
            env: { ...process.env, KUBECONFIG: kubeconfig },
            encoding: "utf8",
            stdio: ["ignore", "pipe", "pipe"],
          });
        } finally {
          child.kill("SIGINT");
        }
      },
    });
    expect({ code: run.code, run: explain(run) }).toEqual({ code: 0, run: explain(run) });
    expect(listed).toBe("FINISHED");
    expect(run.stdout).toMatch(/stopped agent, issuer and control plane in \d+ ms; done$/m);
    expectNoKeyMaterial(run);
    expectNothingLeft(run);
    expect(existsSync(kubeconfig)).toBe(false); // the control plane's data dir is removed
  }, 180_000);

  it("Ctrl-C while the control plane starts: exit 130, nothing left running", async () => {
    let sent = false;
    let runningAtSignal: string[] = [];
    const run = await runDemo(["--key-algorithm", "ECDSA-P256"], {
      onStdout: (stdout, child, marker) => {
        if (!sent && stdout.includes("starting a local control plane")) {
          sent = true;
          // Long enough for etcd and kube-apiserver to have been spawned, well before they are ready.
          setTimeout(() => {
            runningAtSignal = processesOf(marker);
            child.kill("SIGINT");
          }, 400);
        }
      },
    });
    // The signal really came while components ran: there was something to stop.
    expect(runningAtSignal.join("\n")).toMatch(/etcd|kube-apiserver/);
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
    expectNoKeyMaterial(run);
    expectNothingLeft(run);
  }, 180_000);

  it.each([
    [["--key-size", "1024"], /^demo: --key-size must be 2048, 3072 or 4096/],
    [["--key-algorithm", "DSA"], /^demo: --key-algorithm: unsupported key algorithm "DSA"/],
    [["--key-algorithm", "ECDSA-P384", "--key-size", "4096"], /^demo: --key-size is for RSA keys/],
    [["--verbose"], /^demo: Unknown option '--verbose'/],
    [["now"], /^demo: Unexpected argument 'now'/],
  ])("bad options %j: one line on stderr, exit 2, nothing started", async (args, message) => {
    const run = await runDemo(args);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe("");
    expect(run.stderr).toMatch(message);
    expect(run.stderr.trimEnd().split("\n")).toHaveLength(1);
    expectNothingLeft(run);
  });
});
