// API-server faults (issue 11), each on a control plane of this file's own: kube-apiserver frozen with
// SIGSTOP for longer than the agent's request timeout while IssuedCertificates are mid-workflow; a
// restart of it while they wait in REQUESTED and ISSUED; an etcd compaction under the running agent,
// which its watches can only survive by relisting (410 Gone). Each time: /healthz and /readyz say what is
// happening, nothing crashes, every IssuedCertificate finishes without help, with one key and one
// CertificateRequest, its target verified by openssl, and no key material in anything published.
// e2e/resilience.e2e.test.ts has one restart + compaction; this file is the complete proof.
import { readFileSync } from "node:fs";
import { KEY_ALGORITHM_ANNOTATION, KEY_FINGERPRINT_ANNOTATION } from "../agent/constants";
import { CONTROLLER_NAME } from "../agent/issued-certificate-controller";
import { IssuedCertificate } from "../shared/api/types";
import type { ApiStatus, ManagerStatus } from "../shared/controller/status";
import { ObjectClient } from "../shared/kube/api";
import { importPrivateKeyPem, publicKeyFingerprint } from "../shared/pki";
import { ControlPlane, startControlPlane } from "./controlplane/controlplane";
import { describeWithControlPlane } from "./controlplane/testenv";
import {
  answerRequest,
  Clients,
  clients,
  createNamespace,
  createSigningSecret,
  decodeSecret,
  fetchText,
  getSecretOrUndefined,
  InProcessAgent,
  loadKubeConfig,
  newIssuedCertificate,
  opensslCheckBundle,
  publishedTexts,
  SecretVersions,
  startInProcessAgent,
  startIssuer,
  waitFor,
  waitForState,
} from "./harness";
import { findKeyMaterial, KeyRecorder } from "./key-hygiene";

jest.setTimeout(180_000);

const P256 = { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" };
const OK = { verify: "ca-cert.pem: OK", keyMatches: true };
const STANDARD = ["->PENDING", "PENDING->REQUESTED", "REQUESTED->ISSUED", "ISSUED->FINISHED"];
/** The agent's own request timeout: a reconcile (its requests included) is abandoned after this. */
const RECONCILE_TIMEOUT = "2s";
const PROBES = ["--health-probe-bind-address", "127.0.0.1:0", "--stall-threshold", "3s"];

type LogLine = Record<string, unknown> & { message: string };
const logLines = (agent: InProcessAgent): LogLine[] => agent.logs().split("\n").filter(Boolean).map((l) => JSON.parse(l) as LogLine);
const transitions = (agent: InProcessAgent, name: string) =>
  logLines(agent).filter((l) => l.message === "transition" && l.name === name).map((l) => `${l.from}->${l.to}`);
const keygens = async (agent: InProcessAgent) =>
  (await agent.metrics.keygenSeconds.get()).values.filter((v) => v.metricName?.endsWith("_count")).reduce((n, v) => n + v.value, 0);

/** One namespace with a signing secret, private keys recorded (before any agent starts) and target writes counted. */
async function setUp(c: Clients, prefix: string) {
  const ns = await createNamespace(c, prefix);
  const root = await createSigningSecret(c, ns);
  const keys = new KeyRecorder(c.kc, ns);
  await keys.start();
  // Its watch starts again after a restart of the API server (KeyRecorder's does not), and feeds keys.
  const versions = new SecretVersions(c.kc, ns, keys);
  await versions.start();
  return { ns, root, keys, versions, stop: () => { keys.stop(); versions.stop(); } };
}

/**
 * What must hold for each IssuedCertificate at the end: FINISHED by the four usual steps, its target
 * written once and verified by openssl, certifying the key of its one CertificateRequest (generation 1).
 */
async function expectFinishedOnce(c: Clients, ns: string, agent: InProcessAgent, versions: SecretVersions, names: string[]): Promise<void> {
  for (const name of names) {
    expect(transitions(agent, name)).toEqual(STANDARD);
    const data = decodeSecret((await getSecretOrUndefined(c, ns, `t-${name}`))!);
    expect(opensslCheckBundle(data)).toEqual(OK);
    expect(versions.contents(`t-${name}`)).toHaveLength(1);
    const ic = (await c.issued.get(ns, name))!;
    const requests = (await c.requests.list(ns)).items.filter((r) => r.metadata.ownerReferences?.some((o) => o.uid === ic.metadata.uid));
    expect(requests.map((r) => r.metadata.generation)).toEqual([1]);
    expect(await publicKeyFingerprint((await importPrivateKeyPem(data["ca-key.pem"])).publicKey)).toBe(requests[0]!.metadata.annotations![KEY_FINGERPRINT_ANNOTATION]);
  }
}

async function expectNoKeyMaterial(c: Clients, ns: string, agent: InProcessAgent, keys: KeyRecorder): Promise<void> {
  for (const s of (await c.core.listNamespacedSecret({ namespace: ns })).items) keys.add(s);
  expect(keys.keys.size).toBeGreaterThan(1); // the issuer's root key and the agent's
  expect(await findKeyMaterial(await publishedTexts(c, ns, agent.logs()), keys.keys)).toEqual([]);
}

type Statusz = ManagerStatus & { api: ApiStatus };
const statusz = async (agent: InProcessAgent) => JSON.parse((await fetchText(agent.healthPort!, "/statusz")).body) as Statusz;

/** The process state letter of /proc/<pid>/stat: T is stopped (SIGSTOP). */
const processState = (pid: number) => readFileSync(`/proc/${pid}/stat`, "utf8").replace(/^.*\) /s, "")[0];

