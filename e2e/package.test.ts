// The package as a user gets it: `npm pack` of this repository holds the built agent (dist/agent,
// dist/shared) and nothing of tests, test helpers, sources or caches; it installs in an empty
// directory and `npx cert-agent --help` works there.
//
// Offline: after `npm ci` the npm cache holds every dependency's tarball but no registry metadata
// (npm ci reads versions from package-lock.json), so a plain `npm install <tarball> --offline` fails
// with ENOTCACHED; online it works (measured: 25 s). Here the empty directory gets a lockfile made
// from ours (the tarball, plus our lock's non-dev packages: the same tree `npm ci --omit=dev` gives)
// and `npm ci --offline` installs from the cache alone. Uses dist/ as `npm test` built it
// (--ignore-scripts: prepack would rebuild dist/ under the other suites' feet).
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { repoRoot } from "./controlplane/repo";

jest.setTimeout(180_000);

interface PackResult {
  filename: string;
  integrity: string;
  files: { path: string }[];
}

interface LockEntry {
  dev?: boolean;
  [field: string]: unknown;
}

const repo = repoRoot();
const pkg = JSON.parse(fs.readFileSync(path.join(repo, "package.json"), "utf8")) as {
  name: string;
  version: string;
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  scripts: Record<string, string>;
};

/** Our environment without what npm passes to scripts (npm_config_prefix would redirect the install
 * into the repository); the npm cache and registry settings stay. Node 24 (ours) first on the PATH. */
function npmEnv(): NodeJS.ProcessEnv {
  const keep = new Set(["npm_config_cache", "npm_config_registry", "npm_config_userconfig"]);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) && !keep.has(k.toLowerCase())) continue;
    env[k] = v;
  }
  env.PATH = `${path.dirname(process.execPath)}:${process.env.PATH}`;
  env.KUBECONFIG = "";
  return env;
}

function run(cmd: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  const result = spawnSync(cmd, args, { cwd, encoding: "utf8", env: npmEnv(), timeout: 120_000 });
  if (result.error) throw result.error;
  return result;
}

function ok(cmd: string, args: string[], cwd: string): string {
  const result = run(cmd, args, cwd);
  if (result.status !== 0) throw new Error(`${cmd} ${args.join(" ")} exited ${result.status}:\n${result.stderr}`);
  return result.stdout;
}

describe("npm pack", () => {
  let work: string;
  let pack: PackResult;

  beforeAll(() => {
    work = fs.mkdtempSync(path.join(os.tmpdir(), "cert-agent-pack-"));
    const out = ok("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", work], repo);
    [pack] = JSON.parse(out) as PackResult[];
  });

  afterAll(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  test("holds the built agent and nothing of tests, test helpers, sources or caches", () => {
    const files = pack.files.map((f) => f.path).sort();
    expect(files).toEqual(expect.arrayContaining(["package.json", "README.md", pkg.bin["cert-agent"], "dist/agent/status/command.js", "dist/shared/pki/verify.js"]));
    const unexpected = files.filter(
      (f) =>
        !["package.json", "README.md"].includes(f) &&
        (!/^dist\/(agent|shared)\/.*\.js$/.test(f) || /\.test\.js$/.test(f) || /(^|\/)testing(\/|\.js$)/.test(f) || f === "dist/shared/kube/fake.js"),
    );
    expect(unexpected).toEqual([]);
    // npm pack runs prepack without --ignore-scripts: the tarball always holds a fresh build.
    expect(pkg.scripts.prepack).toBe("npm run build");
  });

  test("installs in an empty directory from the npm cache alone, and npx cert-agent --help works", () => {
    const app = path.join(work, "app");
    fs.mkdirSync(app);
    const tarball = path.basename(pack.filename);
    fs.copyFileSync(path.join(work, tarball), path.join(app, tarball));
    const spec = `file:${tarball}`;
    const ourLock = JSON.parse(fs.readFileSync(path.join(repo, "package-lock.json"), "utf8")) as { packages: Record<string, LockEntry> };
    const packages: Record<string, unknown> = {
      "": { name: "try-cert-agent", dependencies: { [pkg.name]: spec } },
      [`node_modules/${pkg.name}`]: { version: pkg.version, resolved: spec, integrity: pack.integrity, dependencies: pkg.dependencies, bin: pkg.bin },
    };
    for (const [where, entry] of Object.entries(ourLock.packages)) {
      if (where !== "" && !entry.dev) packages[where] = entry;
    }
    fs.writeFileSync(path.join(app, "package.json"), JSON.stringify({ name: "try-cert-agent", private: true, dependencies: { [pkg.name]: spec } }));
    fs.writeFileSync(path.join(app, "package-lock.json"), JSON.stringify({ name: "try-cert-agent", lockfileVersion: 3, requires: true, packages }));

    ok("npm", ["ci", "--offline", "--no-audit", "--no-fund", "--prefix", app], app);
    expect(fs.existsSync(path.join(app, "node_modules", pkg.name, "e2e"))).toBe(false);

    const help = run("npx", ["--no-install", "cert-agent", "--help"], app);
    expect({ status: help.status, stderr: help.stderr }).toEqual({ status: 0, stderr: "" });
    expect(help.stdout).toMatch(/^usage: cert-agent/);
    const statusHelp = run("npx", ["--no-install", "cert-agent", "status", "--help"], app);
    expect(statusHelp.status).toBe(0);
    expect(statusHelp.stdout).toMatch(/cert-agent status/);
  });
});
