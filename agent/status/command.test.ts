// runStatus end to end on the in-memory API: the namespace it picks, what goes to stdout and stderr, and
// the exit code. The real executable against a real API server is e2e/status-command.e2e.test.ts.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { issuedCertificate } from "../../shared/api/builders";
import type { IssuedCertificate, IssuedCertificateState } from "../../shared/api/types";
import { FakeApi } from "../../shared/kube/fake";
import { processIo, runStatus, type StatusIo } from "./command";
import type { StatusReaders } from "./gather";
import { fakeStatusReaders } from "./testing";

const NOW = new Date("2026-06-01T12:00:00Z");
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "status-command-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A kubeconfig whose current context has (or lacks) a namespace. The server is never contacted. */
function kubeconfig(namespace?: string): string {
  const file = join(dir, `kubeconfig-${namespace ?? "none"}`);
  writeFileSync(file, [
    "apiVersion: v1",
    "kind: Config",
    "clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]",
    "users: [{name: u, user: {token: t}}]",
    `contexts: [{name: x, context: {cluster: c, user: u${namespace ? `, namespace: ${namespace}` : ""}}}]`,
    "current-context: x",
  ].join("\n"));
  return file;
}

function setUp(readers?: StatusReaders) {
  const api = new FakeApi();
  const out: string[] = [];
  const err: string[] = [];
  const lists: (string | undefined)[] = [];
  const issued = api.client<IssuedCertificate>("IssuedCertificate");
  const io: StatusIo = {
    env: {},
    stdout: async (text) => void out.push(text),
    stderr: (text) => void err.push(text),
    now: () => NOW,
    readers: () => readers ?? { ...fakeStatusReaders(api), issued: { list: (ns) => (lists.push(ns), issued.list(ns)) } },
  };
  const ic = (namespace: string, name: string, state?: IssuedCertificateState, error?: string) => {
    const obj = issuedCertificate({ name, namespace, target: { name: `cacerts-${name}`, namespace } });
    if (state) obj.status = { state, observedGeneration: 1, ...(error ? { error } : {}) };
    api.seed("IssuedCertificate", obj);
  };
  return { io, ic, lists, stdout: () => out.join(""), stderr: () => err.join("") };
}

