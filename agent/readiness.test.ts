// The agent's readiness check for refused requests (readiness.ts): the pure rule over IssuedCertificates,
// and the rule over what the real reconciler writes when the API server answers 403.
import type { IssuedCertificate, IssuedCertificateState } from "../shared/api/types";
import { FAILURE_REASON_ANNOTATION, Reason } from "./constants";
import { FORBIDDEN_ERROR_CHARS, forbiddenCertificates, forbiddenCheck } from "./readiness";
import { newEnv } from "./testing/reconciler-env";

const ic = (namespace: string, name: string, state: IssuedCertificateState | undefined, reason?: string, o: { error?: string; generation?: number; observedGeneration?: number } = {}): IssuedCertificate => ({
  metadata: { namespace, name, generation: o.generation ?? 1, annotations: reason ? { [FAILURE_REASON_ANNOTATION]: reason } : {} },
  status: state ? { state, observedGeneration: o.observedGeneration ?? o.generation ?? 1, error: o.error ?? "" } : undefined,
});
const forbids = (request: string) => `the API server forbids ${request} (${request}: 403: secrets "x" is forbidden); check the agent's RBAC, or whether the namespace is being deleted`;

describe("forbiddenCertificates", () => {
  it("only FAILED APIRequestForbidden of the current generation, sorted", () => {
    const found = forbiddenCertificates([
      ic("mesh", "b", "FAILED", Reason.APIRequestForbidden),
      ic("mesh", "a", "FAILED", Reason.APIRequestForbidden),
      ic("mesh", "other-reason", "FAILED", Reason.APIRequestRefused),
      ic("mesh", "no-reason", "FAILED"),
      // The reason annotation outlives nothing: a state other than FAILED is not refused.
      ic("mesh", "finished", "FINISHED", Reason.APIRequestForbidden),
      ic("mesh", "no-status", undefined, Reason.APIRequestForbidden),
      // A FAILED of generation 1 while the spec is at 2: stale, the new spec is being worked on.
      ic("mesh", "stale", "FAILED", Reason.APIRequestForbidden, { generation: 2, observedGeneration: 1 }),
      ic("edge", "z", "FAILED", Reason.APIRequestForbidden),
    ]);
    expect(found.map((x) => `${x.metadata.namespace}/${x.metadata.name}`)).toEqual(["edge/z", "mesh/a", "mesh/b"]);
  });
});

describe("forbiddenCheck", () => {
  it("passes with no refused IssuedCertificate, and reads the list anew each time", () => {
    let list: IssuedCertificate[] = [ic("mesh", "a", "FINISHED")];
    const check = forbiddenCheck(() => list);
    expect(check()).toEqual({ ok: true });
    list = [ic("mesh", "a", "FAILED", Reason.APIRequestForbidden, { error: forbids("create Secret mesh/a") })];
    expect(check().ok).toBe(false);
    list = [];
    expect(check()).toEqual({ ok: true });
  });

  it("one refused: says what, why, how it clears, and quotes its status.error", () => {
    const check = forbiddenCheck(() => [ic("mesh", "a", "FAILED", Reason.APIRequestForbidden, { error: forbids("create Secret mesh/a") })]);
    expect(check()).toEqual({
      ok: false,
      detail: "1 IssuedCertificate is FAILED APIRequestForbidden (the API server refuses a request the agent needs: fix its RBAC; " +
        `each clears when its retry gets through): mesh/a: ${forbids("create Secret mesh/a")}`,
    });
  });

  it("names three, counts the rest, and bounds each quoted error", () => {
    const long = "x".repeat(FORBIDDEN_ERROR_CHARS + 50);
    const list = ["a", "b", "c", "d", "e"].map((n) => ic("mesh", n, "FAILED", Reason.APIRequestForbidden, { error: n === "a" ? long : forbids(`create Secret mesh/${n}`) }));
    const { ok, detail } = forbiddenCheck(() => list)();
    expect(ok).toBe(false);
    expect(detail).toMatch(/^5 IssuedCertificates are FAILED APIRequestForbidden /);
    expect(detail).toContain(`mesh/a: ${"x".repeat(FORBIDDEN_ERROR_CHARS)}...; mesh/b: `);
    expect(detail).not.toContain("x".repeat(FORBIDDEN_ERROR_CHARS + 1));
    expect(detail).toContain("mesh/c: ");
    expect(detail).not.toContain("mesh/d");
    expect(detail).toMatch(/; and 2 more$/);
  });

  const ONE = "1 IssuedCertificate is FAILED APIRequestForbidden (the API server refuses a request the agent needs: fix its RBAC; " +
    "each clears when its retry gets through): ";

  it.each<[string, string | undefined, string]>([
    ["an error of exactly the bound is quoted whole", "x".repeat(FORBIDDEN_ERROR_CHARS), `mesh/a: ${"x".repeat(FORBIDDEN_ERROR_CHARS)}`],
    ["one character more is cut", "x".repeat(FORBIDDEN_ERROR_CHARS + 1), `mesh/a: ${"x".repeat(FORBIDDEN_ERROR_CHARS)}...`],
    ["no status.error: nothing after the name", undefined, "mesh/a: "],
  ])("%s", (_what, error, named) => {
    const refused = ic("mesh", "a", "FAILED", Reason.APIRequestForbidden);
    if (error === undefined) delete refused.status!.error;
    else refused.status!.error = error;
    expect(forbiddenCheck(() => [refused])()).toEqual({ ok: false, detail: ONE + named });
  });

  it("names all of exactly three, with no count of more", () => {
    const list = ["a", "b", "c"].map((n) => ic("mesh", n, "FAILED", Reason.APIRequestForbidden, { error: `e${n}` }));
    expect(forbiddenCheck(() => list)().detail).toMatch(/^3 IssuedCertificates are FAILED .*\): mesh\/a: ea; mesh\/b: eb; mesh\/c: ec$/);
  });
});

describe("forbiddenCheck over what the reconciler writes", () => {
  it("fails while a 403 keeps an IssuedCertificate FAILED, and passes once its retry gets through", async () => {
    const e = newEnv();
    const check = forbiddenCheck(() => [e.ic()!]);
    await e.reconcile(); // PENDING
    expect(check()).toEqual({ ok: true });
    // The staged key's create refused, as OwnerReferencesPermissionEnforcement refuses blockOwnerDeletion without finalizers rights.
    e.api.failNext({ kind: "Secret", verb: "create", namespace: "mesh", name: "ic", error: 403 });
    await e.reconcile();
    expect(e.state()).toBe("FAILED");
    const failed = check();
    expect(failed.ok).toBe(false);
    expect(failed.detail).toMatch(/^1 IssuedCertificate is FAILED APIRequestForbidden .*: mesh\/ic: the API server forbids create Secret mesh\/ic \(.*403.*\); check the agent's RBAC/);
    // Woken by its own status write before the retry is due: still refused as far as anyone knows.
    await e.reconcile();
    expect(check().ok).toBe(false);
    // The RBAC fixed (no more fault): the retry gets through and the check passes.
    e.clock.advance(60_000);
    await e.runUntil("FINISHED");
    expect(check()).toEqual({ ok: true });
  });
});
