// What the agent learns from its own API requests: the verb of each request, the clock skew a
// response proves, the error counter and the last success (ApiHealth), and that ObservedKubeConfig
// really sees every request client-node makes (typed calls and watches) on a local HTTP server.
import { createServer, IncomingMessage, Server, ServerResponse } from "node:http";
import { AddressInfo } from "node:net";
import { PassThrough } from "node:stream";
import { CoreV1Api, KubeConfig, Watch } from "@kubernetes/client-node";
import { Registry } from "prom-client";
import { ApiCallOutcome, ObservedKubeConfig, kubernetesVerb } from "../kube/observed-kubeconfig";
import { currentSignal, runWithSignal } from "./request-signal";
import { ApiHealth, clockSkewMs, isFailure, NO_RESPONSE_CODE } from "./api-health";
import { FakeClock } from "./clock";
import { createLogger } from "./logger";

const T = new Date("2026-03-01T12:00:00.000Z");
const ms = (n: number) => new Date(T.getTime() + n);

describe("kubernetesVerb", () => {
  it.each<[string, string, string]>([
    ["GET", "https://k:6443/api/v1/namespaces/ns/secrets/s", "get"],
    ["GET", "https://k:6443/api/v1/namespaces/ns/secrets", "list"],
    ["GET", "https://k:6443/api/v1/secrets?labelSelector=a%3Db", "list"],
    ["GET", "https://k:6443/api/v1/secrets?watch=true&resourceVersion=5", "watch"],
    ["GET", "https://k:6443/apis/certificates.mesh.gloo.solo.io/v1/namespaces/ns/issuedcertificates?watch=1", "watch"],
    ["GET", "https://k:6443/apis/certificates.mesh.gloo.solo.io/v1/namespaces/ns/issuedcertificates/ic", "get"],
    ["GET", "https://k:6443/apis/coordination.k8s.io/v1/namespaces/ns/leases/cert-agent", "get"],
    ["GET", "https://k:6443/api/v1/namespaces/ns", "get"],
    ["GET", "https://k:6443/api/v1/namespaces", "list"],
    ["GET", "https://k:6443/apis/apps/v1", "get"],
    ["POST", "https://k:6443/api/v1/namespaces/ns/events", "create"],
    ["PUT", "https://k:6443/apis/coordination.k8s.io/v1/namespaces/ns/leases/l", "update"],
    ["PUT", "https://k:6443/apis/certificates.mesh.gloo.solo.io/v1/namespaces/ns/issuedcertificates/ic/status", "update"],
    ["PATCH", "https://k:6443/api/v1/namespaces/ns/events/e", "patch"],
    ["DELETE", "https://k:6443/api/v1/namespaces/ns/pods/p", "delete"],
    ["DELETE", "https://k:6443/api/v1/namespaces/ns/pods", "deletecollection"],
    ["HEAD", "https://k:6443/healthz", "head"],
  ])("%s %s -> %s", (method, url, verb) => {
    expect(kubernetesVerb(method, url)).toBe(verb);
  });
});

describe("clockSkewMs: the skew closest to zero that a response allows", () => {
  // The Date header has whole seconds: the server's clock stood in [date, date + 1 s).
  it.each<[string, Date, Date, Date, number]>([
    ["same clocks, instant answer", T, T, T, 0],
    ["same clocks, the server 0.9 s into its second", ms(900), ms(900), T, 0],
    ["ours 2 min ahead", ms(120_000), ms(120_000), T, 119_000],
    ["ours 2 min ahead, 400 ms into the second", ms(120_400), ms(120_400), T, 119_400],
    ["ours 2 min behind", ms(-120_000), ms(-120_000), T, -120_000],
    ["ours 2 min ahead but a 3 min round trip: cannot tell", ms(-60_000), ms(120_000), T, 0],
    ["ours 5 s ahead over a 1 s round trip", ms(5000), ms(6000), T, 4000],
  ])("%s", (_name, sentAt, receivedAt, date, expected) => {
    expect(clockSkewMs(sentAt, receivedAt, date)).toBe(expected);
  });
});

