// The `certificates` section of /statusz: rows from the informer cache, the expiry gauge the
// reconciler feeds, and the bounce progress of each certificate's own cycle.
import { Gauge, Registry } from "prom-client";
import type { IssuedCertificate, PodBounceDirective } from "../shared/api/types";
import { BOUNCE_PROGRESS_ANNOTATION } from "./constants";
import { certificateStatuses, readTimestamps } from "./certificate-status";

const ic = (namespace: string, name: string, o: { state?: string; error?: string; directive?: { name: string; namespace?: string } } = {}): IssuedCertificate => ({
  metadata: { namespace, name },
  spec: o.directive ? { podBounceDirective: { name: o.directive.name, namespace: o.directive.namespace ?? "" } } : {},
  status: o.state ? { state: o.state as never, error: o.error } : undefined,
});
const directive = (namespace: string, name: string, progress?: unknown): PodBounceDirective => ({
  metadata: { namespace, name, annotations: progress === undefined ? {} : { [BOUNCE_PROGRESS_ANNOTATION]: typeof progress === "string" ? progress : JSON.stringify(progress) } },
});

describe("certificateStatuses", () => {
  it("one row per IssuedCertificate, sorted, with state, error, notAfter and the bounce of its own cycle", () => {
    const rows = certificateStatuses(
      [
        ic("mesh", "b", { state: "ISSUED", error: "pods of PodBounceDirective mesh/istio being restarted", directive: { name: "istio" } }),
        ic("mesh", "a", { state: "FINISHED" }),
        ic("edge", "z"),
      ],
      [directive("mesh", "istio", { cycle: "mesh/b#3", outcome: "waiting", message: "1 of 2 replacement pods Ready" })],
      new Map([["mesh/a", new Date("2027-01-01T00:00:00Z")]]),
      new Map([["mesh/a", new Date("2026-09-01T08:00:00Z")]]),
    );
    expect(rows).toEqual([
      { namespace: "edge", name: "z", state: null, error: "", notAfter: null, renewalTime: null, bounce: null },
      { namespace: "mesh", name: "a", state: "FINISHED", error: "", notAfter: "2027-01-01T00:00:00.000Z", renewalTime: "2026-09-01T08:00:00.000Z", bounce: null },
      {
        namespace: "mesh", name: "b", state: "ISSUED", error: "pods of PodBounceDirective mesh/istio being restarted", notAfter: null, renewalTime: null,
        bounce: { cycle: "mesh/b#3", outcome: "waiting", message: "1 of 2 replacement pods Ready" },
      },
    ]);
  });

  it.each<[string, IssuedCertificate, PodBounceDirective[], unknown]>([
    ["a directive in another namespace, named with its namespace", ic("mesh", "a", { directive: { name: "d", namespace: "istio-system" } }),
      [directive("istio-system", "d", { cycle: "mesh/a#1", outcome: "done", message: "" })], { cycle: "mesh/a#1", outcome: "done", message: "" }],
    ["a directive without a namespace is in the IssuedCertificate's", ic("mesh", "a", { directive: { name: "d" } }),
      [directive("istio-system", "d", { cycle: "mesh/a#1", outcome: "done", message: "" })], null],
    ["the progress of another IssuedCertificate's cycle is not ours", ic("mesh", "a", { directive: { name: "d" } }),
      [directive("mesh", "d", { cycle: "mesh/other#1", outcome: "error", message: "x" })], null],
    ["a directive that does not exist", ic("mesh", "a", { directive: { name: "gone" } }), [], null],
    ["no progress annotation", ic("mesh", "a", { directive: { name: "d" } }), [directive("mesh", "d")], null],
    ["a malformed progress annotation", ic("mesh", "a", { directive: { name: "d" } }), [directive("mesh", "d", "{not json")], null],
  ])("bounce: %s", (_name, certificate, directives, expected) => {
    expect(certificateStatuses([certificate], directives, new Map(), new Map())[0]!.bounce).toEqual(expected);
  });

  it("an IssuedCertificate without namespace or name (not one the API server serves): empty strings, never a made-up name", () => {
    const bare: IssuedCertificate = { metadata: {}, spec: {} };
    const when = new Date("2027-01-01T00:00:00Z");
    expect(certificateStatuses([bare], [], new Map([["/", when]]), new Map())).toEqual([
      { namespace: "", name: "", state: null, error: "", notAfter: "2027-01-01T00:00:00.000Z", renewalTime: null, bounce: null },
    ]);
  });
});

describe("readTimestamps", () => {
  it("reads what the expiry gauge holds, by namespace/name, without changing it", async () => {
    const registry = new Registry();
    const gauge = new Gauge({ name: "x", help: "x", labelNames: ["namespace", "name"], registers: [registry] });
    gauge.set({ namespace: "mesh", name: "a" }, Date.parse("2027-01-01T00:00:00Z") / 1000);
    gauge.set({ namespace: "mesh", name: "b" }, Date.parse("2026-06-01T12:30:00Z") / 1000);
    const before = await registry.metrics();
    expect(await readTimestamps(gauge)).toEqual(new Map([
      ["mesh/a", new Date("2027-01-01T00:00:00Z")],
      ["mesh/b", new Date("2026-06-01T12:30:00Z")],
    ]));
    expect(await registry.metrics()).toBe(before);
  });

  it("skips a value that lacks the namespace or the name label", async () => {
    const gauge = new Gauge({ name: "x", help: "x", labelNames: ["namespace", "name"], registers: [] });
    gauge.set({ namespace: "mesh", name: "a" }, Date.parse("2027-01-01T00:00:00Z") / 1000);
    gauge.set({ namespace: "mesh" }, 1);
    gauge.set({ name: "b" }, 2);
    gauge.set(3);
    expect(await readTimestamps(gauge)).toEqual(new Map([["mesh/a", new Date("2027-01-01T00:00:00Z")]]));
  });
});
