// The presentation of `cert-agent status`: rows written by hand (format is a pure function of them).
import { parse as parseYaml } from "yaml";
import { cells, formatReport, formatTable, humanDuration, oneLine, renewsIn, rootsCell } from "./format";
import type { StatusReport, StatusRow } from "./rows";

const DAY = 86_400;

function row(o: Partial<StatusRow> = {}): StatusRow {
  return {
    namespace: "mesh",
    name: "ic",
    state: "FINISHED",
    error: "",
    target: { namespace: "istio-system", name: "cacerts", state: "ok", summary: "", message: "" },
    certificate: { key: "ECDSA-P256", notBefore: "2026-02-21T12:00:00Z", notAfter: "2027-02-21T12:00:00Z", renewalTime: "2026-10-22T20:00:00Z", renewsInSeconds: 143 * DAY },
    roots: { count: 1, rotation: "none" },
    problems: [],
    ...o,
  };
}

const report = (rows: StatusRow[]): StatusReport => ({ now: "2026-06-01T12:00:00Z", rows, exitCode: 0 });

describe("humanDuration and RENEWS IN", () => {
  it.each<[number, string]>([
    [0, "0s"],
    [59, "59s"],
    [60, "1m"],
    [3599, "59m"],
    [3600, "1h"],
    [5 * 3600 + 59 * 60, "5h"],
    [DAY - 1, "23h"],
    [DAY, "1d"],
    [243 * DAY + 7 * 3600, "243d"],
    [0.9, "0s"],
  ])("%d s is %s (rounded down, like kubectl's ages)", (seconds, text) => {
    expect(humanDuration(seconds)).toBe(text);
  });

  it.each<[StatusRow["certificate"] | undefined, string]>([
    [{ ...row().certificate!, renewsInSeconds: 243 * DAY }, "243d"],
    [{ ...row().certificate!, renewsInSeconds: 5 * 3600 }, "5h"],
    [{ ...row().certificate!, renewsInSeconds: 0 }, "0s"],
    [{ ...row().certificate!, renewsInSeconds: -2 * 3600 - 5 }, "overdue 2h"],
    [{ ...row().certificate!, renewsInSeconds: -40 * DAY }, "overdue 40d"],
    [undefined, "-"],
  ])("%j", (certificate, text) => {
    expect(renewsIn(row({ certificate }))).toBe(text);
  });
});

describe("cells", () => {
  it("a healthy row", () => {
    expect(cells(row())).toEqual(["mesh", "ic", "FINISHED", "ECDSA-P256", "1", "2027-02-21T12:00:00Z", "143d", "-", "-"]);
  });

  it.each<[string, Partial<StatusRow>, string[]]>([
    ["no status yet", { state: "" }, ["-"]],
    ["a missing target: its explanation in KEY, no date", { certificate: undefined, target: { namespace: "istio-system", name: "cacerts", state: "missing", summary: "no secret istio-system/cacerts", message: "…" } },
      ["no secret istio-system/cacerts", "-", "-"]],
    ["an incomplete target with a certificate: the explanation in KEY, the dates still shown",
      { target: { state: "incomplete", summary: "istio-system/cacerts lacks ca-key.pem", message: "…" } },
      ["istio-system/cacerts lacks ca-key.pem", "2027-02-21T12:00:00Z", "143d"]],
    ["a target written by Gloo Mesh's agent: the key type, and whose it is", { target: { state: "original", summary: "Gloo Mesh agent's", message: "…" } },
      ["ECDSA-P256 (Gloo Mesh agent's)", "2027-02-21T12:00:00Z", "143d"]],
    ["a multi-line error with a terminal escape", { state: "FAILED", error: "invalid spec:\n  spec.hosts is empty\u001b[31m" }, ["FAILED", "invalid spec: spec.hosts is empty\\u001b[31m"]],
    ["bounce waiting", { bounce: { directive: "mesh/b", state: "waiting", message: "pods in istio-system with app=istiod: 0 of 1 Ready", cycle: "mesh/ic#2" } },
      ["waiting: pods in istio-system with app=istiod: 0 of 1 Ready"]],
    ["bounce done without message", { bounce: { directive: "mesh/b", state: "done", message: "", cycle: "mesh/ic#2" } }, ["done"]],
    ["bounce: no progress yet", { bounce: { directive: "mesh/b", state: "none", message: "" } }, ["-"]],
    ["bounce: directive missing", { bounce: { directive: "mesh/b", state: "missing", message: "…" } }, ["directive mesh/b missing"]],
    ["bounce: directive unreadable", { bounce: { directive: "mesh/b", state: "unreadable", message: "…" } }, ["cannot read directive mesh/b"]],
  ])("%s", (_what, o, expected) => {
    const c = cells(row(o));
    for (const cell of expected) expect(c).toContain(cell);
  });
});

