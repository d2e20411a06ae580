// Defects a hostile tester found, proven fixed on the real API server (defect 5, a target at another
// IssuedCertificate's staged-key name, is a pure decision: agent/decide.test.ts and the reconciler's
// unit tests cover it).
import { FAILURE_REASON_ANNOTATION, KEY_ALGORITHM_ANNOTATION, REVISION_ANNOTATION } from "../agent/constants";
import { describeWithControlPlane, sharedKubeConfig } from "./controlplane/testenv";
import {
  Clients,
  clients,
  createNamespace,
  createSigningSecret,
  decodeSecret,
  getSecretOrUndefined,
  InProcessAgent,
  newIssuedCertificate,
  opensslCheckBundle,
  startInProcessAgent,
  startIssuer,
  waitFor,
  waitForState,
} from "./harness";

jest.setTimeout(120_000);

const P256 = { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" };

describeWithControlPlane("defects a hostile tester found, fixed", () => {
  let c: Clients;
  const running: { stop(): Promise<void> }[] = [];
  afterEach(async () => {
    while (running.length) await running.pop()!.stop();
  });
  beforeAll(() => {
    c = clients(sharedKubeConfig());
  });

  async function setUp(prefix: string, agentArgs: string[] = []): Promise<{ ns: string; agent: InProcessAgent }> {
    const ns = await createNamespace(c, prefix);
    await createSigningSecret(c, ns);
    running.push(await startIssuer(c.kc, ns));
    const agent = await startInProcessAgent(c.kc, ["--namespace", ns, ...agentArgs]);
    running.push(agent);
    return { ns, agent };
  }

  /** Events about one object: [type, reason, message]. */
  async function eventsOf(ns: string, name: string): Promise<[string, string, string][]> {
    const list = await c.core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` });
    return list.items.map((e) => [e.type ?? "", e.reason ?? "", e.message ?? ""]);
  }

  it("defect 3: a target in a namespace that does not exist goes FAILED TargetNamespaceMissing with a Warning Event; creating the namespace lets the retry finish", async () => {
    const { ns, agent } = await setUp("no-target-ns", ["--retry-base-delay", "1s", "--retry-max-delay", "2s"]);
    const missing = `${ns}-t`;
    await c.issued.create(ns, newIssuedCertificate(ns, "lost", { annotations: P256, target: { name: "cacerts", namespace: missing } }));

    const failed = await waitForState(c, ns, "lost", "FAILED", 30_000);
    expect(failed.status?.error).toBe(`namespace ${missing} of the target secret does not exist (create Secret ${missing}/cacerts: ` +
      `404: namespaces "${missing}" not found); nothing was written: the target secret is written whole, in one request; ` +
      "create it or change spec.issuedCertificateSecret");
    expect(failed.metadata.annotations?.[FAILURE_REASON_ANNOTATION]).toBe("TargetNamespaceMissing");
    const warning = await waitFor("the Warning Event", async () =>
      (await eventsOf(ns, "lost")).find(([type, reason]) => type === "Warning" && reason === "TargetNamespaceMissing"));
    expect(warning[2]).toBe(failed.status?.error);
    const line = agent.logs().split("\n").filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.message === "transition" && l.reason === "TargetNamespaceMissing");
    expect(line).toMatchObject({ level: "warn", name: "lost", to: "FAILED" });

    await c.core.createNamespace({ body: { metadata: { name: missing } } });
    await waitForState(c, ns, "lost", "FINISHED", 60_000);
    const data = decodeSecret((await getSecretOrUndefined(c, missing, "cacerts"))!);
    expect(opensslCheckBundle(data)).toEqual({ verify: "ca-cert.pem: OK", keyMatches: true });
  });

  it.each<[string, Record<string, string>, string]>([
    ["ca-cert.pem and ca-key.pem", { "ca-cert.pem": "garbage", "ca-key.pem": "garbage" }, "TargetSecretIncomplete"],
    ["root-cert.pem and cert-chain.pem", { "root-cert.pem": "garbage", "cert-chain.pem": "garbage" }, "TargetSecretInvalid"],
  ])("defect 6: garbage written into %s of a FINISHED target: a Warning Event naming it, re-issued, the target valid again (openssl)", async (_name, garbage, reason) => {
    const { ns } = await setUp("corrupt-target");
    await c.issued.create(ns, newIssuedCertificate(ns, "broken", { annotations: P256 }));
    await waitForState(c, ns, "broken", "FINISHED");
    const before = (await getSecretOrUndefined(c, ns, "cacerts"))!;

    // Only the data changes: the labels and annotations that make it ours stay (as with kubectl edit).
    const b64 = (v: string) => Buffer.from(v).toString("base64");
    await c.core.replaceNamespacedSecret({ name: "cacerts", namespace: ns,
      body: { ...before, data: { ...before.data, ...Object.fromEntries(Object.entries(garbage).map(([k, v]) => [k, b64(v)])) } } });

    const warning = await waitFor(`a Warning ${reason}`, async () => (await eventsOf(ns, "broken")).find(([type, r]) => type === "Warning" && r === reason));
    expect(warning[2]).toMatch(/^issuance revision 2: target secret \S+\/cacerts/);
    const reissued = await waitFor("the re-issued target", async () => {
      const secret = await getSecretOrUndefined(c, ns, "cacerts");
      return secret?.metadata?.annotations?.[REVISION_ANNOTATION] === "2" ? secret : undefined;
    });
    await waitForState(c, ns, "broken", "FINISHED");
    expect(opensslCheckBundle(decodeSecret(reissued))).toEqual({ verify: "ca-cert.pem: OK", keyMatches: true });
    const chain = decodeSecret(reissued)["cert-chain.pem"];
    expect(chain).toBe(`${decodeSecret(reissued)["ca-cert.pem"].trimEnd()}\n${decodeSecret(reissued)["root-cert.pem"]}`);
  });
});
