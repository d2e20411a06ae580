// Health that tells the truth, on a real kube-apiserver: /statusz shows the facts (leadership, queues,
// informers, the last API success, the clock skew read from the API server's Date header, and one
// row per IssuedCertificate with its notAfter); /healthz goes 503 when the API server has been gone
// for --stall-threshold and 200 again once it is back; a clock that is off shows as skew. Every
// wait is on a condition, never a fixed sleep.
import { renewalTime } from "../agent/renewal";
import { CoordinationV1Api, V1MicroTime } from "@kubernetes/client-node";
import { Clock, systemClock } from "../shared/controller/clock";
import type { ApiStatus, ManagerStatus } from "../shared/controller/status";
import { describeCertificate } from "../shared/pki";
import { BOUNCER_NAME } from "../agent/bouncer/pod-bounce-controller";
import type { CertificateStatus } from "../agent/certificate-status";
import { KEY_ALGORITHM_ANNOTATION } from "../agent/constants";
import { CONTROLLER_NAME } from "../agent/issued-certificate-controller";
import { ControlPlane, startControlPlane } from "./controlplane/controlplane";
import { describeWithControlPlane, sharedKubeConfig } from "./controlplane/testenv";
import {
  clients,
  createNamespace,
  createSigningSecret,
  decodeSecret,
  fetchText,
  getSecretOrUndefined,
  loadKubeConfig,
  newIssuedCertificate,
  startInProcessAgent,
  startIssuer,
  waitFor,
  waitForState,
} from "./harness";

jest.setTimeout(180_000);