describe("cells of a row without a certificate", () => {
  // rows.ts gives an ok or original target a certificate; without one, KEY says "-" rather than nothing.
  it.each<[string, StatusRow["target"], string]>([
    ["an ok target", { namespace: "istio-system", name: "cacerts", state: "ok", summary: "", message: "" }, "-"],
    ["an original target", { namespace: "istio-system", name: "cacerts", state: "original", summary: "Gloo Mesh agent's", message: "…" }, "- (Gloo Mesh agent's)"],
  ])("%s", (_what, target, key) => {
    expect(cells(row({ target, certificate: undefined }))).toEqual(["mesh", "ic", "FINISHED", key, "1", "-", "-", "-", "-"]);
  });
});

describe("oneLine", () => {
  it("folds whitespace into spaces and escapes other control characters", () => {
    expect(oneLine(" a\r\n\tb\u0007c\u009bd\u2028e  ")).toBe("a b\\u0007c\\u009bd\\u2028e");
  });

  it("bounds a huge text (a table row stays a row)", () => {
    const cell = oneLine("x".repeat(500_000));
    expect(cell.length).toBe(1024);
    expect(cell).toMatch(/ \.\.\. \(498976 more characters\)$/);
  });
});

describe("rootsCell", () => {
  it.each<[StatusRow["roots"], string]>([
    [undefined, "-"],
    [{ count: 1, rotation: "none" }, "1"],
    [{ count: 2, rotation: "trust" }, "2 (rotation step 1/3)"],
    [{ count: 2, rotation: "overlap", until: "2026-06-02T01:00:00Z" }, "2 (old root until 2026-06-02T01:00:00Z)"],
  ])("%j -> %s", (roots, cell) => {
    expect(rootsCell(row({ roots }))).toBe(cell);
  });
});

describe("formatTable", () => {
  it("kubectl's layout: left-aligned columns three spaces apart, the last one unpadded", () => {
    const text = formatTable(report([
      row({ roots: { count: 2, rotation: "overlap", until: "2026-06-02T01:00:00Z" } }),
      row({ namespace: "other", name: "failed-one", state: "FAILED", error: "issuer said no", certificate: undefined,
        target: { state: "missing", summary: "no secret istio-system/cacerts", message: "" }, roots: undefined,
        bounce: { directive: "other/b", state: "error", message: "pods gone", cycle: "other/failed-one#1" } }),
    ]));
    expect(text).toBe([
      "NAMESPACE   NAME         STATE      KEY                              ROOTS                                     NOT AFTER              RENEWS IN   ERROR            BOUNCE",
      "mesh        ic           FINISHED   ECDSA-P256                       2 (old root until 2026-06-02T01:00:00Z)   2027-02-21T12:00:00Z   143d        -                -",
      "other       failed-one   FAILED     no secret istio-system/cacerts   -                                         -                      -           issuer said no   error: pods gone",
      "",
    ].join("\n"));
  });
});

describe("formatReport -o json / -o yaml", () => {
  const rows = [row(), row({ name: "b", bounce: { directive: "mesh/b", state: "waiting", message: "x: y", cycle: "mesh/b#1" }, problems: ["overdue"] })];

  it("json: the time and the rows as they are", () => {
    expect(JSON.parse(formatReport(report(rows), "json"))).toEqual({ now: "2026-06-01T12:00:00Z", items: rows });
  });

  it("yaml: the same document", () => {
    const text = formatReport(report(rows), "yaml");
    expect(parseYaml(text)).toEqual({ now: "2026-06-01T12:00:00Z", items: rows });
    expect(text).toMatch(/^now: '2026-06-01T12:00:00Z'\nitems:\n {2}- namespace: mesh\n/);
  });

  it("an empty list is still a document", () => {
    expect(JSON.parse(formatReport(report([]), "json"))).toEqual({ now: "2026-06-01T12:00:00Z", items: [] });
    expect(parseYaml(formatReport(report([]), "yaml"))).toEqual({ now: "2026-06-01T12:00:00Z", items: [] });
  });
});