function setup(clockSkewWarningMs = 60_000) {
  const clock = new FakeClock(T);
  const registry = new Registry();
  const lines: Record<string, unknown>[] = [];
  const stream = new PassThrough();
  stream.on("data", (chunk: Buffer) => chunk.toString().split("\n").filter(Boolean).forEach((l) => lines.push(JSON.parse(l) as Record<string, unknown>)));
  const api = new ApiHealth({ clock, registry, log: createLogger("debug", stream), clockSkewWarningMs });
  const errors = async () => (await registry.getSingleMetric("cert_agent_api_errors_total")!.get()).values.map((v) => ({ ...v.labels, value: v.value }));
  const skew = async () => (await registry.getSingleMetric("cert_agent_clock_skew_seconds")!.get()).values[0]?.value;
  return { clock, registry, api, lines, errors, skew };
}

describe("ApiHealth", () => {
  it.each<[string, ApiCallOutcome, boolean]>([
    ["200", { status: 200 }, false],
    ["201", { status: 201 }, false],
    ["404: an answer (absent)", { status: 404 }, false],
    ["409: an answer (read again)", { status: 409 }, false],
    ["400", { status: 400 }, true],
    ["401", { status: 401 }, true],
    ["403", { status: 403 }, true],
    ["410", { status: 410 }, true],
    ["422", { status: 422 }, true],
    ["429", { status: 429 }, true],
    ["500", { status: 500 }, true],
    ["503", { status: 503 }, true],
    ["no response", { error: new Error("connect ECONNREFUSED") }, true],
  ])("isFailure(%s) is %p", (_name, outcome, expected) => {
    expect(isFailure(outcome)).toBe(expected);
  });

  it("counts failures by verb and code, never successes; keeps the last success and the last error", async () => {
    const t = setup();
    t.api.begin("get")({ status: 200 });
    expect(t.api.snapshot()).toMatchObject({ lastSuccessAt: T });
    expect(t.api.snapshot().lastErrorAt).toBeUndefined();
    t.clock.advance(1000);
    t.api.begin("get")({ status: 403 });
    t.api.begin("update")({ status: 503 });
    t.api.begin("update")({ status: 503 });
    t.api.begin("get")({ status: 404 });
    t.api.begin("update")({ status: 409 });
    t.clock.advance(1000);
    t.api.begin("watch")({ error: new Error("connect ECONNREFUSED 127.0.0.1:6443") });
    expect(await t.errors()).toEqual([
      { verb: "get", code: "403", value: 1 },
      { verb: "update", code: "503", value: 2 },
      { verb: "watch", code: NO_RESPONSE_CODE, value: 1 },
    ]);
    expect(t.api.snapshot()).toMatchObject({
      lastSuccessAt: ms(1000),
      lastErrorAt: ms(2000),
      lastError: "watch: connect ECONNREFUSED 127.0.0.1:6443",
    });
    t.api.begin("list")({ status: 500 });
    expect(t.api.snapshot().lastError).toBe("list: HTTP 500");
  });

  it("measures the skew from the Date header of any response (errors too), between sending and receiving", async () => {
    const t = setup();
    expect(t.api.snapshot()).toEqual({ clockSkewExceeded: false, clockSkewWarningMs: 60_000 });
    const finish = t.api.begin("get");
    t.clock.advance(300);
    // The server's clock is 30 s behind ours.
    finish({ status: 403, date: new Date(T.getTime() - 30_000).toUTCString() });
    expect(t.api.snapshot()).toMatchObject({ clockSkewMs: 29_000, clockSkewMeasuredAt: ms(300), clockSkewExceeded: false });
    expect(await t.skew()).toBe(29);
  });

  it("flags a skew beyond the warning threshold, logging once when it crosses and once when it is back", async () => {
    const t = setup(60_000);
    const answer = (serverBehindMs: number) => t.api.begin("get")({ status: 200, date: new Date(t.clock.now().getTime() - serverBehindMs).toUTCString() });
    answer(61_000); // 60 s at least: not beyond
    expect(t.api.snapshot()).toMatchObject({ clockSkewMs: 60_000, clockSkewExceeded: false });
    answer(62_000);
    answer(90_000);
    expect(t.api.snapshot()).toMatchObject({ clockSkewMs: 89_000, clockSkewExceeded: true });
    answer(-90_000); // the server ahead: negative skew, beyond too
    expect(t.api.snapshot()).toMatchObject({ clockSkewMs: -90_000, clockSkewExceeded: true });
    expect(await t.skew()).toBe(-90);
    answer(0);
    expect(t.api.snapshot()).toMatchObject({ clockSkewMs: 0, clockSkewExceeded: false });
    expect(t.lines.map((l) => [l.level, l.message, l.skewSeconds])).toEqual([
      ["warn", "clock skew with the API server exceeds the warning threshold", 61],
      ["info", "clock skew with the API server is back within the warning threshold", 0],
    ]);
  });

  it("ignores a Date header it cannot read", () => {
    const t = setup();
    t.api.begin("get")({ status: 200, date: "yesterday" });
    expect(t.api.snapshot().clockSkewMs).toBeUndefined();
  });
});

