// LeaderElector against the real kube-apiserver of the shared control plane: two candidates with
// short durations (lease 4 s, renew deadline 3 s, retry 500 ms) on the system clock. Lower bounds
// are exact; upper bounds ("soon") leave seconds of room, since CI machines stall under load.
import { CoordinationV1Api, KubeConfig, V1Lease, V1MicroTime } from "@kubernetes/client-node";
import { createServer, type AddressInfo, type Socket } from "node:net";
import { Writable } from "node:stream";
import { createTestNamespace, describeWithControlPlane, sharedKubeConfig, type TestNamespace } from "./controlplane/testenv";
import { systemClock } from "../shared/controller/clock";
import { LeaderElector } from "../shared/controller/leader-election";
import { createLogger } from "../shared/controller/logger";

const LEASE_MS = 4000;
const RENEW_DEADLINE_MS = 3000;
const RETRY_MS = 500;
/** Room for a loaded machine in "soon after" bounds. */
const SLACK_MS = 2500;
/** Longest acquire retry delay: retry period plus 20 % jitter. */
const MAX_RETRY_DELAY_MS = RETRY_MS * 1.2;

interface LogLine {
  level: string;
  message: string;
  identity?: string;
  lease?: string;
  namespace?: string;
  [k: string]: unknown;
}

interface Candidate {
  identity: string;
  elector: LeaderElector;
  lines: LogLine[];
  /** Date.now() at each onStartedLeading / onStoppedLeading. */
  started: number[];
  stopped: number[];
  running: Promise<void>;
}

