// `cert-agent status`, the presentation: a kubectl-style table for people, and the same rows as JSON or
// YAML for scripts. Pure functions of a StatusReport.
import { dumpYaml } from "@kubernetes/client-node";
import { boundedText } from "../../shared/text/bounded";
import type { OutputFormat } from "./flags";
import type { StatusReport, StatusRow } from "./rows";

export const COLUMNS = ["NAMESPACE", "NAME", "STATE", "KEY", "ROOTS", "NOT AFTER", "RENEWS IN", "ERROR", "BOUNCE"] as const;

const UNITS: [string, number][] = [["d", 86_400], ["h", 3_600], ["m", 60], ["s", 1]];

/** The largest whole unit, rounded down like kubectl's ages: "243d", "5h", "12m", "0s". */
export function humanDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const [unit, size] = UNITS.find(([, size]) => s >= size) ?? ["s", 1];
  return `${Math.floor(s / size)}${unit}`;
}

export function renewsIn(row: StatusRow): string {
  if (!row.certificate) return "-";
  const s = row.certificate.renewsInSeconds;
  return s >= 0 ? humanDuration(s) : `overdue ${humanDuration(-s)}`;
}

/**
 * One line of printable text: status.error and the bounce message come from the API, where anyone
 * with write access could have put newlines, terminal escape sequences or a megabyte of text. Plain
 * whitespace (a multi-line message) reads best as spaces; anything else unprintable is escaped, and the
 * length bounded, by the project's rule for foreign text (boundedText).
 */
export function oneLine(text: string): string {
  return boundedText(text.replace(/[\t\n\v\f\r ]+/g, " ").trim());
}

function keyCell(row: StatusRow): string {
  if (row.target.state === "ok") return row.certificate?.key ?? "-";
  if (row.target.state === "original") return `${row.certificate?.key ?? "-"} (${row.target.summary})`;
  return row.target.summary;
}

/** How many roots root-cert.pem holds, and the root rotation's step: "1", "2 (rotation step 1/3)", "2 (old root until 2026-06-02T01:00:00Z)". */
export function rootsCell(row: StatusRow): string {
  const r = row.roots;
  if (!r) return "-";
  if (r.rotation === "trust") return `${r.count} (rotation step 1/3)`;
  if (r.rotation === "overlap") return `${r.count} (old root until ${r.until})`;
  return String(r.count);
}

function bounceCell(row: StatusRow): string {
  const b = row.bounce;
  if (!b || b.state === "none") return "-";
  if (b.state === "missing") return `directive ${b.directive} missing`;
  if (b.state === "unreadable") return `cannot read directive ${b.directive}`;
  return b.message ? `${b.state}: ${b.message}` : b.state;
}

export function cells(row: StatusRow): string[] {
  return [
    row.namespace,
    row.name,
    row.state || "-",
    keyCell(row),
    rootsCell(row),
    row.certificate?.notAfter ?? "-",
    renewsIn(row),
    oneLine(row.error) || "-",
    oneLine(bounceCell(row)) || "-",
  ].map(oneLine);
}

/** Columns left-aligned, three spaces apart, the last one unpadded: what kubectl get prints. */
export function formatTable(report: StatusReport): string {
  const lines = [[...COLUMNS], ...report.rows.map(cells)];
  const widths = COLUMNS.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  return lines.map((l) => l.map((cell, i) => (i === l.length - 1 ? cell : cell.padEnd(widths[i]))).join("   ")).join("\n") + "\n";
}

/** The structured form: the time the rows were computed for, and the rows themselves. */
const document = (report: StatusReport) => ({ now: report.now, items: report.rows });

export function formatReport(report: StatusReport, output: OutputFormat): string {
  switch (output) {
    case "json":
      return JSON.stringify(document(report), null, 2) + "\n";
    case "yaml":
      return dumpYaml(document(report));
    case "table":
      return formatTable(report);
  }
}
