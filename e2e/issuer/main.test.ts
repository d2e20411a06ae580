// The reference issuer's executable (dist/e2e/issuer/main.js, built by `npm test`): --help, and a
// usage error is one line and exit 2, like every executable of the project.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { FAIL_ANNOTATION, MISBEHAVE_ANNOTATION } from "./issuer";
import { MISBEHAVIOURS } from "./sign";

const MAIN = join(__dirname, "..", "..", "dist", "e2e", "issuer", "main.js");

function run(args: string[]) {
  // No KUBECONFIG and no HOME: nothing here may reach a cluster.
  return spawnSync(process.execPath, [MAIN, ...args], { encoding: "utf8", env: { PATH: process.env.PATH }, timeout: 30_000 });
}

describe("reference issuer executable", () => {
  it.each([["--help"], ["-h"]])("prints usage for %s and exits 0", (flag) => {
    const result = run([flag]);
    expect(result.status).toBe(0);
    expect(result.stderr).toBe("");
    expect(result.stdout).toMatch(/^usage: npm run issuer -- \[--kubeconfig FILE\] \[--namespace NS\] \[--misbehave MODE\] \[--answer-delay DURATION\]\n/);
    for (const flagName of ["--kubeconfig", "--namespace", "--misbehave", "--answer-delay", "--help"]) expect(result.stdout).toContain(flagName);
    for (const mode of MISBEHAVIOURS) expect(result.stdout).toContain(mode);
    expect(result.stdout).toContain(MISBEHAVE_ANNOTATION);
    expect(result.stdout).toContain(FAIL_ANNOTATION);
  });

  it.each([
    [["--no-such-flag"], "issuer: Unknown option '--no-such-flag'"],
    [["--misbehave", "rude"], "issuer: --misbehave must be one of none, wrong-key,"],
    [["extra"], "issuer: Unexpected argument 'extra'"],
    [["--answer-delay", "soon"], "issuer: --answer-delay: invalid duration \"soon\""],
  ])("exits 2 with one line for %p", (args, line) => {
    const result = run(args);
    expect(result.status).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr.trimEnd().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain(line);
  });
});
