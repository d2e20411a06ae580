// Renewal before expiry on the real API server, with the agent's and the issuer's clocks shifted
// forward by the test (a 1-day certificate renews about 16 h in; nobody waits 16 h): on time and
// not before, without a gap in the target secret; after a restart between scheduling and renewing;
// at once, with a Warning, when the certificate is found expired at start.
import { KEY_ALGORITHM_ANNOTATION, REVISION_ANNOTATION } from "../agent/constants";
import { renewalTime } from "../agent/renewal";
import { Clock, systemClock } from "../shared/controller/clock";
import { describeCertificate } from "../shared/pki";
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
import { ReferenceIssuer } from "./issuer/issuer";

jest.setTimeout(120_000);

/** The wall clock plus an offset the test moves: time travel for the agent and the issuer together. */
class ShiftedClock implements Clock {
  offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
  setTimeout(fn: () => void, ms: number) {
    return systemClock.setTimeout(fn, ms);
  }
  /** Sets the clock so that it reads `at` now. */
  jumpTo(at: Date): void {
    this.offsetMs = at.getTime() - Date.now();
  }
}

describeWithControlPlane("renewal before expiry", () => {
  let c: Clients;
  const running: { stop(): Promise<void> }[] = [];
  beforeAll(() => {
    c = clients(sharedKubeConfig());
  });
  afterEach(async () => {
    while (running.length) await running.pop()!.stop();
  });

  // Resync every second: a clock jump is noticed at the next resync, as in production at --resync-period.
  const AGENT_ARGS = ["--resync-period", "1s", "--log-level", "debug"];

  async function setUp(prefix: string, clock: ShiftedClock): Promise<{ ns: string; agent: InProcessAgent; issuer: ReferenceIssuer }> {
    const ns = await createNamespace(c, prefix);
    await createSigningSecret(c, ns);
    const issuer = await startIssuer(c.kc, ns, { clock });
    running.push(issuer);
    const agent = await startAgent(ns, clock);
    return { ns, agent, issuer };
  }

  async function startAgent(ns: string, clock: ShiftedClock): Promise<InProcessAgent> {
    const agent = await startInProcessAgent(c.kc, ["--namespace", ns, ...AGENT_ARGS], { clock });
    running.push(agent);
    return agent;
  }

  /** Issues a 1-day certificate; returns its PEM, validity and renewal time. */
  async function issueOneDay(ns: string) {
    await c.issued.create(ns, newIssuedCertificate(ns, "mesh-ca", { ttlDays: 1, annotations: { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" } }));
    await waitForState(c, ns, "mesh-ca", "FINISHED");
    const pem = decodeSecret((await getSecretOrUndefined(c, ns, "cacerts"))!)["ca-cert.pem"];
    const { notBefore, notAfter } = await describeCertificate(pem);
    return { pem, notBefore, notAfter, due: renewalTime({ notBefore, notAfter, pem }) };
  }

  /** The new certificate is written (the target carries revision 2) and the IssuedCertificate FINISHED. */
  const renewed = (ns: string) => waitFor("renewed (target of revision 2, FINISHED)", async () => {
    const target = await getSecretOrUndefined(c, ns, "cacerts");
    const ic = await c.issued.get(ns, "mesh-ca");
    return target?.metadata?.annotations?.[REVISION_ANNOTATION] === "2" && ic?.status?.state === "FINISHED" || undefined;
  }, 60_000);
  const reconcilesOf = (agent: InProcessAgent) => agent.logs().split("\n").filter((l) => l.includes('"message":"reconciled"') && l.includes('"name":"mesh-ca"')).length;
  const revision = async (ns: string) => (await c.issued.get(ns, "mesh-ca"))?.metadata.annotations?.[REVISION_ANNOTATION];
  const reasons = async (ns: string) =>
    (await c.core.listNamespacedEvent({ namespace: ns, fieldSelector: "involvedObject.name=mesh-ca" })).items.map((e) => `${e.type}/${e.reason}`);

  it("renews at the renewal time and not before, rotating the key without a gap in the target secret", async () => {
    const clock = new ShiftedClock();
    const { ns, agent } = await setUp("renew-on-time", clock);
    const first = await issueOneDay(ns);
    expect(first.due.getTime() - first.notBefore.getTime()).toBeGreaterThan(15 * 3_600_000);
    expect(first.due.getTime() - first.notBefore.getTime()).toBeLessThanOrEqual(16 * 3_600_000);

    // A minute before: several resync passes, no renewal.
    clock.jumpTo(new Date(first.due.getTime() - 60_000));
    const seen = reconcilesOf(agent);
    await waitFor("three more passes", async () => reconcilesOf(agent) >= seen + 3 || undefined, 30_000);
    expect(await revision(ns)).toBe("1");

    // Poll the target the whole time from here: it must always hold a matching key and certificate.
    const problems: string[] = [];
    const certificates = new Set<string>();
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const s = await getSecretOrUndefined(c, ns, "cacerts");
        if (!s) { problems.push("target secret missing"); continue; }
        const d = decodeSecret(s);
        certificates.add(d["ca-cert.pem"]);
        const check = opensslCheckBundle(d, clock.now());
        if (check.verify !== "ca-cert.pem: OK" || !check.keyMatches) problems.push("bundle inconsistent");
      }
    })();
    try {
      clock.jumpTo(first.due);
      await renewed(ns);
    } finally {
      polling = false;
      await poller;
    }
    expect(problems).toEqual([]);
    const second = decodeSecret((await getSecretOrUndefined(c, ns, "cacerts"))!);
    expect(second["ca-cert.pem"]).not.toBe(first.pem);
    expect([...certificates]).toEqual([first.pem, second["ca-cert.pem"]]);
    await waitFor("the Event", async () => (await reasons(ns)).includes("Normal/Renewing") || undefined);
    expect(await reasons(ns)).not.toContain("Warning/RenewalOverdue");
  });

  it("a restart between scheduling and renewing still renews on time", async () => {
    const clock = new ShiftedClock();
    const { ns, agent } = await setUp("renew-restart", clock);
    const { due } = await issueOneDay(ns);
    await agent.stop();
    running.splice(running.indexOf(agent), 1);
    // Down for most of the wait; back 5 s before the renewal time.
    clock.jumpTo(new Date(due.getTime() - 5_000));
    await startAgent(ns, clock);
    await waitFor("the renewal to begin", async () => (await revision(ns)) === "2" || undefined, 60_000);
    expect(clock.now().getTime()).toBeGreaterThanOrEqual(due.getTime());
    await renewed(ns);
    await waitFor("the Event", async () => (await reasons(ns)).includes("Normal/Renewing") || undefined);
  });

  it("an expired certificate found at start is renewed at once, with a Warning", async () => {
    const clock = new ShiftedClock();
    const { ns, agent } = await setUp("renew-expired", clock);
    const { notAfter } = await issueOneDay(ns);
    await agent.stop();
    running.splice(running.indexOf(agent), 1);
    clock.jumpTo(new Date(notAfter.getTime() + 3_600_000));
    await startAgent(ns, clock);
    await renewed(ns);
    await waitFor("the Warning", async () => (await reasons(ns)).includes("Warning/CertificateExpired") || undefined);
    const fresh = await describeCertificate(decodeSecret((await getSecretOrUndefined(c, ns, "cacerts"))!)["ca-cert.pem"]);
    expect(fresh.notAfter.getTime()).toBeGreaterThan(clock.now().getTime());
  });
});
