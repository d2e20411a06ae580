// Requests the reconciler saves with the informers' caches (issue 12), and that it never skips a pass
// it needs: a changed IssuedCertificate, a changed target, a due renewal, a namespace the cache does not cover.
import type { IssuedCertificate } from "../shared/api/types";
import type { Secret } from "../shared/kube/secrets";
import { CA_CERT, KEY_ALGORITHM_ANNOTATION } from "./constants";
import { FakeClock } from "../shared/controller/clock";
import { FakeApi } from "../shared/kube/fake";
import { CACHE_LAG_MAX_MS, informerCache, NOT_CACHED, QUIET_PASS_MAX_MS, QuietPasses, readThrough, type ReconcilerCache } from "./reconciler-cache";
import { KEY, newEnv, ReconcilerEnv, TARGET } from "./testing/reconciler-env";

const ic = (namespace: string, name: string, rv: string): IssuedCertificate =>
  ({ metadata: { namespace, name, resourceVersion: rv }, spec: { issuedCertificateSecret: { namespace: "istio-system", name: "cacerts" } } } as IssuedCertificate);
// Typed loosely: informerCache only calls list(), get() and hasSynced().
const source = (items: object[], synced = true) => ({ list: () => items, hasSynced: () => synced }) as never;

describe("informerCache", () => {
  it("answers from the source that covers the namespace, NOT_CACHED elsewhere or before the first LIST", () => {
    const secret = { metadata: { namespace: "istio-system", name: "cacerts", resourceVersion: "7" } };
    const request = { metadata: { namespace: "mesh", name: "a", resourceVersion: "9" } };
    const cache = informerCache({ namespace: "mesh", source: source([ic("mesh", "a", "1")]) }, { namespace: "mesh", source: source([request]) },
      [{ namespace: "istio-system", source: source([secret]) }, { namespace: "mesh", source: source([], false) }]);
    expect(cache.requestVersion("mesh", "a")).toBe("9");
    expect(cache.requestVersion("mesh", "b")).toBeUndefined();
    expect(cache.requestVersion("other", "a")).toBe(NOT_CACHED);
    expect((cache.issuedCertificate("mesh", "a") as IssuedCertificate).metadata.resourceVersion).toBe("1");
    expect(cache.issuedCertificate("mesh", "b")).toBeUndefined();
    expect(cache.issuedCertificate("other", "a")).toBe(NOT_CACHED);
    expect(cache.secretVersion("istio-system", "cacerts")).toBe("7");
    expect(cache.secretVersion("istio-system", "gone")).toBeUndefined();
    expect(cache.secretVersion("mesh", "x")).toBe(NOT_CACHED);
    expect(cache.secretVersion("elsewhere", "x")).toBe(NOT_CACHED);
  });

  it("a source over every namespace covers them all; its get() is used when it has one", () => {
    const get = jest.fn(() => ic("any", "x", "3"));
    const cache = informerCache({ source: { ...(source([]) as object), get } as never }, { source: source([]) }, [{ source: source([]) }]);
    expect((cache.issuedCertificate("any", "x") as IssuedCertificate).metadata.resourceVersion).toBe("3");
    expect(get).toHaveBeenCalledWith("any", "x");
    expect(cache.secretVersion("any", "y")).toBeUndefined();
  });
});

