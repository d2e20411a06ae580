import { ConfigError, parseConfig, usage } from "./config";

describe("parseConfig", () => {
  it("has defaults that need no flags", () => {
    expect(parseConfig([], {})).toEqual({
      kubeconfig: undefined,
      serviceAccountDir: "/var/run/secrets/kubernetes.io/serviceaccount",
      namespace: undefined,
      secretNamespaces: undefined,
      podNamespaces: undefined,
      logLevel: "info",
      concurrency: 4,
      metricsBindAddress: "127.0.0.1:8080",
      healthProbeBindAddress: "127.0.0.1:8081",
      leaderElect: false,
      leaderElectionNamespace: "default",
      leaderElectionId: "cert-agent",
      retryBaseDelayMs: 10_000,
      retryMaxDelayMs: 600_000,
      resyncMs: 300_000,
      clockSkewToleranceMs: 300_000,
      reconcileTimeoutMs: 60_000,
      conflictRecheckMs: 30_000,
      bounceStrategy: "rollout",
      bounceTimeoutMs: 600_000,
      renewBefore: { share: 1 / 3 },
      stallThresholdMs: 600_000,
      clockSkewWarningMs: 60_000,
      rootChangePolicy: "accept",
      rootOverlapMs: 25 * 3_600_000,
    });
  });

  it("takes --stall-threshold and --clock-skew-warning from flags or the environment, positive only", () => {
    expect(parseConfig(["--stall-threshold", "90s", "--clock-skew-warning", "5s"], {})).toMatchObject({ stallThresholdMs: 90_000, clockSkewWarningMs: 5000 });
    expect(parseConfig([], { CERT_AGENT_STALL_THRESHOLD: "2m", CERT_AGENT_CLOCK_SKEW_WARNING: "30s" })).toMatchObject({ stallThresholdMs: 120_000, clockSkewWarningMs: 30_000 });
    expect(() => parseConfig(["--stall-threshold", "0"], {})).toThrow(/^--stall-threshold: must be positive$/);
    expect(() => parseConfig(["--clock-skew-warning", "soon"], {})).toThrow(/^--clock-skew-warning: invalid duration "soon"/);
  });

  it("takes --renew-before as a share or a duration", () => {
    expect(parseConfig(["--renew-before", "30d"], {})).toMatchObject({ renewBefore: { durationMs: 30 * 86_400_000 } });
    expect(parseConfig([], { CERT_AGENT_RENEW_BEFORE: "25%" })).toMatchObject({ renewBefore: { share: 0.25 } });
  });

  it("refuses an unknown bounce strategy", () => {
    expect(() => parseConfig(["--bounce-strategy", "kill"], {})).toThrow('--bounce-strategy: "kill" is not one of rollout, evict, delete');
    expect(parseConfig(["--bounce-strategy", "evict"], {})).toMatchObject({ bounceStrategy: "evict" });
  });

  it("accepts a zero clock-skew tolerance (strict) but no negative or zero deadline", () => {
    expect(parseConfig(["--clock-skew-tolerance", "0"], {})).toMatchObject({ clockSkewToleranceMs: 0 });
    expect(() => parseConfig(["--reconcile-timeout", "0"], {})).toThrow(/--reconcile-timeout: must be positive/);
    expect(() => parseConfig(["--clock-skew-tolerance", "-1s"], {})).toThrow(/--clock-skew-tolerance/);
  });

  it("takes flags over environment over defaults", () => {
    const config = parseConfig(["--concurrency", "8", "--leader-elect"], {
      CERT_AGENT_CONCURRENCY: "2",
      CERT_AGENT_LOG_LEVEL: "debug",
      CERT_AGENT_NAMESPACE: "gloo-mesh",
      KUBECONFIG: "/tmp/k",
    });
    expect(config).toMatchObject({ concurrency: 8, logLevel: "debug", namespace: "gloo-mesh", kubeconfig: "/tmp/k", leaderElect: true });
  });

  it("reads booleans and durations from the environment", () => {
    expect(parseConfig([], { CERT_AGENT_LEADER_ELECT: "true", CERT_AGENT_RETRY_BASE_DELAY: "500ms" })).toMatchObject({
      leaderElect: true,
      retryBaseDelayMs: 500,
    });
  });

  it.each([
    [["--concurrency", "0"], /--concurrency: "0" must be an integer from 1 to 64/],
    [["--concurrency", "two"], /--concurrency/],
    [["--log-level", "loud"], /--log-level: "loud" is not one of error, warn, info, debug/],
    [["--retry-base-delay", "soon"], /--retry-base-delay: invalid duration "soon"/],
    [["--retry-base-delay", "1h", "--retry-max-delay", "1m"], /--retry-max-delay \(1m\) is below --retry-base-delay \(1h\)/],
    [["--metrics-bind-address", "localhost"], /--metrics-bind-address: invalid bind address/],
    [["--renew-before", "150%"], /^invalid --renew-before "150%": use a share of the lifetime \(1\/3, 33%, 0.33\) or a duration \(720h, 30d\)$/],
    [["--namespace", "Bad_NS"], /--namespace: "Bad_NS" is not a valid namespace name/],
    [["--bogus"], /Unknown option '--bogus'/],
    [["positional"], /positional/],
  ])("refuses %p with one clear message", (argv, message) => {
    expect(() => parseConfig(argv as string[], {})).toThrow(ConfigError);
    expect(() => parseConfig(argv as string[], {})).toThrow(message);
  });

  it("refuses a bad value from the environment too", () => {
    expect(() => parseConfig([], { CERT_AGENT_LEADER_ELECT: "maybe" })).toThrow(/--leader-elect: "maybe" is not true or false/);
  });

  it("answers --help with the usage listing every flag and its variable", () => {
    expect(parseConfig(["--help"], {})).toBe("help");
    for (const flag of ["--kubeconfig", "--namespace", "--log-level", "--concurrency", "CERT_AGENT_RETRY_MAX_DELAY"]) expect(usage()).toContain(flag);
  });

  it("lists each flag in the usage: <value> for strings, the env variable, the default when there is one", () => {
    const lines = usage().split("\n");
    expect(lines[0]).toBe("usage: cert-agent [flags]");
    expect(lines.find((l) => l.startsWith("  --concurrency"))).toMatch(/^ {2}--concurrency <value> {2}.+ \[env CERT_AGENT_CONCURRENCY, default 4\]$/);
    expect(lines.find((l) => l.startsWith("  --leader-elect "))).toMatch(/^ {2}--leader-elect {2}.+ \[env CERT_AGENT_LEADER_ELECT(, default false)?\]$/);
    expect(lines.find((l) => l.startsWith("  --kubeconfig"))).toMatch(/^ {2}--kubeconfig <value> {2}.+ \[env KUBECONFIG\]$/);
    expect(lines.at(-1)).toBe("  --help  print this");
  });

  it("names its error ConfigError and keeps parseArgs' message on one line", () => {
    let caught: unknown;
    try {
      parseConfig(["--bogus"], {});
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as Error).name).toBe("ConfigError");
    expect((caught as Error).message).not.toMatch(/\n/);
    expect((caught as Error).message).not.toMatch(/\s{2,}/);
  });

  it.each<[string[], Record<string, string>, Record<string, unknown>]>([
    [[], { CERT_AGENT_CONCURRENCY: "" }, { concurrency: 4 }], // an empty variable is unset
    [["--concurrency", "1"], {}, { concurrency: 1 }],
    [["--concurrency", "64"], {}, { concurrency: 64 }],
    [[], { CERT_AGENT_LEADER_ELECT: "1" }, { leaderElect: true }],
    [[], { CERT_AGENT_LEADER_ELECT: "0" }, { leaderElect: false }],
    [[], { CERT_AGENT_LEADER_ELECT: "TRUE" }, { leaderElect: true }],
    [[], { CERT_AGENT_LEADER_ELECT: "false" }, { leaderElect: false }],
    [["--retry-base-delay", "1m", "--retry-max-delay", "1m"], {}, { retryBaseDelayMs: 60_000, retryMaxDelayMs: 60_000 }],
    [["--namespace", "a"], {}, { namespace: "a" }],
    [["--namespace", `a${"b".repeat(61)}c`], {}, { namespace: `a${"b".repeat(61)}c` }],
    [["--secret-namespaces", "istio-system, mesh,istio-system,"], {}, { secretNamespaces: ["istio-system", "mesh"] }],
    [["--secret-namespaces", " , "], {}, { secretNamespaces: undefined }],
    [["--pod-namespaces", "istio-system,gateways"], {}, { podNamespaces: ["istio-system", "gateways"] }],
    [[], { CERT_AGENT_POD_NAMESPACES: "istio-system" }, { podNamespaces: ["istio-system"] }],
    [["--namespace", "mesh"], { CERT_AGENT_SECRET_NAMESPACES: "istio-system,mesh" }, { namespace: "mesh", secretNamespaces: ["istio-system", "mesh"] }],
    [["--root-change-policy", "require-approval"], {}, { rootChangePolicy: "require-approval" }],
    [[], { CERT_AGENT_ROOT_CHANGE_POLICY: "require-approval" }, { rootChangePolicy: "require-approval" }],
  ])("accepts %j %j", (argv, env, expected) => {
    expect(parseConfig(argv, env)).toMatchObject(expected);
  });

  it("refuses a boolean variable that is neither true nor false", () => {
    expect(() => parseConfig([], { CERT_AGENT_LEADER_ELECT: "yes" })).toThrow('--leader-elect: "yes" is not true or false');
  });

  it.each<[string[], string]>([
    [["--concurrency", "65"], '--concurrency: "65" must be an integer from 1 to 64'],
    [["--resync-period", "0"], "--resync-period: must be positive"],
    [["--namespace=-ns"], '--namespace: "-ns" is not a valid namespace name'],
    [["--namespace", "ns-"], '--namespace: "ns-" is not a valid namespace name'],
    [["--namespace", "x.ns"], '--namespace: "x.ns" is not a valid namespace name'],
    [["--namespace", "a".repeat(64)], `--namespace: "${"a".repeat(64)}" is not a valid namespace name`],
    [["--secret-namespaces", "istio-system,Mesh"], '--secret-namespaces: "Mesh" is not a valid namespace name'],
    [["--pod-namespaces", "gateways,-x"], '--pod-namespaces: "-x" is not a valid namespace name'],
    [["--namespace", "mesh", "--secret-namespaces", "istio-system"],
      "--secret-namespaces (istio-system) must include --namespace (mesh): the staged private keys live there"],
    [["--root-change-policy", "ask"], '--root-change-policy: "ask" is not one of accept, require-approval'],
    // parseArgs' hint spans three lines: joined with one space each, nothing else of it lost.
    [["--concurrency", "--leader-elect"], "Option '--concurrency' argument is ambiguous. " +
      "Did you forget to specify the option argument for '--concurrency'? To specify an option argument starting with a dash use '--concurrency=-XYZ'."],
  ])("refuses %j", (argv, message) => {
    expect(() => parseConfig(argv, {})).toThrow(message);
  });
});

