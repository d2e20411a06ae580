// The issuance stamp and the bookkeeping annotations, table-driven: which objects are paired as one
// issuance, and how annotations written by us (or mangled by someone else) read back.
import { issuedCertificate } from "../shared/api/builders";
import {
  FAILURE_REASON_ANNOTATION,
  FAILURES_ANNOTATION,
  KEY_FINGERPRINT_ANNOTATION,
  OWNER_ANNOTATION,
  Reason,
  RETRY_AFTER_ANNOTATION,
  REVISION_ANNOTATION,
} from "./constants";
import { Bookkeeping, bookkeepingPatch, IssuanceStamp, ownerKey, readBookkeeping, readStamp, sameIssuance, stampAnnotations } from "./issuance";

const OWNER = "mesh/ic";
const FP_A = "aa".repeat(32);
const FP_B = "bb".repeat(32);
const stamp = (over: Partial<IssuanceStamp> = {}): IssuanceStamp => ({ owner: OWNER, revision: 1, fingerprint: FP_A, ...over });
const icWith = (annotations?: Record<string, string>) => issuedCertificate({ name: "ic", namespace: "mesh", ...(annotations ? { annotations } : {}) });

describe("stamps", () => {
  it("ownerKey is namespace/name of the IssuedCertificate", () => {
    expect(ownerKey(icWith())).toBe(OWNER);
  });

  it("a written stamp reads back as the same stamp", () => {
    const s = stamp({ revision: 7 });
    expect(readStamp({ annotations: stampAnnotations(s) })).toEqual(s);
  });

  it.each<[string, Parameters<typeof readStamp>[0]]>([
    ["no metadata", undefined],
    ["no annotations", { name: "x" }],
    ["unrelated annotations only", { annotations: { "example.com/team": "mesh" } }],
  ])("an object with %s (made before stamps existed) reads as owner \"\", revision 0, fingerprint \"\"", (_name, meta) => {
    expect(readStamp(meta)).toEqual({ owner: "", revision: 0, fingerprint: "" });
  });

  it.each<[string, string, number]>([
    ["a positive integer", "3", 3],
    ["zero", "0", 0],
    ["a negative number", "-2", 0],
    ["a fraction", "1.5", 0],
    ["text", "three", 0],
    ["an empty string", "", 0],
    ["a number beyond 2^53", "9007199254740993", 0],
  ])("a revision annotation holding %s (%j) reads as %d", (_name, text, revision) => {
    expect(readStamp({ annotations: { [REVISION_ANNOTATION]: text } }).revision).toBe(revision);
  });
});

describe("sameIssuance", () => {
  it.each<[string, boolean, IssuanceStamp, IssuanceStamp]>([
    ["same owner, revision and key", true, stamp(), stamp()],
    ["another owner (an object left by another IssuedCertificate)", false, stamp(), stamp({ owner: "mesh/other" })],
    ["another revision (an object of an earlier issuance)", false, stamp({ revision: 2 }), stamp({ revision: 1 })],
    ["both revision 0 (unstamped objects are never paired)", false, stamp({ revision: 0 }), stamp({ revision: 0 })],
    ["another key for the same revision", false, stamp({ fingerprint: FP_A }), stamp({ fingerprint: FP_B })],
    ["no fingerprint on the first", true, stamp({ fingerprint: "" }), stamp({ fingerprint: FP_B })],
    ["no fingerprint on the second", true, stamp({ fingerprint: FP_A }), stamp({ fingerprint: "" })],
    ["no fingerprint on either", true, stamp({ fingerprint: "" }), stamp({ fingerprint: "" })],
  ])("%s -> same issuance: %s", (_name, same, a, b) => {
    expect(sameIssuance(a, b)).toBe(same);
    expect(sameIssuance(b, a)).toBe(same);
  });
});

describe("bookkeeping", () => {
  it("an IssuedCertificate without annotations has revision 0, no failures, no reason and no retry scheduled", () => {
    const book = readBookkeeping(icWith());
    expect(book).toEqual({ revision: 0, failures: 0, failureReason: "" });
    expect("retryAtMs" in book).toBe(false);
  });

  it("reads what bookkeepingPatch wrote", () => {
    const next: Bookkeeping = { revision: 4, failures: 2, failureReason: Reason.IssuerFailed, retryAtMs: Date.parse("2026-01-01T00:07:30Z") };
    const patch = bookkeepingPatch(next);
    expect(patch).toEqual({
      [REVISION_ANNOTATION]: "4",
      [FAILURES_ANNOTATION]: "2",
      [FAILURE_REASON_ANNOTATION]: Reason.IssuerFailed,
      [RETRY_AFTER_ANNOTATION]: "2026-01-01T00:07:30.000Z",
    });
    expect(readBookkeeping(icWith(patch as Record<string, string>))).toEqual(next);
  });

  it("a success removes the failure annotations (null) and keeps the revision", () => {
    expect(bookkeepingPatch({ revision: 4, failures: 0, failureReason: "" })).toEqual({
      [REVISION_ANNOTATION]: "4",
      [FAILURES_ANNOTATION]: null,
      [FAILURE_REASON_ANNOTATION]: null,
      [RETRY_AFTER_ANNOTATION]: null,
    });
  });

  it.each<[string, string, number]>([
    ["a count", "5", 5],
    ["a negative count", "-1", 0],
    ["a fractional count", "2.5", 0],
    ["garbage", "many", 0],
  ])("a failures annotation holding %s (%j) reads as %d failures", (_name, text, failures) => {
    expect(readBookkeeping(icWith({ [FAILURES_ANNOTATION]: text })).failures).toBe(failures);
  });

  it("a retry-after that is not a time schedules no retry (never NaN)", () => {
    expect(readBookkeeping(icWith({ [RETRY_AFTER_ANNOTATION]: "soon" }))).toEqual({ revision: 0, failures: 0, failureReason: "" });
  });

  it("the stamp annotations are the owner, the revision as text and the fingerprint", () => {
    expect(stampAnnotations(stamp({ revision: 12 }))).toEqual({
      [OWNER_ANNOTATION]: OWNER,
      [REVISION_ANNOTATION]: "12",
      [KEY_FINGERPRINT_ANNOTATION]: FP_A,
    });
  });
});
