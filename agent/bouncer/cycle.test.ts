// The bounce hand-off annotations, read back: what the IssuedCertificate reconciler and the pod bouncer
// accept from a PodBounceDirective. Anything malformed (bad JSON, wrong types, missing fields, an
// unknown outcome) reads as "no request" / "no progress", never as a throw.
import { podBounceDirective } from "../../shared/api/builders";
import type { PodBounceDirective } from "../../shared/api/types";
import { BOUNCE_PROGRESS_ANNOTATION, BOUNCE_REQUEST_ANNOTATION } from "../constants";
import { BounceProgress, BounceRequest, cycleOf, ownerOfCycle, readBounceProgress, readBounceRequest } from "./cycle";

const REQUESTED_AT = "2026-01-01T00:00:00.000Z";

function directive(annotations?: Record<string, string>): PodBounceDirective {
  const d = podBounceDirective("istio-pods", "mesh", []);
  if (annotations) d.metadata.annotations = annotations;
  return d;
}

/** Malformed annotation values, and JSON that is not an object: none of them is a request or progress. */
const NOT_AN_OBJECT: [string, string][] = [
  ["an empty value", ""],
  ["malformed JSON", '{"cycle": "mesh/ic#1"'],
  ["JSON null", "null"],
  ["a JSON number", "42"],
  ["a JSON string", '"mesh/ic#1"'],
  ["JSON true", "true"],
  ["a JSON array", '["mesh/ic#1", "2026-01-01T00:00:00.000Z"]'],
];

describe("cycleOf and ownerOfCycle", () => {
  it("names a cycle by the IssuedCertificate and its issuance revision", () => {
    expect(cycleOf("mesh", "ic", 3)).toBe("mesh/ic#3");
  });

  it.each<[string, string]>([
    ["mesh/ic#3", "mesh/ic"],
    ["mesh/ic#12", "mesh/ic"],
    ["mesh/ic", "mesh/ic"],
  ])("the owner of cycle %s is %s", (cycle, owner) => {
    expect(ownerOfCycle(cycle)).toBe(owner);
  });
});

it("reads the request and the progress each from its own annotation", () => {
  const d = directive({
    [BOUNCE_REQUEST_ANNOTATION]: JSON.stringify({ cycle: "mesh/ic#2", requestedAt: REQUESTED_AT }),
    [BOUNCE_PROGRESS_ANNOTATION]: JSON.stringify({ cycle: "mesh/ic#1", outcome: "done", message: "every selector bounced" }),
  });
  expect(readBounceRequest(d)).toEqual({ cycle: "mesh/ic#2", requestedAt: REQUESTED_AT });
  expect(readBounceProgress(d)).toEqual({ cycle: "mesh/ic#1", outcome: "done", message: "every selector bounced" });
});

describe("readBounceRequest", () => {
  it.each<[string, string, BounceRequest]>([
    ["a cycle and when it was requested", JSON.stringify({ cycle: "mesh/ic#1", requestedAt: REQUESTED_AT }), { cycle: "mesh/ic#1", requestedAt: REQUESTED_AT }],
    ["the same with fields it does not know (dropped)", JSON.stringify({ cycle: "mesh/ic#2", requestedAt: REQUESTED_AT, by: "agent-0" }), { cycle: "mesh/ic#2", requestedAt: REQUESTED_AT }],
  ])("reads %s", (_what, value, expected) => {
    expect(readBounceRequest(directive({ [BOUNCE_REQUEST_ANNOTATION]: value }))).toEqual(expected);
  });

  it.each<[string, string]>([
    ...NOT_AN_OBJECT,
    ["an object without cycle", JSON.stringify({ requestedAt: REQUESTED_AT })],
    ["an object without requestedAt", JSON.stringify({ cycle: "mesh/ic#1" })],
    ["a numeric cycle", JSON.stringify({ cycle: 1, requestedAt: REQUESTED_AT })],
    ["a numeric requestedAt", JSON.stringify({ cycle: "mesh/ic#1", requestedAt: 1767225600000 })],
    ["a null cycle", JSON.stringify({ cycle: null, requestedAt: REQUESTED_AT })],
  ])("reads %s as no request", (_what, value) => {
    expect(readBounceRequest(directive({ [BOUNCE_REQUEST_ANNOTATION]: value }))).toBeUndefined();
  });

  it.each<[string, PodBounceDirective | undefined]>([
    ["no directive", undefined],
    ["a directive without annotations", directive()],
  ])("finds no request on %s", (_what, d) => {
    expect(readBounceRequest(d)).toBeUndefined();
  });
});

describe("readBounceProgress", () => {
  it.each<[string, object, BounceProgress]>([
    ["waiting, with its message", { cycle: "mesh/ic#1", outcome: "waiting", message: "pods in istio-system with app=istiod: 0 of 1 replacement pods Ready" },
      { cycle: "mesh/ic#1", outcome: "waiting", message: "pods in istio-system with app=istiod: 0 of 1 replacement pods Ready" }],
    ["error, with its message", { cycle: "mesh/ic#1", outcome: "error", message: "secret istio-system/cacerts has no key root-cert.pem" },
      { cycle: "mesh/ic#1", outcome: "error", message: "secret istio-system/cacerts has no key root-cert.pem" }],
    ["done", { cycle: "mesh/ic#2", outcome: "done", message: "every selector bounced" }, { cycle: "mesh/ic#2", outcome: "done", message: "every selector bounced" }],
    ["no message as an empty message", { cycle: "mesh/ic#1", outcome: "done" }, { cycle: "mesh/ic#1", outcome: "done", message: "" }],
    ["a numeric message as an empty message", { cycle: "mesh/ic#1", outcome: "waiting", message: 3 }, { cycle: "mesh/ic#1", outcome: "waiting", message: "" }],
    ["a null message as an empty message", { cycle: "mesh/ic#1", outcome: "error", message: null }, { cycle: "mesh/ic#1", outcome: "error", message: "" }],
    ["fields it does not know (dropped)", { cycle: "mesh/ic#1", outcome: "done", message: "", index: 2 }, { cycle: "mesh/ic#1", outcome: "done", message: "" }],
  ])("reads %s", (_what, value, expected) => {
    expect(readBounceProgress(directive({ [BOUNCE_PROGRESS_ANNOTATION]: JSON.stringify(value) }))).toEqual(expected);
  });

  it.each<[string, string]>([
    ...NOT_AN_OBJECT,
    ["an object without cycle", JSON.stringify({ outcome: "done", message: "" })],
    ["a numeric cycle", JSON.stringify({ cycle: 1, outcome: "done", message: "" })],
    ["an object without outcome", JSON.stringify({ cycle: "mesh/ic#1", message: "" })],
    ["an unknown outcome", JSON.stringify({ cycle: "mesh/ic#1", outcome: "failed", message: "boom" })],
    ["an outcome in another case", JSON.stringify({ cycle: "mesh/ic#1", outcome: "Done", message: "" })],
    ["a numeric outcome", JSON.stringify({ cycle: "mesh/ic#1", outcome: 2, message: "" })],
  ])("reads %s as no progress", (_what, value) => {
    expect(readBounceProgress(directive({ [BOUNCE_PROGRESS_ANNOTATION]: value }))).toBeUndefined();
  });

  it.each<[string, PodBounceDirective | undefined]>([
    ["no directive", undefined],
    ["a directive without annotations", directive()],
  ])("finds no progress on %s", (_what, d) => {
    expect(readBounceProgress(d)).toBeUndefined();
  });
});
