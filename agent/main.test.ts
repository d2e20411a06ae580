// The real executable (dist/agent/main.js, built by `npm test`): a bad flag is one line and exit 2.
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const MAIN = join(__dirname, "..", "dist", "agent", "main.js");

function run(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [MAIN, ...args], { encoding: "utf8", env: { PATH: process.env.PATH, ...env }, timeout: 30_000 });
}

describe("cert-agent executable", () => {
  it.each([
    [["--concurrency=-3"], 'cert-agent: --concurrency: "-3" must be an integer from 1 to 64'],
    [["--concurrency", "-3"], "cert-agent: Option '--concurrency' argument is ambiguous. Did you forget"],
    [["--no-such-flag"], "cert-agent: Unknown option '--no-such-flag'"],
    [["--kubeconfig", "/nonexistent/kubeconfig"], "cert-agent: --kubeconfig: file /nonexistent/kubeconfig does not exist"],
  ])("exits 2 with one line for %p", (args, line) => {
    const result = run(args);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain(line);
  });

  it("exits 2 for a bad environment value", () => {
    const result = run([], { CERT_AGENT_LOG_LEVEL: "chatty" });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain("--log-level");
  });

  it("prints usage for --help and exits 0", () => {
    const result = run(["--help"]);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^usage: cert-agent/);
    expect(result.stdout).toContain("cert-agent status [flags]");
  });

  it("dispatches `status` to the subcommand: its own usage, its own errors (exit 2, one line)", () => {
    const help = run(["status", "--help"]);
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^usage: cert-agent status \[flags\]/);
    const bad = run(["status", "--concurrency", "3"]);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toBe("cert-agent status: Unknown option '--concurrency'\n");
  });
});