async function waitUntil(what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return Date.now();
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describeWithControlPlane("LeaderElector on a real Lease", () => {
  let kc: KubeConfig;
  let api: CoordinationV1Api;
  let ns: TestNamespace;
  const candidates: Candidate[] = [];

  beforeAll(async () => {
    kc = sharedKubeConfig();
    api = kc.makeApiClient(CoordinationV1Api);
    ns = await createTestNamespace(kc, "leader-election");
  });

  afterEach(async () => {
    await Promise.all(candidates.splice(0).map((c) => c.elector.stop()));
  });

  afterAll(async () => {
    await ns?.cleanup();
  });

  function candidate(lease: string, identity: string): Candidate {
    const lines: LogLine[] = [];
    const stream = new Writable({
      write(chunk, _encoding, callback) {
        for (const line of String(chunk).split("\n")) if (line.trim()) lines.push(JSON.parse(line));
        callback();
      },
    });
    const started: number[] = [];
    const stopped: number[] = [];
    const elector = new LeaderElector({
      kc,
      namespace: ns.name,
      name: lease,
      identity,
      leaseDurationMs: LEASE_MS,
      renewDeadlineMs: RENEW_DEADLINE_MS,
      retryPeriodMs: RETRY_MS,
      clock: systemClock,
      log: createLogger("debug", stream),
      onStartedLeading: () => void started.push(Date.now()),
      onStoppedLeading: () => void stopped.push(Date.now()),
    });
    const c: Candidate = { identity, elector, lines, started, stopped, running: elector.run() };
    candidates.push(c);
    return c;
  }

  const readLease = (name: string): Promise<V1Lease> => api.readNamespacedLease({ name, namespace: ns.name });
  /** client-node hands MicroTime fields back as the server's string. */
  const timeOf = (value: unknown): number => Date.parse(String(value));
  const linesOf = (c: Candidate, message: string) => c.lines.filter((l) => l.message === message);

  it("exactly one of two candidates leads; after release() the other takes over within about one retry period", async () => {
    const a = candidate("handover", "candidate-a");
    const b = candidate("handover", "candidate-b");
    await waitUntil("a leader", () => a.elector.isLeader() || b.elector.isLeader(), 10_000);
    const [leader, follower] = a.elector.isLeader() ? [a, b] : [b, a];

    const first = await readLease("handover");
    expect(first.spec).toMatchObject({ holderIdentity: leader.identity, leaseDurationSeconds: LEASE_MS / 1000, leaseTransitions: 0 });
    // MicroTime as the API server stores it: RFC 3339 with six fractional digits.
    expect(String(first.spec?.renewTime)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(String(first.spec?.acquireTime)).toMatch(/\.\d{6}Z$/);
    // Exactly one leader, the same one, sampled until the Lease has been renewed twice.
    let renewed = first;
    let renewals = 0;
    await waitUntil("two renewals", async () => {
      expect([a.elector.isLeader(), b.elector.isLeader()]).toEqual([leader === a, leader === b]);
      const lease = await readLease("handover");
      if (timeOf(lease.spec?.renewTime) > timeOf(renewed.spec?.renewTime)) {
        renewals++;
        renewed = lease;
      }
      return renewals >= 2;
    }, 10 * RETRY_MS);
    expect(timeOf(renewed.spec?.renewTime)).toBeGreaterThan(timeOf(first.spec?.renewTime));
    expect(renewed.spec?.acquireTime).toEqual(first.spec?.acquireTime);
    expect(renewed.spec?.leaseTransitions).toBe(0);

    await leader.elector.release();
    const releasedAt = Date.now();
    expect(leader.elector.isLeader()).toBe(false);
    await leader.running; // run() has returned
    await waitUntil("the follower to lead", () => follower.elector.isLeader(), 5000);
    const handover = follower.started[0] - releasedAt;
    // One acquire retry (at most 360 ms) plus request time; an expiry would take 2 s.
    expect(handover).toBeLessThan(MAX_RETRY_DELAY_MS + SLACK_MS);
    expect(leader.stopped).toEqual([]); // release() is not a loss
    expect(follower.started).toHaveLength(1);

    const after = await readLease("handover");
    expect(after.spec).toMatchObject({ holderIdentity: follower.identity, leaseTransitions: 1, leaseDurationSeconds: LEASE_MS / 1000 });

    // One JSON line each for acquisition and release, naming the identity and the Lease.
    const who = { identity: leader.identity, lease: "handover", namespace: ns.name };
    expect(linesOf(leader, "acquired leadership")).toEqual([expect.objectContaining({ level: "info", ...who })]);
    expect(linesOf(leader, "released leadership")).toEqual([expect.objectContaining({ level: "info", ...who })]);
    expect(linesOf(follower, "acquired leadership")).toEqual([
      expect.objectContaining({ level: "info", identity: follower.identity, lease: "handover", leaseTransitions: 1 }),
    ]);
    expect(linesOf(follower, "lease held by another candidate, waiting")).toEqual([expect.objectContaining({ holder: leader.identity })]);
    console.log(`release handover took ${handover} ms`);
  });

  it("a leader that stops renewing without releasing is replaced only after the lease duration", async () => {
    const a = candidate("expiry", "candidate-a");
    await waitUntil("a to lead", () => a.elector.isLeader(), 10_000);
    const b = candidate("expiry", "candidate-b");
    await waitUntil("b to find the Lease held", () => linesOf(b, "lease held by another candidate, waiting").length > 0, 10_000);
    expect(b.elector.isLeader()).toBe(false);

    await a.elector.stop(); // no release: the Lease still names a
    const stoppedAt = Date.now();
    const abandoned = await readLease("expiry");
    expect(abandoned.spec?.holderIdentity).toBe("candidate-a");
    const lastRenew = timeOf(abandoned.spec?.renewTime);

    await waitUntil("b to lead", () => b.elector.isLeader(), 10_000);
    const takenAt = b.started[0];
    // Never before renewTime + leaseDurationSeconds (same clock for both candidates)...
    expect(takenAt).toBeGreaterThanOrEqual(lastRenew + LEASE_MS);
    // (The last renewal was at most about one retry period before stop(); a release hands over in
    // about one retry period, so half the lease duration tells the two apart with room to spare.)
    expect(takenAt - stoppedAt).toBeGreaterThanOrEqual(LEASE_MS / 2);
    // ...and soon after: within one acquire retry, plus a generous margin.
    expect(takenAt - (lastRenew + LEASE_MS)).toBeLessThan(MAX_RETRY_DELAY_MS + SLACK_MS);
    expect(a.stopped).toEqual([]);
    const taken = await readLease("expiry");
    expect(taken.spec).toMatchObject({ holderIdentity: "candidate-b", leaseTransitions: 1 });
    console.log(`takeover ${takenAt - stoppedAt} ms after the leader stopped, ${takenAt - (lastRenew + LEASE_MS)} ms after expiry`);
  });

  it("a leader whose Lease is taken away calls onStoppedLeading and writes no more", async () => {
    const a = candidate("takeaway", "candidate-a");
    await waitUntil("a to lead", () => a.elector.isLeader(), 10_000);

    // Someone else overwrites holderIdentity (optimistic concurrency: retry on a 409 from a's renewals).
    let takenAt = 0;
    let overwritten: V1Lease | undefined;
    await waitUntil(
      "the overwrite",
      async () => {
        const lease = await readLease("takeaway");
        const now = new Date();
        try {
          overwritten = await api.replaceNamespacedLease({
            name: "takeaway",
            namespace: ns.name,
            body: { ...lease, spec: { ...lease.spec, holderIdentity: "intruder", renewTime: new V1MicroTime(now.getTime()), leaseDurationSeconds: 60 } },
          });
          takenAt = now.getTime();
          return true;
        } catch (err) {
          if ((err as { code?: number }).code === 409) return false;
          throw err;
        }
      },
      5000,
    );

    await waitUntil("onStoppedLeading", () => a.stopped.length > 0, 5000);
    const noticed = a.stopped[0] - takenAt;
    // At the next renewal (about one retry period), not by the renew deadline: the reason says so.
    expect(noticed).toBeLessThan(RENEW_DEADLINE_MS);
    expect(a.elector.isLeader()).toBe(false);
    await a.running;
    expect(a.stopped).toHaveLength(1);
    expect(linesOf(a, "leadership lost")).toEqual([
      expect.objectContaining({ level: "error", identity: "candidate-a", lease: "takeaway", reason: 'lease is now held by "intruder"' }),
    ]);

    // The stale leader never writes again. (An absence can only be observed over a window: the
    // renew deadline is the longest a write already in flight could still land.)
    await sleep(RENEW_DEADLINE_MS);
    const later = await readLease("takeaway");
    expect(later.metadata?.resourceVersion).toBe(overwritten?.metadata?.resourceVersion);
    expect(later.spec?.holderIdentity).toBe("intruder");
    console.log(`loss noticed ${noticed} ms after the overwrite`);
  });

  it("requests to an API server that never answers are aborted after requestTimeoutMs; the candidate never leads", async () => {
    // Accepts connections and never answers, not even the TLS handshake.
    const sockets = new Set<Socket>();
    let connections = 0;
    const server = createServer((socket) => {
      connections++;
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const silent = new KubeConfig();
      silent.loadFromOptions({
        clusters: [{ name: "silent", server: `https://127.0.0.1:${port}`, skipTLSVerify: true }],
        users: [{ name: "u", token: "x" }],
        contexts: [{ name: "silent", cluster: "silent", user: "u" }],
        currentContext: "silent",
      });
      const lines: LogLine[] = [];
      const elector = new LeaderElector({
        kc: silent,
        namespace: ns.name,
        name: "unanswered",
        identity: "candidate-x",
        leaseDurationMs: LEASE_MS,
        renewDeadlineMs: RENEW_DEADLINE_MS,
        retryPeriodMs: RETRY_MS,
        requestTimeoutMs: 400,
        clock: systemClock,
        log: createLogger(
          "debug",
          new Writable({
            write(chunk, _e, cb) {
              lines.push(JSON.parse(String(chunk)));
              cb();
            },
          }),
        ),
        onStartedLeading: () => {},
        onStoppedLeading: () => {},
      });
      const started = Date.now();
      const running = elector.run();
      await waitUntil("a logged failure", () => lines.some((l) => l.message === "failed to acquire lease, will retry"), 5000);
      const failedAfter = Date.now() - started;
      expect(failedAfter).toBeGreaterThanOrEqual(400);
      expect(failedAfter).toBeLessThan(400 + SLACK_MS);
      // It keeps trying (new connections after each timeout) and still never leads.
      const seen = connections;
      await waitUntil("two more attempts", () => connections >= seen + 2, 5000);
      expect(elector.isLeader()).toBe(false);
      const stopping = Date.now();
      await elector.release(); // waits at most for the request in flight to time out
      await running;
      expect(Date.now() - stopping).toBeLessThan(400 + SLACK_MS);
      const failures = lines.filter((l) => l.message === "failed to acquire lease, will retry");
      // Logged once, not once per attempt.
      expect(failures).toEqual([
        expect.objectContaining({ level: "warn", identity: "candidate-x", lease: "unanswered", error: "request timed out after 400 ms" }),
      ]);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
