// Requests the reconciler saves with the informers' caches (issue 12), and that it never skips a pass
// it needs: a changed IssuedCertificate, a changed target, a due renewal, a namespace the cache does not cover.
import type { IssuedCertificate } from "../shared/api/types";
import type { Secret } from "../shared/kube/secrets";
import { CA_CERT, KEY_ALGORITHM_ANNOTATION } from "./constants";
import { informerCache, NOT_CACHED, QUIET_PASS_MAX_MS, QuietPasses, type ReconcilerCache } from "./reconciler-cache";
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

  it("never GETs an IssuedCertificate at the target's name (the collision check reads the cache)", async () => {
    const e = newEnv({ cache: true });
    const requests = await requestsOf(e, () => e.runUntil("FINISHED"));
    expect(requests).not.toContain(`get IssuedCertificate ${TARGET.namespace}/${TARGET.name}`);
    // Without the cache, every pass asks.
    const uncached = newEnv();
    expect(await requestsOf(uncached, () => uncached.runUntil("FINISHED"))).toContain(`get IssuedCertificate ${TARGET.namespace}/${TARGET.name}`);
  });

  it("waiting for the issuer: a wake-up with nothing changed makes no request; the issuer's answer brings a full pass", async () => {
    const e = newEnv({ cache: true });
    await e.runUntil("REQUESTED");
    await e.reconcile(); // waits for the issuer: remembered
    expect(await requestsOf(e, () => e.reconcile())).toEqual([]);
    await e.sign();
    expect(await requestsOf(e, () => e.reconcile())).toContain("create Secret istio-system/cacerts");
    expect(e.state()).toBe("ISSUED");
  });

  it("a resync of a FINISHED object with nothing changed makes no request; any change, or the renewal time, brings a full pass back", async () => {
    const e = newEnv({ cache: true });
    await e.runUntil("FINISHED");
    await e.reconcile(); // the first FINISHED pass verifies the target and remembers it
    const quiet = await requestsOf(e, () => e.reconcile());
    expect(quiet).toEqual([]);
    const result = (await e.reconcile()) as { requeueAfterMs: number };
    expect(result.requeueAfterMs).toBeGreaterThan(0);
    expect(result.requeueAfterMs).toBeLessThanOrEqual(QUIET_PASS_MAX_MS);

    // The IssuedCertificate changed (an annotation): a full pass, which notices the new key type.
    await e.issuedCertificates.patchAnnotations("mesh", "ic", { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P384" });
    expect(await requestsOf(e, () => e.reconcile())).toContain(`get IssuedCertificate ${KEY}`);
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
