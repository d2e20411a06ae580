// `cert-agent status`, the pure part: from the objects as read (gather.ts) and a clock, one row per
// IssuedCertificate and the verdict (the exit code). No I/O, so every case is a table row in
// rows.test.ts with a fixed `now`.
//
// Only ca-cert.pem is parsed: the row says what the installed certificate is and when it expires or
// is renewed; ca-key.pem is never read (whether it is present is all a row may say about it).
import type { IssuedCertificate, ObjectRef, PodBounceDirective } from "../../shared/api/types";
import type { Secret } from "../../shared/kube/secrets";
import { describeCertificate } from "../../shared/pki";
import { type BounceOutcome, readBounceProgress } from "../bouncer/cycle";
import { CA_CERT, ROOT_CERT } from "../constants";
import { readRootRotation, rootFingerprints } from "../root-rotation";
import { type RenewBefore, renewalTime } from "../renewal";
import { BUNDLE_KEYS, secretData, targetConflict, writtenByOriginalAgent } from "../secrets";

/** The exit codes, one meaning each (documented in --help and the README). */
export const EXIT_OK = 0;
export const EXIT_PROBLEM = 1;
export const EXIT_ERROR = 2;

/** One GET as gather.ts saw it: the object, a 404, or another error (its message, safe to print). */
export type Fetched<T> = { state: "found"; object: T } | { state: "missing" } | { state: "error"; message: string };

export interface StatusInput {
  ic: IssuedCertificate;
  /** The secret targetRef(ic) names; undefined when the spec names none. */
  target?: Fetched<Secret>;
  /** The PodBounceDirective directiveRef(ic) names; undefined when the spec names none. */
  directive?: Fetched<PodBounceDirective>;
}

export interface RowOptions {
  now: Date;
  renewBefore: RenewBefore;
  overdueAfterMs: number;
}

/**
 * ok: ours, complete, ca-cert.pem parses. original: the same, but written by Gloo Mesh's own agent for
 * this IssuedCertificate (a migration: the agent adopts it). missing: no such secret. foreign: not
 * ours to manage (the agent refuses to touch it). incomplete: ours but a key is absent. unparsable:
 * ca-cert.pem does not parse. unreadable: the GET failed (not a 404). unspecified: the spec names no
 * valid target.
 */
export type TargetState = "ok" | "original" | "missing" | "foreign" | "incomplete" | "unparsable" | "unreadable" | "unspecified";

/** What makes the exit code 1. */
export type Problem = "failed" | "expired" | "overdue";

export interface StatusRow {
  namespace: string;
  name: string;
  /** status.state; "" before the agent wrote one. */
  state: string;
  /** status.error, "" when none. */
  error: string;
  target: {
    namespace?: string;
    name?: string;
    state: TargetState;
    /** A few words for the KEY cell when there is no key type to show (or, for original, beside it); "" when ok. */
    summary: string;
    /** The whole explanation, "" when ok. */
    message: string;
  };
  /** What ca-cert.pem certifies, when it parses (also for an incomplete target: it is what istiod has). */
  certificate?: {
    /** describeCertificate's key type, e.g. "ECDSA-P256", "RSA-4096". */
    key: string;
    notBefore: string;
    notAfter: string;
    /** renewalTime() with --renew-before: what the agent computes for the same bytes. */
    renewalTime: string;
    /** renewalTime - now; negative once due. */
    renewsInSeconds: number;
  };
  /** The roots root-cert.pem holds and the root rotation the target records (root-rotation.ts), when it has a root-cert.pem. */
  roots?: {
    count: number;
    /** none; trust: step 1 (old and new roots trusted, the old intermediate in place); overlap: step 2, until `until`. */
    rotation: "none" | "trust" | "overlap";
    until?: string;
  };
  /** Only when the spec names a PodBounceDirective. */
  bounce?: {
    directive: string;
    /** The bouncer's outcome for its latest cycle, "none" before any, or why it cannot be read. */
    state: BounceOutcome | "none" | "missing" | "unreadable";
    message: string;
    /** "<namespace>/<name>#<revision>" of the issuance the progress is about. */
    cycle?: string;
  };
  problems: Problem[];
}

export interface StatusReport {
  now: string;
  rows: StatusRow[];
  /** 1 when a row has a problem; else 2 when something could not be read; else 0. */
  exitCode: number;
}

/** The target secret, as the agent reads it (spec.ts refuses a target without a name or namespace). */
export function targetRef(ic: IssuedCertificate): ObjectRef | undefined {
  const ref = ic.spec?.issuedCertificateSecret;
  return ref?.name && ref.namespace ? { name: ref.name, namespace: ref.namespace } : undefined;
}

/** The PodBounceDirective, as the agent reads it: in the IssuedCertificate's namespace unless named. */
export function directiveRef(ic: IssuedCertificate): ObjectRef | undefined {
  const ref = ic.spec?.podBounceDirective;
  return ref?.name ? { name: ref.name, namespace: ref.namespace || ic.metadata.namespace || "" } : undefined;
}

/** RFC 3339 to the second: certificates have no sub-second precision, and it reads better. */
export const isoSeconds = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

export async function statusReport(inputs: readonly StatusInput[], o: RowOptions): Promise<StatusReport> {
  const rows = await Promise.all(inputs.map((input) => statusRow(input, o)));
  const order = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  rows.sort((a, b) => order(a.namespace, b.namespace) || order(a.name, b.name));
  // A known problem outranks an incomplete read: a script alerting on 1 must not miss a FAILED
  // certificate because some unrelated secret was unreadable.
  const unreadable = rows.some((r) => r.target.state === "unreadable" || r.bounce?.state === "unreadable");
  const exitCode = rows.some((r) => r.problems.length > 0) ? EXIT_PROBLEM : unreadable ? EXIT_ERROR : EXIT_OK;
  return { now: isoSeconds(o.now), rows, exitCode };
}