describe("ObservedKubeConfig on a local HTTP server", () => {
  let server: Server;
  let port: number;
  let handle: (req: IncomingMessage, res: ServerResponse) => void;

  beforeAll(async () => {
    server = createServer((req, res) => handle(req, res));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  function kubeConfig(server: string): KubeConfig {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: "c", server, skipTLSVerify: true }],
      users: [{ name: "u", token: "t" }],
      contexts: [{ name: "x", cluster: "c", user: "u" }],
      currentContext: "x",
    });
    return kc;
  }

  it("sees typed calls and watches, with their verb, status and Date header; the source KubeConfig stays unobserved", async () => {
    const t = setup();
    // The API server's clock: 5 min behind the agent's (fake) one.
    const serverDate = new Date(T.getTime() - 300_000).toUTCString();
    const seen: string[] = [];
    handle = (req, res) => {
      seen.push(`${req.method} ${req.url}`);
      res.setHeader("Date", serverDate);
      res.setHeader("content-type", "application/json");
      if (req.url!.includes("watch=true")) return res.writeHead(403).end(JSON.stringify({ kind: "Status", code: 403 }));
      if (req.url!.endsWith("/secrets/missing")) return res.writeHead(404).end(JSON.stringify({ kind: "Status", code: 404 }));
      if (req.method === "POST") return res.writeHead(500).end(JSON.stringify({ kind: "Status", code: 500 }));
      res.writeHead(200).end(JSON.stringify({ kind: "SecretList", apiVersion: "v1", metadata: {}, items: [] }));
    };
    const source = kubeConfig(`http://127.0.0.1:${port}`);
    const kc = new ObservedKubeConfig(source, t.api);
    const core = kc.makeApiClient(CoreV1Api);

    await core.listNamespacedSecret({ namespace: "ns" });
    expect(t.api.snapshot()).toMatchObject({ lastSuccessAt: T, clockSkewMs: 299_000 });
    await expect(core.readNamespacedSecret({ namespace: "ns", name: "missing" })).rejects.toMatchObject({ code: 404 });
    await expect(core.createNamespacedConfigMap({ namespace: "ns", body: { metadata: { name: "cm" } } })).rejects.toMatchObject({ code: 500 });
    const done = new Promise<unknown>((resolve) => {
      void new Watch(kc).watch("/api/v1/secrets", {}, () => {}, resolve);
    });
    expect(await done).toMatchObject({ statusCode: 403 });

    // Through the source KubeConfig: not counted.
    await source.makeApiClient(CoreV1Api).createNamespacedConfigMap({ namespace: "ns", body: { metadata: { name: "cm" } } }).catch(() => {});

    expect(seen).toHaveLength(5);
    expect(await t.errors()).toEqual([
      { verb: "create", code: "500", value: 1 },
      { verb: "watch", code: "403", value: 1 },
    ]);
  });

  it("a request that gets no response at all counts as code <error>", async () => {
    const t = setup();
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const core = new ObservedKubeConfig(kubeConfig(`http://127.0.0.1:${closedPort}`), t.api).makeApiClient(CoreV1Api);
    await expect(core.listNamespacedSecret({ namespace: "ns" })).rejects.toThrow();
    expect(await t.errors()).toEqual([{ verb: "list", code: NO_RESPONSE_CODE, value: 1 }]);
    expect(t.api.snapshot().lastError).toMatch(/^list: /);
  });

  it("a request made for a reconcile is aborted with it: a server that never answers no longer holds it (request-signal.ts)", async () => {
    const t = setup();
    let arrived = 0;
    handle = () => {
      arrived++; // and never answer
    };
    const core = new ObservedKubeConfig(kubeConfig(`http://127.0.0.1:${port}`), t.api).makeApiClient(CoreV1Api);
    const abort = new AbortController();
    const request = runWithSignal(abort.signal, () => core.listNamespacedSecret({ namespace: "ns" }));
    await new Promise<void>((resolve) => {
      const poll = () => (arrived ? resolve() : setImmediate(poll));
      poll();
    });
    const started = Date.now();
    abort.abort(new Error("reconcile of ns/x exceeded its deadline"));
    await expect(request).rejects.toThrow();
    expect(Date.now() - started).toBeLessThan(5_000);
    // Outside a reconcile, requests carry no signal of ours.
    expect(currentSignal()).toBeUndefined();
    server.closeAllConnections();
  });

  it("reuses its kept-alive connections (client-node alone opens one per request), and close() ends them", async () => {
    const t = setup();
    let ports: number[] = [];
    handle = (req, res) => {
      ports.push(req.socket.remotePort!);
      res.setHeader("content-type", "application/json");
      res.writeHead(200).end(JSON.stringify({ kind: "SecretList", apiVersion: "v1", metadata: {}, items: [] }));
    };
    try {
      const kc = new ObservedKubeConfig(kubeConfig(`http://127.0.0.1:${port}`), t.api);
      const core = kc.makeApiClient(CoreV1Api);
      for (let i = 0; i < 10; i++) await core.listNamespacedSecret({ namespace: "ns" });
      // One request after another: one or two connections (a connection goes back to the pool just
      // after its response has been read), never one each.
      expect(ports).toHaveLength(10);
      expect(new Set(ports).size).toBeLessThanOrEqual(2);
      await kc.close();
      // The source KubeConfig, for comparison: a new connection per request.
      ports = [];
      const plain = kubeConfig(`http://127.0.0.1:${port}`).makeApiClient(CoreV1Api);
      for (let i = 0; i < 3; i++) await plain.listNamespacedSecret({ namespace: "ns" });
      expect(new Set(ports).size).toBe(3);
    } finally {
      server.closeAllConnections();
    }
  });

  it("a cluster without TLS settings of its own still goes out on a dispatcher it can observe", () => {
    const kc = new ObservedKubeConfig(kubeConfig("https://k:6443"), setup().api);
    expect(kc.createDispatcherOptions({ name: "c", server: "https://k:6443", skipTLSVerify: false }, {})).toMatchObject({ type: "agent" });
    expect(new KubeConfig().createDispatcherOptions({ name: "c", server: "https://k:6443", skipTLSVerify: false }, {})).toEqual({ type: "none" });
  });
});
