// Which issuance an object belongs to, and the IssuedCertificate's own bookkeeping. One helper writes
// the stamp (owner, revision, key fingerprint) on the staged key, the CertificateRequest and the target
// secret, and one compares it: a stale object from another issuance is never paired with ours.
import { IssuedCertificate, ObjectMeta } from "../shared/api/types";
import {
  FAILURE_REASON_ANNOTATION,
  FAILURES_ANNOTATION,
  KEY_FINGERPRINT_ANNOTATION,
  OWNER_ANNOTATION,
  REVISION_ANNOTATION,
  RETRY_AFTER_ANNOTATION,
} from "./constants";

export const ownerKey = (ic: IssuedCertificate) => `${ic.metadata.namespace}/${ic.metadata.name}`;

export interface IssuanceStamp {
  /** "namespace/name" of the IssuedCertificate. */
  owner: string;
  revision: number;
  /** Hex SHA-256 of the public key. */
  fingerprint: string;
}

export function stampAnnotations(stamp: IssuanceStamp): Record<string, string> {
  return {
    [OWNER_ANNOTATION]: stamp.owner,
    [REVISION_ANNOTATION]: String(stamp.revision),
    [KEY_FINGERPRINT_ANNOTATION]: stamp.fingerprint,
  };
}

/** The stamp an object carries; revision 0 and "" for what is absent (older objects have none). */
export function readStamp(meta: ObjectMeta | undefined): IssuanceStamp {
  const annotations = meta?.annotations ?? {};
  return {
    owner: annotations[OWNER_ANNOTATION] ?? "",
    revision: parseCount(annotations[REVISION_ANNOTATION]),
    fingerprint: annotations[KEY_FINGERPRINT_ANNOTATION] ?? "",
  };
}

/** Same issuance: same owner and revision, and (when both name one) the same key. */
export function sameIssuance(a: IssuanceStamp, b: IssuanceStamp): boolean {
  return a.owner === b.owner && a.revision === b.revision && a.revision > 0 &&
    (a.fingerprint === "" || b.fingerprint === "" || a.fingerprint === b.fingerprint);
}

// ---- bookkeeping on the IssuedCertificate -------------------------------------------------------

export interface Bookkeeping {
  /** The revision of the current (or last) issuance; 0 before the first. */
  revision: number;
  /** Consecutive failures since the last success or spec change. */
  failures: number;
  /** Typed reason of the last failure (a Reason), "" when none. */
  failureReason: string;
  /** When the next retry is due (ms since epoch), undefined when none is scheduled. */
  retryAtMs?: number;
}

export function readBookkeeping(ic: IssuedCertificate): Bookkeeping {
  const annotations = ic.metadata.annotations ?? {};
  const retryAt = Date.parse(annotations[RETRY_AFTER_ANNOTATION] ?? "");
  return {
    revision: parseCount(annotations[REVISION_ANNOTATION]),
    failures: parseCount(annotations[FAILURES_ANNOTATION]),
    failureReason: annotations[FAILURE_REASON_ANNOTATION] ?? "",
    ...(Number.isFinite(retryAt) ? { retryAtMs: retryAt } : {}),
  };
}

/** The annotation patch that records `next` (null removes what is no longer true). */
export function bookkeepingPatch(next: Bookkeeping): Record<string, string | null> {
  return {
    [REVISION_ANNOTATION]: String(next.revision),
    [FAILURES_ANNOTATION]: next.failures > 0 ? String(next.failures) : null,
    [FAILURE_REASON_ANNOTATION]: next.failureReason || null,
    [RETRY_AFTER_ANNOTATION]: next.retryAtMs !== undefined ? new Date(next.retryAtMs).toISOString() : null,
  };
}

function parseCount(text: string | undefined): number {
  const n = Number(text);
  return Number.isSafeInteger(n) && n > 0 ? n : 0;
}
