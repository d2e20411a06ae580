// Locates the repository root from wherever this module runs: ts-jest runs it from e2e/controlplane/,
// the CLI from dist/e2e/controlplane/. Both sit below the package.json named "cert-agent".
import * as fs from "node:fs";
import * as path from "node:path";

let cached: string | undefined;

export function repoRoot(): string {
  if (cached) return cached;
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, "package.json");
    if (fs.existsSync(pkg)) {
      try {
        if ((JSON.parse(fs.readFileSync(pkg, "utf8")) as { name?: string }).name === "cert-agent") {
          cached = dir;
          return dir;
        }
      } catch {
        // An unreadable package.json is not ours; keep walking up.
      }
    }
    if (path.dirname(dir) === dir) throw new Error(`cannot find the cert-agent repository above ${__dirname}`);
  }
}