describe("QuietPasses", () => {
  // mesh/a's target is istio-system/cacerts; nothing is at the target's name (no collision); its staged key is mesh/a.
  const cache = (icRv: string | undefined, targetRv: string | undefined | typeof NOT_CACHED, requestRv = "5"): ReconcilerCache => ({
    issuedCertificate: (ns, name) => (ns === "mesh" && name === "a" && icRv !== undefined ? ic(ns, name, icRv) : undefined),
    secretVersion: (ns) => (ns === "istio-system" ? targetRv : undefined),
    requestVersion: () => requestRv,
  });
  const READ = { issuedCertificate: "1", target: "7", collision: "", staged: "", request: "5" };
  it.each<[string, ReconcilerCache, number, number | undefined]>([
    ["nothing changed: quiet until the time remembered", cache("1", "7"), 1_000, 9_000],
    ["the IssuedCertificate changed", cache("2", "7"), 1_000, undefined],
    ["the IssuedCertificate is gone", cache(undefined, "7"), 1_000, undefined],
    ["the target changed", cache("1", "8"), 1_000, undefined],
    ["the target is not ours any more (not cached)", cache("1", undefined), 1_000, undefined],
    ["the target's namespace is not cached", cache("1", NOT_CACHED), 1_000, undefined],
    ["the time remembered has come", cache("1", "7"), 10_000, undefined],
    ["the CertificateRequest changed (the issuer answered)", cache("1", "7", "6"), 1_000, undefined],
  ])("%s", (_name, c, nowMs, expected) => {
    const q = new QuietPasses();
    q.remember("mesh/a", { versions: READ, untilMs: 10_000 }, 0);
    expect(q.stillQuiet("mesh/a", c, nowMs)).toBe(expected);
    expect(q.stillQuiet("mesh/other", c, nowMs)).toBeUndefined();
  });

  it("compares only what the pass read: a FINISHED pass (no request read) ignores the CertificateRequest", () => {
    const q = new QuietPasses();
    q.remember("mesh/a", { versions: { issuedCertificate: "1", target: "7", collision: "" }, untilMs: 10_000 }, 0);
    expect(q.stillQuiet("mesh/a", cache("1", "7", "6"), 1_000)).toBe(9_000);
  });

  it("a cache that does not cover what the pass read is never quiet", () => {
    const q = new QuietPasses();
    q.remember("mesh/a", { versions: READ, untilMs: 10_000 }, 0);
    expect(q.stillQuiet("mesh/a", { ...cache("1", "7"), requestVersion: () => NOT_CACHED }, 1_000)).toBeUndefined();
  });

  it("is capped at a day, and forgets", () => {
    const q = new QuietPasses();
    q.remember("mesh/a", { versions: READ, untilMs: 400 * 86_400_000 }, 0);
    expect(q.stillQuiet("mesh/a", cache("1", "7"), 0)).toBe(QUIET_PASS_MAX_MS);
    q.forget("mesh/a");
    expect(q.stillQuiet("mesh/a", cache("1", "7"), 0)).toBeUndefined();
  });
});