const P256 = { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" };
const PROBES = ["--health-probe-bind-address", "127.0.0.1:0", "--metrics-bind-address", "127.0.0.1:0"];

/** One sample of a metric without labels (or with exactly these labels), from the /metrics text. */
function sample(text: string, name: string, labels = ""): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ""} `));
  return line === undefined ? undefined : Number(line.split(" ").pop());
}

type Statusz = ManagerStatus & { api: ApiStatus; certificates: CertificateStatus[] };

async function statusz(port: number): Promise<Statusz> {
  const res = await fetchText(port, "/statusz");
  expect(res.status).toBe(200);
  return JSON.parse(res.body) as Statusz;
}

describeWithControlPlane("/healthz and /statusz with the API server stopped and started", () => {
  let cp: ControlPlane;

  beforeAll(async () => {
    cp = await startControlPlane();
  });
  afterAll(async () => {
    await cp?.stop();
  });

  it("statusz tells the facts; healthz goes red after --stall-threshold without the API server and green once it is back", async () => {
    const c = clients(loadKubeConfig(cp.kubeconfigPath));
    const ns = await createNamespace(c, "health");
    await createSigningSecret(c, ns);
    const issuer = await startIssuer(c.kc, ns);
    const agent = await startInProcessAgent(c.kc, ["--namespace", ns, ...PROBES, "--stall-threshold", "3s"]);
    const port = agent.healthPort!;
    try {
      await c.issued.create(ns, newIssuedCertificate(ns, "before", { annotations: P256 }));
      await waitForState(c, ns, "before", "FINISHED");
      const pem = decodeSecret((await getSecretOrUndefined(c, ns, "cacerts"))!)["ca-cert.pem"];
      const { notBefore, notAfter } = await describeCertificate(pem);

      // The facts while all is well.
      expect(await fetchText(port, "/healthz")).toEqual({ status: 200, body: "ok\n" });
      const fine = await statusz(port);
      expect(fine).toMatchObject({
        leadership: "no leader election", working: true, healthy: true, healthFailures: [], ready: true, stallThresholdSeconds: 3,
        api: { lastError: null, clockSkewSeconds: 0, clockSkewWarningSeconds: 60, clockSkewExceeded: false },
        certificates: [{ namespace: ns, name: "before", state: "FINISHED", error: "", notAfter: notAfter.toISOString(),
          renewalTime: renewalTime({ notBefore, notAfter, pem }).toISOString(), bounce: null }],
      });
      expect(Date.now() - Date.parse(fine.api.lastSuccessTime!)).toBeLessThan(30_000);
      const controllers = fine.controllers;
      expect(controllers.map((x) => x.name).sort()).toEqual([CONTROLLER_NAME, BOUNCER_NAME].sort());
      expect(controllers.find((x) => x.name === CONTROLLER_NAME)).toMatchObject({ queueDepth: 0, lastProgressTime: expect.any(String) });
      // The certificates section reads the controllers' shared informers: no informer twice.
      const informers = fine.informers.map((i) => i.name);
      expect(new Set(informers).size).toBe(informers.length);
      expect(fine.informers).toEqual(informers.map((name) => expect.objectContaining({ name, synced: true, failingSince: null })));
      let metrics = (await fetchText(agent.metricsPort!, "/metrics")).body;
      expect([sample(metrics, "cert_agent_ready"), sample(metrics, "cert_agent_leader"), sample(metrics, "cert_agent_clock_skew_seconds")]).toEqual([1, 1, 0]);

      // The API server goes away.
      const stoppedAt = Date.now();
      await cp.stopApiServer();
      const red = await waitFor("/healthz 503", async () => {
        const res = await fetchText(port, "/healthz");
        return res.status === 503 ? res : undefined;
      }, 60_000);
      const redAfterMs = Date.now() - stoppedAt;
      // Every line names a failing check; the informers are what notices first (the controllers owe no work).
      const lines = red.body.trim().split("\n");
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) expect(line).toMatch(/^informer:[a-z]+: no working list\/watch for \d+\.\ds \(stall threshold 3\.0s, \d+ restarts; last error: .+\)$/);
      expect(redAfterMs).toBeGreaterThanOrEqual(3000);
      // Still ready: the caches hold what the server had; readiness is about the cache, liveness about progress.
      expect((await fetchText(port, "/readyz")).status).toBe(200);
      const down = await statusz(port);
      expect(down).toMatchObject({ healthy: false, api: { lastError: expect.stringMatching(/^(watch|list|get): /) } });
      expect(Date.parse(down.api.lastErrorTime!)).toBeGreaterThanOrEqual(stoppedAt);
      metrics = (await fetchText(agent.metricsPort!, "/metrics")).body;
      expect(sample(metrics, "cert_agent_api_errors_total", 'verb="watch",code="<error>"')).toBeGreaterThan(0);

      // And comes back.
      const restartedAt = Date.now();
      await cp.startApiServer();
      const startedAt = Date.now();
      await waitFor("/healthz 200", async () => (await fetchText(port, "/healthz")).status === 200 || undefined, 90_000);
      const greenAfterMs = Date.now() - startedAt;
      const back = await statusz(port);
      expect(back).toMatchObject({ healthy: true, ready: true });
      expect(back.informers.every((i) => i.failingSince === null)).toBe(true);
      expect(Date.parse(back.api.lastSuccessTime!)).toBeGreaterThanOrEqual(restartedAt);
      console.log(`[figure] /healthz 503 ${redAfterMs} ms after stopApiServer() was called (--stall-threshold 3s); ` +
        `200 again ${greenAfterMs} ms after startApiServer() resolved (${startedAt - restartedAt} ms to restart it)`);

      // It still works.
      await c.issued.create(ns, newIssuedCertificate(ns, "after", { annotations: P256, target: { name: "cacerts-after", namespace: ns } }));
      await waitForState(c, ns, "after", "FINISHED", 90_000);
    } finally {
      await agent.stop();
      await issuer.stop();
    }
  });
});

describeWithControlPlane("clock skew with the API server", () => {
  it("an agent whose clock is 150 s ahead sees about that much skew in /statusz and cert_agent_clock_skew_seconds, beyond --clock-skew-warning", async () => {
    const c = clients(sharedKubeConfig());
    const ns = await createNamespace(c, "skew");
    const ahead: Clock = { now: () => new Date(Date.now() + 150_000), setTimeout: systemClock.setTimeout };
    const agent = await startInProcessAgent(c.kc, ["--namespace", ns, ...PROBES, "--clock-skew-warning", "1m"], { clock: ahead });
    try {
      // The informers' LISTs are answered with a Date header: the skew is measured at once.
      const doc = await waitFor("a skew measurement", async () => {
        const s = await statusz(agent.healthPort!);
        return s.api.clockSkewSeconds !== null ? s : undefined;
      });
      // The Date header has whole seconds: the skew shown is the smallest the answer allows, in (149, 150].
      expect(doc.api.clockSkewSeconds).toBeGreaterThan(148);
      expect(doc.api.clockSkewSeconds).toBeLessThanOrEqual(150);
      expect(doc.api).toMatchObject({ clockSkewWarningSeconds: 60, clockSkewExceeded: true });
      const gauge = sample((await fetchText(agent.metricsPort!, "/metrics")).body, "cert_agent_clock_skew_seconds")!;
      expect(gauge).toBeGreaterThan(148);
      expect(gauge).toBeLessThanOrEqual(150);
      expect(agent.logs()).toContain("clock skew with the API server exceeds the warning threshold");
    } finally {
      await agent.stop();
    }
  });
});

describeWithControlPlane("leader election in /statusz, /readyz and /healthz", () => {
  it("leading and standing by are both healthy and ready; a replica that lost its Lease and still runs is neither", async () => {
    const c = clients(sharedKubeConfig());
    const ns = await createNamespace(c, "health-le");
    const timings = { leaseDurationMs: 4000, renewDeadlineMs: 3000, retryPeriodMs: 500 };
    const lost: string[] = [];
    const start = (identity: string) => startInProcessAgent(c.kc, ["--namespace", ns, ...PROBES, "--leader-elect",
      "--leader-election-namespace", ns, "--leader-election-id", "health"], { identity, leaseTimingsMs: timings, onLostLeadership: () => lost.push(identity) });
    const a = await start("agent-a");
    let b: Awaited<ReturnType<typeof start>> | undefined;
    try {
      await waitFor("agent-a leading, its caches synced", async () => {
        const doc = await statusz(a.healthPort!);
        return (doc.leadership === "leading" && doc.ready) || undefined;
      });
      b = await start("agent-b");
      const standby = await statusz(b.healthPort!);
      expect(standby).toMatchObject({ identity: "agent-b", leadership: "standby", working: false, healthy: true, ready: true });
      expect(await statusz(a.healthPort!)).toMatchObject({ identity: "agent-a", leadership: "leading", working: true, healthy: true, ready: true });
      const gauges = async (port: number) => {
        const text = (await fetchText(port, "/metrics")).body;
        return [sample(text, "cert_agent_ready"), sample(text, "cert_agent_leader")];
      };
      expect(await gauges(a.metricsPort!)).toEqual([1, 1]);
      expect(await gauges(b.metricsPort!)).toEqual([1, 0]);

      // Someone else takes the Lease: agent-a notices at its next renewal. Its onLostLeadership does
      // not exit here (the default does), so it goes on running: that is what /healthz reports.
      const leases = c.kc.makeApiClient(CoordinationV1Api);
      await waitFor("the Lease overwritten", async () => {
        const lease = await leases.readNamespacedLease({ name: "health", namespace: ns });
        try {
          await leases.replaceNamespacedLease({ name: "health", namespace: ns, body: {
            ...lease, spec: { ...lease.spec, holderIdentity: "intruder", renewTime: new V1MicroTime(Date.now()), leaseDurationSeconds: 60 },
          } });
          return true;
        } catch (err) {
          if ((err as { code?: number }).code === 409) return undefined;
          throw err;
        }
      });
      const red = await waitFor("agent-a /healthz 503", async () => {
        const res = await fetchText(a.healthPort!, "/healthz");
        return res.status === 503 ? res : undefined;
      });
      expect(red.body).toMatch(/^leader-election: the Lease was lost at \S+ and this replica is still running\n$/);
      expect(await fetchText(a.healthPort!, "/readyz")).toEqual({ status: 503, body: "leader-election: the Lease was lost\n" });
      expect(await statusz(a.healthPort!)).toMatchObject({ leadership: "lost", lostLeadershipTime: expect.any(String), healthy: false, ready: false });
      expect(lost).toEqual(["agent-a"]);
      expect(await gauges(a.metricsPort!)).toEqual([0, 0]);
      // The standby replica is unaffected: still waiting (the intruder's Lease is valid for 60 s).
      expect(await statusz(b.healthPort!)).toMatchObject({ leadership: "standby", healthy: true, ready: true });
    } finally {
      await a.stop({ deadlineMs: 0 });
      await b?.stop({ deadlineMs: 0 });
    }
  });
});