export async function statusRow(input: StatusInput, o: RowOptions): Promise<StatusRow> {
  const { ic } = input;
  const { target, certificate, roots } = await readTarget(input);
  const row: StatusRow = {
    namespace: ic.metadata.namespace ?? "",
    name: ic.metadata.name ?? "",
    state: ic.status?.state ?? "",
    error: ic.status?.error ?? "",
    target,
    problems: [],
  };
  const renewAt = certificate && renewalTime(certificate, o.renewBefore);
  if (certificate && renewAt) {
    row.certificate = {
      key: certificate.key,
      notBefore: isoSeconds(certificate.notBefore),
      notAfter: isoSeconds(certificate.notAfter),
      renewalTime: isoSeconds(renewAt),
      renewsInSeconds: Math.trunc((renewAt.getTime() - o.now.getTime()) / 1000),
    };
  }
  if (roots) row.roots = roots;
  const bounce = readBounce(input);
  if (bounce) row.bounce = bounce;

  if (row.state === "FAILED") row.problems.push("failed");
  if (certificate && certificate.notAfter.getTime() <= o.now.getTime()) row.problems.push("expired");
  // The agent starts renewing at the renewal time; a short overlap while it works is normal.
  if (renewAt && o.now.getTime() - renewAt.getTime() > o.overdueAfterMs) row.problems.push("overdue");
  return row;
}

interface InstalledCertificate {
  key: string;
  notBefore: Date;
  notAfter: Date;
  /** ca-cert.pem as written: renewalTime's jitter is seeded by these bytes. */
  pem: string;
}

async function readTarget(input: StatusInput): Promise<{ target: StatusRow["target"]; certificate?: InstalledCertificate; roots?: StatusRow["roots"] }> {
  const ref = targetRef(input.ic);
  if (!ref || !input.target) {
    return { target: { state: "unspecified", summary: "no target in spec", message: "spec.issuedCertificateSecret names no secret (name and namespace)" } };
  }
  const where = `${ref.namespace}/${ref.name}`;
  const base = { namespace: ref.namespace, name: ref.name };
  const fetched = input.target;
  if (fetched.state === "missing") {
    return { target: { ...base, state: "missing", summary: `no secret ${where}`, message: `target secret ${where} does not exist` } };
  }
  if (fetched.state === "error") {
    return { target: { ...base, state: "unreadable", summary: `cannot read ${where}`, message: `target secret ${where} could not be read: ${fetched.message}` } };
  }
  const secret = fetched.object;
  // The agent's own ownership rules (label, type, owner annotation; the original agent's secret it
  // adopts), so status and agent never disagree about whose secret it is.
  const original = writtenByOriginalAgent(secret, input.ic, ref);
  const conflict = original ? undefined : targetConflict(secret, input.ic);
  if (conflict) {
    return { target: { ...base, state: "foreign", summary: `foreign secret ${where}`, message: conflict } };
  }
  // Presence only: ca-key.pem's content is never looked at.
  const absent = BUNDLE_KEYS.filter((k) => !secretData(secret, k));
  const pem = secretData(secret, CA_CERT);
  let certificate: InstalledCertificate | undefined;
  if (pem) {
    try {
      const summary = await describeCertificate(pem);
      certificate = { key: summary.keyDescription, notBefore: summary.notBefore, notAfter: summary.notAfter, pem };
    } catch {
      // The parser's message may quote its input; say which part is broken, nothing more.
      return { target: { ...base, state: "unparsable", summary: `unparsable ${CA_CERT}`, message: `target secret ${where}: ${CA_CERT} is not one parseable PEM certificate` } };
    }
  }
  if (absent.length > 0) {
    const lacks = `${where} lacks ${absent.join(", ")}`;
    return { target: { ...base, state: "incomplete", summary: lacks, message: `target secret ${lacks}` }, ...(certificate ? { certificate } : {}) };
  }
  const roots = readRoots(secret);
  if (original) {
    return { target: { ...base, state: "original", summary: "Gloo Mesh agent's", message: `target secret ${where} was written by Gloo Mesh's agent; cert-agent adopts it` }, certificate, roots };
  }
  return { target: { ...base, state: "ok", summary: "", message: "" }, certificate, roots };
}

function readRoots(secret: Secret): StatusRow["roots"] {
  const rotation = readRootRotation(secret.metadata.annotations);
  const count = rootFingerprints(secretData(secret, ROOT_CERT) ?? "").length;
  if (!rotation) return { count, rotation: "none" };
  return rotation.phase === "overlap" ? { count, rotation: "overlap", until: rotation.until } : { count, rotation: "trust" };
}

function readBounce(input: StatusInput): StatusRow["bounce"] {
  const ref = directiveRef(input.ic);
  if (!ref || !input.directive) return undefined;
  const directive = `${ref.namespace}/${ref.name}`;
  const fetched = input.directive;
  if (fetched.state === "missing") return { directive, state: "missing", message: `PodBounceDirective ${directive} does not exist` };
  if (fetched.state === "error") return { directive, state: "unreadable", message: `PodBounceDirective ${directive} could not be read: ${fetched.message}` };
  const progress = readBounceProgress(fetched.object);
  if (!progress) return { directive, state: "none", message: "" };
  return { directive, state: progress.outcome, message: progress.message, cycle: progress.cycle };
}