describe("the reconciler with an up-to-date cache", () => {
  const requestsOf = async (e: ReconcilerEnv, fn: () => Promise<unknown>) => {
    const before = e.api.calls.length;
    await fn();
    return e.api.calls.slice(before).map((c) => `${c.verb} ${c.kind} ${c.namespace}/${c.name}`);
  };

  it("a whole issuance GETs each name once (its 404 is held) and the issuer's answer; what it wrote itself is never read back", async () => {
    const e = newEnv();
    const requests = await requestsOf(e, () => e.runUntil("FINISHED"));
    // The target, the staged key and the request are looked up once (someone else's object could sit at
    // those names, which our informers do not watch); the request again for the issuer's answer (its
    // cache keeps metadata only).
    expect(requests.filter((r) => r.startsWith("get "))).toEqual([`get Secret ${TARGET.namespace}/${TARGET.name}`, `get Secret ${KEY}`,
      `get CertificateRequest ${KEY}`, `get CertificateRequest ${KEY}`]);
    await e.reconcile(); // FINISHED: verifies the target, then drops what it held (no key material kept)
    expect(await requestsOf(e, () => e.reconcile())).toEqual([]); // quiet
    const uncached = newEnv({ cache: false });
    expect((await requestsOf(uncached, () => uncached.runUntil("FINISHED"))).filter((r) => r.startsWith("get ")).length).toBeGreaterThan(8);
  });

  it("never GETs an IssuedCertificate at the target's name (the collision check reads the cache)", async () => {
    const e = newEnv();
    const requests = await requestsOf(e, () => e.runUntil("FINISHED"));
    expect(requests).not.toContain(`get IssuedCertificate ${TARGET.namespace}/${TARGET.name}`);
    // Without the cache, every pass asks.
    const uncached = newEnv({ cache: false });
    expect(await requestsOf(uncached, () => uncached.runUntil("FINISHED"))).toContain(`get IssuedCertificate ${TARGET.namespace}/${TARGET.name}`);
  });

  it("waiting for the issuer: a wake-up with nothing changed makes no request; the issuer's answer brings a full pass", async () => {
    const e = newEnv();
    await e.runUntil("REQUESTED");
    await e.reconcile(); // waits for the issuer: remembered
    expect(await requestsOf(e, () => e.reconcile())).toEqual([]);
    await e.sign();
    expect(await requestsOf(e, () => e.reconcile())).toContain("create Secret istio-system/cacerts");
    expect(e.state()).toBe("ISSUED");
  });

  it("a resync of a FINISHED object with nothing changed makes no request; any change, or the renewal time, brings a full pass back", async () => {
    const e = newEnv();
    await e.runUntil("FINISHED");
    await e.reconcile(); // the first FINISHED pass verifies the target and remembers it
    const quiet = await requestsOf(e, () => e.reconcile());
    expect(quiet).toEqual([]);
    const result = (await e.reconcile()) as { requeueAfterMs: number };
    expect(result.requeueAfterMs).toBeGreaterThan(0);
    expect(result.requeueAfterMs).toBeLessThanOrEqual(QUIET_PASS_MAX_MS);

    // The IssuedCertificate changed (an annotation): a full pass (the IssuedCertificate from the cache, the
    // target it no longer holds from the API server), which notices the new key type.
    await e.issuedCertificates.patchAnnotations("mesh", "ic", { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P384" });
    expect(await requestsOf(e, () => e.reconcile())).toContain(`get Secret ${TARGET.namespace}/${TARGET.name}`);
    expect(e.state()).toBe("PENDING");
    await e.runUntil("FINISHED");
    await e.reconcile();
    expect(await requestsOf(e, () => e.reconcile())).toEqual([]);

    // The target changed (edited by hand): a full pass, which re-issues.
    const target = e.target()!;
    await e.secrets.replace({ ...target, data: { ...target.data, [CA_CERT]: Buffer.from("not a certificate").toString("base64") } } as Secret);
    expect(await requestsOf(e, () => e.reconcile())).toContain(`get Secret ${TARGET.namespace}/${TARGET.name}`);
    expect(e.state()).toBe("PENDING");
    await e.runUntil("FINISHED");
    await e.reconcile();

    // Quiet until the renewal time; then a full pass renews.
    const wait = (await e.reconcile()) as { requeueAfterMs: number };
    e.clock.advance(wait.requeueAfterMs);
    const due = await requestsOf(e, () => e.reconcile());
    expect(due.length).toBeGreaterThan(0);
  });
});

describe("readThrough: what it reads from the API server, given what the cache shows and what it holds", () => {
  type Obj = { metadata: { namespace: string; name: string; resourceVersion?: string }; data?: Record<string, string> };
  // A cache the test moves by hand (an informer whose events arrive when the test says).
  const setup = (opts: { wholeObjects?: boolean; covered?: boolean } = {}) => {
    const clock = new FakeClock();
    const api = new FakeApi({ clock });
    const client = api.client<Obj>("Secret");
    const cache = new Map<string, Obj>();
    const through = readThrough<Obj>(client, clock,
      (ns, name) => (opts.covered === false ? NOT_CACHED : cache.get(`${ns}/${name}`)?.metadata.resourceVersion),
      opts.wholeObjects ? (ns, name) => cache.get(`${ns}/${name}`) : undefined);
    /** The informer delivers the object as stored now (or its deletion). */
    const deliver = (name: string) => {
      const o = api.peek<Obj>("Secret", "ns", name);
      if (o) cache.set(`ns/${name}`, o);
      else cache.delete(`ns/${name}`);
      if (o) through.delivered(o);
    };
    const gets = () => api.calls.filter((c) => c.verb === "get").length;
    const body = (name: string, v = "1"): Obj => ({ metadata: { namespace: "ns", name }, data: { v } });
    return { clock, api, client, cache, through, deliver, gets, body };
  };

  it("a name missing from the cache is a GET (the informers watch only our objects); its 404 is held, until forgotten", async () => {
    const t = setup();
    expect(await t.through.get("ns", "a")).toBeUndefined();
    expect(await t.through.get("ns", "a")).toBeUndefined();
    expect(t.gets()).toBe(1);
    t.through.forget("ns", "a");
    expect(await t.through.get("ns", "a")).toBeUndefined();
    expect(t.gets()).toBe(2);
  });

  it("someone else's object the informer never delivers (not labelled ours) is found by the first GET", async () => {
    const t = setup();
    await t.client.create("ns", t.body("foreign", "theirs"));
    expect((await t.through.get("ns", "foreign"))?.data).toEqual({ v: "theirs" });
    expect((await t.through.get("ns", "foreign"))?.data).toEqual({ v: "theirs" }); // held: the cache never vouches for it...
    t.clock.advance(CACHE_LAG_MAX_MS);
    expect((await t.through.get("ns", "foreign"))?.data).toEqual({ v: "theirs" }); // ...so it is read again once the lag allowance is over
    expect(t.gets()).toBe(2);
  });

  it("a 404 held, then our object appears in the cache: read", async () => {
    const t = setup();
    expect(await t.through.get("ns", "a")).toBeUndefined();
    await t.client.create("ns", t.body("a"));
    t.deliver("a");
    expect((await t.through.get("ns", "a"))?.data).toEqual({ v: "1" });
    expect(t.gets()).toBe(2);
  });

  it("a name the cache does not cover is always a GET", async () => {
    const t = setup({ covered: false });
    await t.through.create("ns", t.body("a"));
    expect((await t.through.get("ns", "a"))?.data).toEqual({ v: "1" });
    expect(t.gets()).toBe(1);
  });

  it("its own write is read back without a request, before and after the cache has caught up", async () => {
    const t = setup();
    const written = await t.through.create("ns", t.body("a"));
    expect(await t.through.get("ns", "a")).toBe(written); // the watch event is on its way
    t.deliver("a");
    expect(await t.through.get("ns", "a")).toBe(written);
    expect(t.gets()).toBe(0);
  });

  it("someone else's write after ours: once the cache shows it, a GET returns theirs", async () => {
    const t = setup();
    const ours = await t.through.create("ns", t.body("a"));
    t.deliver("a");
    await t.client.replace({ ...ours, data: { v: "theirs" } });
    expect((await t.through.get("ns", "a"))?.data).toEqual({ v: "1" }); // the cache has not seen theirs yet: ours is the newest known
    t.deliver("a");
    expect((await t.through.get("ns", "a"))?.data).toEqual({ v: "theirs" });
    expect(t.gets()).toBe(1);
  });

  it("our write's event never delivered, the cache jumped to a newer version (a re-LIST skipped ours): read at once", async () => {
    const t = setup();
    const ours = await t.through.create("ns", t.body("a"));
    await t.client.replace({ ...ours, data: { v: "theirs" } });
    t.cache.set("ns/a", t.api.peek<Obj>("Secret", "ns", "a")!); // the cache jumps to theirs without delivering ours
    expect((await t.through.get("ns", "a"))?.data).toEqual({ v: "theirs" });
    expect(t.gets()).toBe(1);
  });

  it("a watch that delivers nothing (the cache still shows what it showed before our write): ours for CACHE_LAG_MAX_MS, then a GET", async () => {
    const t = setup();
    await t.client.create("ns", t.body("a"));
    t.deliver("a");
    const held = await t.through.get("ns", "a");
    const ours = await t.through.replace({ ...held!, data: { v: "2" } });
    expect(await t.through.get("ns", "a")).toBe(ours); // the cache still shows version 1
    t.clock.advance(CACHE_LAG_MAX_MS);
    expect((await t.through.get("ns", "a"))?.data).toEqual({ v: "2" });
    expect(t.gets()).toBe(2);
  });

  it("held and delivered, then gone from the cache (deleted by someone): a GET confirms it", async () => {
    const t = setup();
    await t.through.create("ns", t.body("a"));
    t.deliver("a");
    await t.client.delete("ns", "a");
    t.deliver("a");
    expect(await t.through.get("ns", "a")).toBeUndefined();
    expect(t.gets()).toBe(1);
    expect(await t.through.get("ns", "a")).toBeUndefined(); // the 404 is held: absent without asking
    expect(t.gets()).toBe(1);
  });

  it("its own delete: absent without a request, also while the cache still shows the deleted version; a newer version there is read", async () => {
    const t = setup();
    await t.through.create("ns", t.body("a"));
    t.deliver("a");
    await t.through.delete("ns", "a");
    expect(await t.through.get("ns", "a")).toBeUndefined();
    t.deliver("a");
    expect(await t.through.get("ns", "a")).toBeUndefined();
    expect(t.gets()).toBe(0);
    await t.client.create("ns", t.body("a", "again"));
    t.deliver("a");
    expect((await t.through.get("ns", "a"))?.data).toEqual({ v: "again" });
    expect(t.gets()).toBe(1);
  });

  it("an object in the cache that it does not hold: the cached object when the cache holds whole objects, else a GET (held from then on)", async () => {
    const whole = setup({ wholeObjects: true });
    await whole.client.create("ns", whole.body("a"));
    whole.deliver("a");
    expect((await whole.through.get("ns", "a"))?.data).toEqual({ v: "1" });
    expect(whole.gets()).toBe(0);

    const meta = setup();
    await meta.client.create("ns", meta.body("a"));
    meta.deliver("a");
    expect((await meta.through.get("ns", "a"))?.data).toEqual({ v: "1" });
    expect((await meta.through.get("ns", "a"))?.data).toEqual({ v: "1" });
    expect(meta.gets()).toBe(1);
  });

  it("forget: the next read asks the API server", async () => {
    const t = setup();
    await t.through.create("ns", t.body("a"));
    t.deliver("a");
    t.through.forget("ns", "a");
    expect(t.through.held("ns", "a")).toBeUndefined();
    expect((await t.through.get("ns", "a"))?.data).toEqual({ v: "1" });
    expect(t.gets()).toBe(1);
  });
});