describe("runStatus", () => {
  it("reads the kubeconfig context's namespace by default, like kubectl", async () => {
    const s = setUp();
    s.ic("from-context", "a", "FINISHED");
    s.ic("default", "b", "FINISHED");
    expect(await runStatus(["--kubeconfig", kubeconfig("from-context")], s.io)).toBe(0);
    expect(s.lists).toEqual(["from-context"]);
    expect(s.stdout()).toMatch(/^NAMESPACE +NAME +STATE +KEY +ROOTS +NOT AFTER +RENEWS IN +ERROR +BOUNCE\nfrom-context +a +FINISHED +no secret from-context\/cacerts-a +- +- +- +- +-\n$/);
    expect(s.stderr()).toBe("");
  });

  it("falls back to the default namespace; -n and -A choose", async () => {
    const s = setUp();
    await runStatus(["--kubeconfig", kubeconfig()], s.io);
    await runStatus(["--kubeconfig", kubeconfig("ctx"), "-n", "mesh"], s.io);
    await runStatus(["--kubeconfig", kubeconfig("ctx"), "-A"], s.io);
    expect(s.lists).toEqual(["default", "mesh", undefined]);
  });

  it("exits 1 with the table on stdout and why on stderr", async () => {
    const s = setUp();
    s.ic("mesh", "good", "FINISHED");
    s.ic("mesh", "bad", "FAILED", "issuer said no");
    expect(await runStatus(["--kubeconfig", kubeconfig("mesh")], s.io)).toBe(1);
    expect(s.stdout()).toContain("issuer said no");
    expect(s.stderr()).toBe("cert-agent status: 1 of 2 need attention: mesh/bad (failed)\n");
  });

  it("-o json: the rows only on stdout, parseable, the same exit code", async () => {
    const s = setUp();
    s.ic("mesh", "bad", "FAILED", "issuer said no");
    expect(await runStatus(["--kubeconfig", kubeconfig("mesh"), "-o", "json"], s.io)).toBe(1);
    const doc = JSON.parse(s.stdout());
    expect(doc.now).toBe("2026-06-01T12:00:00Z");
    expect(doc.items).toEqual([expect.objectContaining({ namespace: "mesh", name: "bad", state: "FAILED", error: "issuer said no", problems: ["failed"] })]);
    expect(s.stderr()).toBe("");
  });

  it("nothing found: kubectl's sentence on stderr, nothing on stdout, exit 0", async () => {
    const s = setUp();
    expect(await runStatus(["--kubeconfig", kubeconfig("empty")], s.io)).toBe(0);
    expect(s.stdout()).toBe("");
    expect(s.stderr()).toBe("No IssuedCertificates found in empty namespace.\n");
    const all = setUp();
    expect(await runStatus(["--kubeconfig", kubeconfig("empty"), "-A"], all.io)).toBe(0);
    expect(all.stderr()).toBe("No IssuedCertificates found.\n");
  });

  it("--help prints the usage with the exit codes, exit 0", async () => {
    const s = setUp();
    expect(await runStatus(["--help"], s.io)).toBe(0);
    expect(s.stdout()).toMatch(/^usage: cert-agent status \[flags\]\n[\s\S]*Exit codes:/);
  });

  it.each<[string[], string]>([
    [["-n", "a", "-A"], "cert-agent status: --namespace and --all-namespaces exclude each other\n"],
    [["--bogus"], "cert-agent status: Unknown option '--bogus'\n"],
    [["--kubeconfig", "/nonexistent/kubeconfig"], "cert-agent status: --kubeconfig: file /nonexistent/kubeconfig does not exist\n"],
  ])("%j: exit 2 with one line on stderr", async (argv, line) => {
    const s = setUp();
    expect(await runStatus(argv, s.io)).toBe(2);
    expect(s.stderr()).toBe(line);
    expect(s.stdout()).toBe("");
  });

  it("an API server that does not answer: exit 2 after --request-timeout, saying which server", async () => {
    const s = setUp({ ...fakeStatusReaders(new FakeApi()), issued: { list: () => new Promise(() => {}) } });
    expect(await runStatus(["--kubeconfig", kubeconfig("mesh"), "--request-timeout", "50ms"], s.io)).toBe(2);
    expect(s.stderr()).toBe("cert-agent status: no answer from the API server https://127.0.0.1:1 within --request-timeout (50 ms)\n");
  });

  it("a secret that cannot be read and nothing else wrong: the table, a note, exit 2", async () => {
    const api = new FakeApi();
    api.seed("IssuedCertificate", issuedCertificate({ name: "a", namespace: "mesh", target: { name: "cacerts", namespace: "mesh" } }));
    api.failNext({ kind: "Secret", verb: "get", error: 403 });
    const s = setUp(fakeStatusReaders(api));
    expect(await runStatus(["--kubeconfig", kubeconfig("mesh")], s.io)).toBe(2);
    expect(s.stdout()).toContain("cannot read mesh/cacerts");
    expect(s.stderr()).toBe("cert-agent status: some secrets or directives could not be read; the verdict is incomplete\n");
  });
});

describe("processIo.stdout", () => {
  // runStatus's caller exits right after it: stdout must settle only once the text is written, and fail
  // when writing fails (a closed pipe), rather than hang or claim success.
  it.each<[string, Error | null, string]>([
    ["resolves once written", null, "written"],
    ["rejects with the write's error", Object.assign(new Error("write EPIPE"), { code: "EPIPE" }), "failed: write EPIPE"],
  ])("%s", async (_what, writeError, outcome) => {
    const written: string[] = [];
    const write = jest.spyOn(process.stdout, "write").mockImplementation(((text: string, done: (err?: Error | null) => void) => {
      written.push(text);
      setImmediate(() => done(writeError));
      return true;
    }) as never);
    try {
      const settled = processIo.stdout("NAMESPACE   NAME\n").then(() => "written", (err: Error) => `failed: ${err.message}`);
      const pending = new Promise<string>((resolve) => setTimeout(() => resolve("still pending"), 200));
      expect(await Promise.race([settled, pending])).toBe(outcome);
      expect(written).toEqual(["NAMESPACE   NAME\n"]);
    } finally {
      write.mockRestore();
    }
  });
});
