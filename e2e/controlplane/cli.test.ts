// `npm run controlplane` (dist/e2e/controlplane/cli.js, built by `npm test`) answers --help without
// starting anything, and refuses an argument it does not know, like every executable we ship.
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const CLI = join(__dirname, "..", "..", "dist", "e2e", "controlplane", "cli.js");
const run = (args: string[]) => spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", env: { PATH: process.env.PATH }, timeout: 30_000 });

describe("controlplane executable", () => {
  it.each([["--help"], ["-h"]])("prints usage for %s and exits 0 without starting a control plane", (flag) => {
    const result = run([flag]);
    expect(result.status).toBe(0);
    expect(result.stderr).toBe("");
    expect(result.stdout).toMatch(/^usage: npm run controlplane\n/);
    expect(result.stdout).toContain("CERT_AGENT_NODES");
  });

  it("refuses an unknown argument with exit 2", () => {
    const result = run(["--nodes"]);
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(/^controlplane: unexpected argument "--nodes"\nusage: npm run controlplane\n/);
  });
});
