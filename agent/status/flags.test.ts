import { ConfigError } from "../config";
import { DEFAULT_RENEW_BEFORE } from "../renewal";
import { parseStatusArgs, statusUsage } from "./flags";

describe("parseStatusArgs", () => {
  it("has defaults that need no flags: the context's namespace, a table, the agent's --renew-before, 1h, 30s", () => {
    expect(parseStatusArgs([])).toEqual({
      kubeconfig: undefined,
      namespace: undefined,
      allNamespaces: false,
      output: "table",
      renewBefore: DEFAULT_RENEW_BEFORE,
      overdueAfterMs: 3_600_000,
      requestTimeoutMs: 30_000,
    });
  });

  it.each<[string[], object]>([
    [["-n", "mesh"], { namespace: "mesh", allNamespaces: false }],
    [["--namespace=mesh"], { namespace: "mesh" }],
    [["-A"], { namespace: undefined, allNamespaces: true }],
    [["--all-namespaces"], { allNamespaces: true }],
    // A namespace may well be called "all": it is a name, never a switch.
    [["-n", "all"], { namespace: "all", allNamespaces: false }],
    [["-o", "json"], { output: "json" }],
    [["--output", "yaml"], { output: "yaml" }],
    [["-o", "table"], { output: "table" }],
    [["--kubeconfig", "/tmp/kc"], { kubeconfig: "/tmp/kc" }],
    [["--renew-before", "30d"], { renewBefore: { durationMs: 30 * 86_400_000 } }],
    [["--renew-before", "25%"], { renewBefore: { share: 0.25 } }],
    [["--overdue-after", "0"], { overdueAfterMs: 0 }],
    [["--overdue-after", "90m"], { overdueAfterMs: 5_400_000 }],
    [["--request-timeout", "5s"], { requestTimeoutMs: 5000 }],
  ])("%j", (argv, expected) => {
    expect(parseStatusArgs(argv)).toMatchObject(expected);
  });

  it("takes --renew-before from the flag, else the agent's CERT_AGENT_RENEW_BEFORE, else the agent's default", () => {
    const env = { CERT_AGENT_RENEW_BEFORE: "720h" };
    expect(parseStatusArgs(["--renew-before", "25%"], env)).toMatchObject({ renewBefore: { share: 0.25 } });
    expect(parseStatusArgs([], env)).toMatchObject({ renewBefore: { durationMs: 720 * 3_600_000 } });
    expect(parseStatusArgs([], { CERT_AGENT_RENEW_BEFORE: "" })).toMatchObject({ renewBefore: DEFAULT_RENEW_BEFORE });
    expect(() => parseStatusArgs([], { CERT_AGENT_RENEW_BEFORE: "soon" })).toThrow('invalid --renew-before "soon": use a share of the lifetime (1/3, 33%, 0.33) or a duration (720h, 30d) (from CERT_AGENT_RENEW_BEFORE)');
  });

  it.each([["--help"], ["-h"], ["-n", "mesh", "--help"]])("%j asks for help", (...argv) => {
    expect(parseStatusArgs(argv)).toBe("help");
  });

  it.each<[string[], string]>([
    [["-n", "mesh", "-A"], "--namespace and --all-namespaces exclude each other"],
    [["-n", "Mesh_1"], '--namespace: "Mesh_1" is not a valid namespace name'],
    [["-o", "wide"], '--output: "wide" is not one of table, json, yaml'],
    [["--renew-before", "3/3"], 'invalid --renew-before "3/3": use a share of the lifetime (1/3, 33%, 0.33) or a duration (720h, 30d)'],
    [["--overdue-after", "1d"], '--overdue-after: invalid duration "1d": use a number with ms, s, m or h (e.g. 5s, 10m)'],
    [["--overdue-after=-1h"], "--overdue-after: invalid duration"],
    [["--request-timeout", "0"], "--request-timeout: must be positive"],
    [["--no-such-flag"], "Unknown option '--no-such-flag'"],
    [["extra"], "Unexpected argument 'extra'"],
    [["-n"], "Option '-n, --namespace <value>' argument missing"],
  ])("%j is a usage error (one line)", (argv, message) => {
    let error: unknown;
    try {
      parseStatusArgs(argv);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toContain(message);
    expect((error as Error).message).not.toContain("\n");
  });
});

describe("statusUsage", () => {
  it("documents every flag and the three exit codes", () => {
    const text = statusUsage();
    for (const flag of ["--kubeconfig", "-n, --namespace", "-A, --all-namespaces", "-o, --output", "--renew-before", "--overdue-after", "--request-timeout", "-h, --help"]) {
      expect(text).toContain(flag);
    }
    expect(text).toContain("[env CERT_AGENT_RENEW_BEFORE, default 1/3]");
    expect(text).toMatch(/^ {2}0 {2}all is well$/m);
    expect(text).toMatch(/^ {2}1 {2}a certificate is FAILED, expired, or more than --overdue-after past its renewal time$/m);
    expect(text).toMatch(/^ {2}2 {2}usage error, or the API server could not be read/m);
  });
});