describeWithControlPlane("API-server faults", () => {
  let cp: ControlPlane;
  let c: Clients;

  beforeAll(async () => {
    // --min-request-timeout=5: the API server ends each watch after 5-10 s (default 30-60 min), so a
    // watch re-opens from its last resourceVersion soon after a compaction, as one does in production
    // within the hour (or after client-node's 30 s without events); the test need not wait that long.
    cp = await startControlPlane({ apiServerFlags: ["--min-request-timeout=5"] });
    c = clients(loadKubeConfig(cp.kubeconfigPath));
  });
  afterAll(async () => {
    await cp?.stop();
  });

  it("kube-apiserver frozen (SIGSTOP) longer than the request timeout mid-workflow: /healthz names the stall and the silent API server, /readyz stays ready, nothing crashes; after SIGCONT every IssuedCertificate finishes without help", async () => {
    const env = await setUp(c, "apiserver-frozen");
    const { ns } = env;
    let armed = false;
    let frozenAt = 0;
    // The freeze comes right before the agent records the first ISSUED: that IssuedCertificate's target is
    // written and its status write hangs; the others wait in REQUESTED (answered or not) or PENDING.
    const wrap = (inner: ObjectClient<IssuedCertificate>) => {
      const wrapped = Object.create(inner) as ObjectClient<IssuedCertificate>;
      wrapped.replaceStatus = (body: IssuedCertificate) => {
        if (armed && !frozenAt && body.status?.state === "ISSUED") {
          cp.pauseApiServer();
          frozenAt = Date.now();
        }
        return inner.replaceStatus(body);
      };
      return wrapped;
    };
    const agent = await startInProcessAgent(c.kc, ["--namespace", ns, ...PROBES, "--reconcile-timeout", RECONCILE_TIMEOUT], { wrapIssuedCertificates: wrap });
    let issuer: Awaited<ReturnType<typeof startIssuer>> | undefined;
    const names = ["a", "b", "c", "rsa"];
    try {
      for (const name of names) {
        await c.issued.create(ns, newIssuedCertificate(ns, name, {
          ...(name === "rsa" ? { rsaKeySizeBits: 2048 } : { annotations: P256 }), target: { name: `t-${name}`, namespace: ns },
        }));
      }
      for (const name of names) await waitForState(c, ns, name, "REQUESTED");
      const requestUids = new Map<string, string>();
      for (const name of names) requestUids.set(name, (await c.requests.get(ns, name))!.metadata.uid!);
      armed = true;
      issuer = await startIssuer(c.kc, ns);
      await waitFor("the API server frozen", async () => frozenAt > 0 || undefined, 60_000);
      expect(processState(cp.pids().apiServer!)).toBe("T");

      // Meanwhile: liveness fails once no reconcile has finished for --stall-threshold, and its line says
      // since when the API server has not answered; readiness stays (the cache holds what the server had).
      const stallLine = new RegExp(`^controller:${CONTROLLER_NAME}: work owed for \\d+\\.\\ds without a reconcile finishing \\(stall threshold 3\\.0s; ` +
        `\\d+ waiting, \\d+ running, \\d+ failing; last progress \\S+; the API server last answered (\\d+\\.\\d)s ago(, failed [\\d.]+s ago: .+)?\\)$`);
      await waitFor("/healthz 503 naming the API server", async () => {
        const res = await fetchText(agent.healthPort!, "/healthz");
        return res.status === 503 && res.body.split("\n").some((l) => stallLine.test(l)) ? res : undefined;
      }, 30_000);
      const redAt = Date.now();
      expect(await fetchText(agent.healthPort!, "/readyz")).toEqual({ status: 200, body: "ok\n" });
      // Longer than the request timeout: the agent abandoned a reconcile hung on the frozen server...
      await waitFor("a reconcile abandoned at its deadline", async () =>
        logLines(agent).some((l) => l.message === "reconcile exceeded its deadline, aborted") || undefined, 30_000);
      // ...and longer than a connection attempt may take (undici's 10 s): requests now fail, and say so:
      // aborted with their reconcile at its deadline (request-signal.ts) or timed out connecting.
      const failing = await waitFor("a request failing on the frozen server", async () => {
        const doc = await statusz(agent);
        return doc.api.lastErrorTime && Date.parse(doc.api.lastErrorTime) > frozenAt ? doc : undefined;
      }, 30_000);
      expect(failing).toMatchObject({ healthy: false, ready: true, api: { lastError: expect.stringMatching(/^(get|list|watch|update|create|patch): .*([Tt]imeout|exceeded its deadline of 2000 ms)/) } });
      // Not one answer between /healthz going red and this (answers already on their way at the freeze
      // may arrive a little after it, more so on a loaded machine).
      expect(Date.parse(failing.api.lastSuccessTime!)).toBeLessThan(redAt);
      const named = (await fetchText(agent.healthPort!, "/healthz")).body;
      expect(named).toMatch(/the API server last answered [\d.]+s ago, failed [\d.]+s ago: .*([Tt]imeout|exceeded its deadline of 2000 ms)/);
      const frozenForMs = Date.now() - frozenAt;
      expect(processState(cp.pids().apiServer!)).toBe("T");

      cp.resumeApiServer();
      const resumedAt = Date.now();
      for (const name of names) await waitForState(c, ns, name, "FINISHED", 120_000);
      const finishedAfterMs = Date.now() - resumedAt;
      await waitFor("/healthz 200 again", async () => (await fetchText(agent.healthPort!, "/healthz")).status === 200 || undefined, 60_000);
      process.stderr.write(`[figure] API server frozen ${frozenForMs} ms (request timeout ${RECONCILE_TIMEOUT}); all ${names.length} FINISHED ${finishedAfterMs} ms after SIGCONT\n`);

      // Every one was mid-workflow at the freeze (none had recorded ISSUED), and finished as usual.
      for (const name of names) {
        const finished = logLines(agent).find((l) => l.message === "transition" && l.name === name && l.to === "FINISHED")!;
        expect(Date.parse(finished.timestamp as string)).toBeGreaterThan(frozenAt);
        expect((await c.requests.get(ns, name))!.metadata.uid).toBe(requestUids.get(name));
      }
      await expectFinishedOnce(c, ns, agent, env.versions, names);
      expect(await keygens(agent)).toBe(names.length);
      await expectNoKeyMaterial(c, ns, agent, env.keys);
    } finally {
      cp.resumeApiServer();
      await agent.stop();
      await issuer?.stop();
      env.stop();
    }
  });

  it("kube-apiserver restarted while one IssuedCertificate waits in REQUESTED and another is ISSUED: /healthz says it is gone; back, both finish without help, with one key and one request each", async () => {
    const env = await setUp(c, "apiserver-restart");
    const { ns, root } = env;
    let stopping: Promise<void> | undefined;
    // The API server goes down right after the agent recorded ISSUED for "issued" (its target written),
    // before it could finish it.
    const wrap = (inner: ObjectClient<IssuedCertificate>) => {
      const wrapped = Object.create(inner) as ObjectClient<IssuedCertificate>;
      wrapped.replaceStatus = async (body: IssuedCertificate) => {
        const result = await inner.replaceStatus(body);
        if (!stopping && body.metadata.name === "issued" && body.status?.state === "ISSUED") {
          stopping = cp.stopApiServer();
          await stopping;
        }
        return result;
      };
      return wrapped;
    };
    const agent = await startInProcessAgent(c.kc, ["--namespace", ns, ...PROBES], { wrapIssuedCertificates: wrap });
    let issuer: Awaited<ReturnType<typeof startIssuer>> | undefined;
    const names = ["requested", "issued"];
    try {
      // No issuer yet: "requested" waits for one. The test answers "issued" itself.
      for (const name of names) {
        await c.issued.create(ns, newIssuedCertificate(ns, name, { annotations: P256, target: { name: `t-${name}`, namespace: ns } }));
        await waitForState(c, ns, name, "REQUESTED");
      }
      await answerRequest(c, ns, "issued", root);
      await waitFor("the API server stopped", async () => (stopping ? true : undefined), 60_000);
      await stopping;
      const stoppedAt = Date.now();
      // The issuer (re)starts while the API server is down: it cannot list, and keeps trying.
      issuer = await startIssuer(c.kc, ns);
      // Meanwhile: every reconcile of "issued" fails; after --stall-threshold /healthz says why.
      const failedPasses = () => logLines(agent).filter((l) => l.message === "reconcile failed, will retry" && l.key === `${ns}/issued`).length;
      await waitFor("5 failed passes of 'issued'", async () => failedPasses() >= 5 || undefined, 60_000);
      const red = await waitFor("/healthz 503", async () => {
        const res = await fetchText(agent.healthPort!, "/healthz");
        return res.status === 503 && /controller:/.test(res.body) ? res : undefined;
      }, 30_000);
      expect(red.body).toMatch(new RegExp(`^controller:${CONTROLLER_NAME}: .*; the API server last answered [\\d.]+s ago, failed [\\d.]+s ago: \\w+: .*ECONNREFUSED`, "m"));
      expect(await fetchText(agent.healthPort!, "/readyz")).toEqual({ status: 200, body: "ok\n" });
      expect((await statusz(agent)).api.lastError).toMatch(/ECONNREFUSED/);

      await cp.startApiServer();
      const downMs = Date.now() - stoppedAt;
      for (const name of names) await waitForState(c, ns, name, "FINISHED", 120_000);
      await waitFor("/healthz 200 again", async () => (await fetchText(agent.healthPort!, "/healthz")).status === 200 || undefined, 60_000);
      process.stderr.write(`[figure] API server down ${downMs} ms; 'issued' failed ${failedPasses()} passes meanwhile and finished after\n`);
      // An outage is not a failure of the IssuedCertificate: no FAILED, no new issuance.
      expect(logLines(agent).filter((l) => l.message === "transition" && l.to === "FAILED")).toEqual([]);
      await expectFinishedOnce(c, ns, agent, env.versions, names);
      expect(await keygens(agent)).toBe(names.length);
      await expectNoKeyMaterial(c, ns, agent, env.keys);
    } finally {
      if (stopping) await cp.startApiServer().catch(() => undefined); // idempotent only when it is down
      await agent.stop();
      await issuer?.stop();
      env.stop();
    }
  });

  it("etcd compacted under the running agent: its watches get 410 and relist, then a new IssuedCertificate and a deleted target are handled", async () => {
    const env = await setUp(c, "etcd-compacted");
    const { ns } = env;
    const issuer = await startIssuer(c.kc, ns);
    const agent = await startInProcessAgent(c.kc, ["--namespace", ns]);
    // LISTs of IssuedCertificates in one namespace: only the agent's informer makes them (the issuer GETs
    // them, the garbage collector lists cluster-wide), and client-node relists only after a 410.
    const agentLists = async () => (await cp.kubectl(["get", "--raw", "/metrics"])).split("\n")
      .filter((l) => l.startsWith("apiserver_request_total{") && l.includes('resource="issuedcertificates"') && l.includes('scope="namespace"') && l.includes('verb="LIST"'))
      .reduce((n, l) => n + Number(l.split(" ").pop()), 0);
    try {
      await c.issued.create(ns, newIssuedCertificate(ns, "before", { annotations: P256, target: { name: "t-before", namespace: ns } }));
      await waitForState(c, ns, "before", "FINISHED");
      const listsBefore = await agentLists();
      expect(listsBefore).toBeGreaterThanOrEqual(1);

      // Move etcd past every resourceVersion the agent has seen, then compact: its next watch from one of
      // them is answered 410 Gone, and only a new LIST brings it back.
      for (let i = 0; i < 5; i++) await c.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: `bump-${i}` } } });
      const compactedAt = Date.now();
      expect(await cp.compactEtcd()).toBeGreaterThan(0);
      await waitFor("the agent's IssuedCertificate informer to relist", async () => (await agentLists()) > listsBefore || undefined, 60_000);
      process.stderr.write(`[figure] relisted ${Date.now() - compactedAt} ms after the compaction\n`);
      // The 410 path, not an error: no informer stopped.
      expect(logLines(agent).filter((l) => l.message === "informer stopped, restarting")).toEqual([]);

      // The re-established watches work: a new object and a deleted target are noticed.
      await c.issued.create(ns, newIssuedCertificate(ns, "after", { annotations: P256, target: { name: "t-after", namespace: ns } }));
      await waitForState(c, ns, "after", "FINISHED");
      await c.core.deleteNamespacedSecret({ name: "t-before", namespace: ns });
      await waitFor("the deleted target re-issued", async () =>
        logLines(agent).some((l) => l.message === "transition" && l.name === "before" && l.reason === "TargetSecretMissing") || undefined, 60_000);
      await waitForState(c, ns, "before", "FINISHED");
      expect(opensslCheckBundle(decodeSecret((await getSecretOrUndefined(c, ns, "t-before"))!))).toEqual(OK);
      expect(transitions(agent, "before")).toEqual([...STANDARD, "FINISHED->PENDING", ...STANDARD.slice(1)]);
      await expectFinishedOnce(c, ns, agent, env.versions, ["after"]);
      expect((await c.requests.get(ns, "before"))!.metadata.generation).toBe(2); // the one request, rewritten for the re-issue
      expect(await keygens(agent)).toBe(3);
      await expectNoKeyMaterial(c, ns, agent, env.keys);
    } finally {
      await agent.stop();
      await issuer.stop();
      env.stop();
    }
  });
});
