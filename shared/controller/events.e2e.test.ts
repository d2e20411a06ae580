// KubeEventRecorder against the real kube-apiserver of the shared control plane: identical repeats
// fold into one Event with a count (also seen through events.k8s.io/v1), concurrent repeats too;
// (defect 9) a repeat whose original Event has expired must become a new Event instead of a lost
// 404 PATCH, and reportingInstance / source.host must name the replica, not the component.
import { CoreV1Api, CoreV1Event, EventsV1Api, KubeConfig, V1ConfigMap } from "@kubernetes/client-node";
import { type AddressInfo, createServer, type Socket } from "node:net";
import { Writable } from "node:stream";
import { createTestNamespace, describeWithControlPlane, sharedKubeConfig, type TestNamespace } from "../../e2e/controlplane/testenv";
import { FakeClock, systemClock } from "./clock";
import { defaultReportingInstance, KubeEventRecorder, type EventTarget } from "./events";
import { createLogger } from "./logger";

describeWithControlPlane("KubeEventRecorder on a real API server", () => {
  let kc: KubeConfig;
  let core: CoreV1Api;
  let ns: TestNamespace;
  let logLines: Record<string, unknown>[];

  const logger = () =>
    createLogger(
      "debug",
      new Writable({
        write(chunk: Buffer, _enc, done) {
          for (const line of chunk.toString("utf8").split("\n")) if (line.trim()) logLines.push(JSON.parse(line) as Record<string, unknown>);
          done();
        },
      }),
    );

  /** A real object for the Events to be about. */
  async function target(name: string): Promise<EventTarget> {
    const cm: V1ConfigMap = await core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name } } });
    return { apiVersion: "v1", kind: "ConfigMap", metadata: cm.metadata! };
  }

  async function eventsAbout(t: EventTarget): Promise<CoreV1Event[]> {
    const list = await core.listNamespacedEvent({ namespace: ns.name, fieldSelector: `involvedObject.uid=${t.metadata.uid}` });
    return list.items;
  }

  beforeAll(async () => {
    kc = sharedKubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    ns = await createTestNamespace(kc, "events");
  });

  afterAll(async () => {
    await ns?.cleanup();
  });

  beforeEach(() => {
    logLines = [];
  });

  it("folds identical repeats into one Event: count, firstTimestamp kept, lastTimestamp of the last; events.k8s.io/v1 sees the same", async () => {
    const clock = new FakeClock(new Date("2026-05-01T10:00:00Z"));
    const recorder = new KubeEventRecorder(kc, "cert-agent", clock, logger(), { reportingInstance: "cert-agent-0" });
    const t = await target("repeats");
    for (let i = 0; i < 5; i++) {
      await recorder.record(t, "Warning", "IssuerFailed", "signing CA is offline");
      clock.advance(60_000);
    }
    const [event, ...more] = await eventsAbout(t);
    expect(more).toHaveLength(0);
    expect(event).toMatchObject({ type: "Warning", reason: "IssuerFailed", message: "signing CA is offline", count: 5 });
    expect(new Date(event!.firstTimestamp!).toISOString()).toBe("2026-05-01T10:00:00.000Z");
    expect(new Date(event!.lastTimestamp!).toISOString()).toBe("2026-05-01T10:04:00.000Z");
    // The same object through the newer API, as `kubectl events` reads it.
    const viaEventsApi = await kc.makeApiClient(EventsV1Api).readNamespacedEvent({ name: event!.metadata!.name!, namespace: ns.name });
    expect(viaEventsApi).toMatchObject({ reason: "IssuerFailed", note: "signing CA is offline", deprecatedCount: 5 });
    expect(logLines.filter((l) => l.message === "could not record event")).toEqual([]);
  });

  it("folds concurrent identical repeats too (one Event, the full count), and keeps another type, reason or message apart", async () => {
    const recorder = new KubeEventRecorder(kc, "cert-agent", systemClock, logger(), { reportingInstance: "cert-agent-0" });
    const t = await target("concurrent");
    await Promise.all([...Array(6)].map(() => recorder.record(t, "Warning", "BounceWaiting", "waiting for istio-system/istiod")));
    await recorder.record(t, "Normal", "BounceWaiting", "waiting for istio-system/istiod");
    await recorder.record(t, "Warning", "BounceTimedOut", "waiting for istio-system/istiod");
    await recorder.record(t, "Warning", "BounceWaiting", "waiting for gateways/ingress");
    const summary = (await eventsAbout(t)).map((e) => `${e.type} ${e.reason} ${e.message} x${e.count}`).sort();
    expect(summary).toEqual([
      "Normal BounceWaiting waiting for istio-system/istiod x1",
      "Warning BounceTimedOut waiting for istio-system/istiod x1",
      "Warning BounceWaiting waiting for gateways/ingress x1",
      "Warning BounceWaiting waiting for istio-system/istiod x6",
    ]);
  });

  it("flush: every Event recorded without waiting is written when it resolves (the reconcilers do not await them; the agent flushes on stop)", async () => {
    const recorder = new KubeEventRecorder(kc, "cert-agent", systemClock, logger(), { reportingInstance: "cert-agent-0" });
    const t = await target("flushed");
    for (const reason of ["Pending", "CertificateRequested", "Issued", "Finished"]) void recorder.record(t, "Normal", reason, `step ${reason}`);
    void recorder.record(t, "Normal", "Finished", "step Finished");
    await recorder.flush();
    const summary = (await eventsAbout(t)).map((e) => `${e.reason} x${e.count}`).sort();
    expect(summary).toEqual(["CertificateRequested x1", "Finished x2", "Issued x1", "Pending x1"]);
  });

  it("flush gives up after its bound when the API server does not answer", async () => {
    // Accepts connections and never answers: the Event write hangs.
    let recording: Promise<void> | undefined;
    const sockets: Socket[] = [];
    const silent = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = silent.address() as AddressInfo;
      const unanswered = new KubeConfig();
      unanswered.loadFromOptions({
        clusters: [{ name: "c", server: `https://127.0.0.1:${port}`, skipTLSVerify: true }], users: [{ name: "u" }],
        contexts: [{ name: "x", cluster: "c", user: "u" }], currentContext: "x",
      });
      const recorder = new KubeEventRecorder(unanswered, "cert-agent", systemClock, logger(), { reportingInstance: "cert-agent-0" });
      let written = false;
      recording = recorder.record(await target("unanswered"), "Normal", "Pending", "never written").then(() => { written = true; });
      const started = Date.now();
      await recorder.flush(300);
      expect(Date.now() - started).toBeGreaterThanOrEqual(250);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(written).toBe(false);
    } finally {
      for (const socket of sockets) socket.destroy();
      silent.close();
      // The write fails once the connection is gone: let it log here, not in the next test.
      await recording;
    }
  });

  it("records a repeat whose original Event expired as a new Event (defect 9: the 404 PATCH lost it)", async () => {
    const recorder = new KubeEventRecorder(kc, "cert-agent", systemClock, logger(), { reportingInstance: "cert-agent-0" });
    const t = await target("expired-original");

    await recorder.record(t, "Warning", "IssuerFailed", "the issuer said no");
    await recorder.record(t, "Warning", "IssuerFailed", "the issuer said no");
    const [folded, ...more] = await eventsAbout(t);
    expect(more).toHaveLength(0);
    expect(folded).toMatchObject({ reason: "IssuerFailed", message: "the issuer said no", count: 2 });

    // What the API server's --event-ttl does to an old Event.
    await core.deleteNamespacedEvent({ name: folded!.metadata!.name!, namespace: ns.name });
    expect(await eventsAbout(t)).toHaveLength(0);

    await recorder.record(t, "Warning", "IssuerFailed", "the issuer said no");
    const after = await eventsAbout(t);
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ type: "Warning", reason: "IssuerFailed", message: "the issuer said no", count: 1 });
    expect(after[0]!.metadata!.name).not.toBe(folded!.metadata!.name);
    expect(logLines.filter((l) => l.message === "could not record event")).toEqual([]);

    // The new Event is the one later repeats fold into.
    await recorder.record(t, "Warning", "IssuerFailed", "the issuer said no");
    const again = await eventsAbout(t);
    expect(again).toHaveLength(1);
    expect(again[0]).toMatchObject({ count: 2 });
    expect(again[0]!.metadata!.name).toBe(after[0]!.metadata!.name);
  });

  it("names the replica in reportingInstance and source.host (defect 9: it was the component name)", async () => {
    const recorder = new KubeEventRecorder(kc, "cert-agent", systemClock, logger(), { reportingInstance: "cert-agent-6f7c9d-x2kqp" });
    const t = await target("reporting-instance");
    await recorder.record(t, "Normal", "Issued", "issued");
    const [event] = await eventsAbout(t);
    expect(event).toMatchObject({
      reportingComponent: "cert-agent",
      reportingInstance: "cert-agent-6f7c9d-x2kqp",
      source: { component: "cert-agent", host: "cert-agent-6f7c9d-x2kqp" },
    });
  });

  it("defaults reportingInstance to POD_NAME, else the host name", async () => {
    const recorder = new KubeEventRecorder(kc, "cert-agent", systemClock, logger());
    const t = await target("default-instance");
    await recorder.record(t, "Normal", "Issued", "issued");
    const [event] = await eventsAbout(t);
    expect(event!.reportingInstance).toBe(defaultReportingInstance());
    expect(defaultReportingInstance({ POD_NAME: "cert-agent-abc" })).toBe("cert-agent-abc");
  });
});
