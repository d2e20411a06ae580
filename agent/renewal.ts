// When a certificate is renewed: pure, derived from the certificate alone (its validity window and a
// hash of its bytes), so every restart, every replica and `cert-agent status` compute the same time.
//
// `--renew-before` says how long before notAfter to renew: a share of the lifetime ("1/3", "33%",
// "0.33") or a duration ("720h", "30d"). The default, 1/3, renews at 2/3 of the lifetime, like
// cert-manager. A duration that does not fit in the lifetime falls back to 1/3 (cert-manager does the
// same), so a short-lived certificate is never renewed at birth in a loop.
//
// Jitter: the renewal moves EARLIER (never later: it must not eat into the safety margin) by a
// per-certificate share of min(10% of the renew-before window, 24 h). Clusters whose intermediates were
// all issued the same second still renew spread over up to a day, and the issuer sees no stampede.
import { createHash } from "node:crypto";

export type RenewBefore = { share: number } | { durationMs: number };

export const DEFAULT_RENEW_BEFORE: RenewBefore = { share: 1 / 3 };
const MAX_JITTER_MS = 24 * 3_600_000;
const JITTER_SHARE_OF_WINDOW = 0.1;

const UNITS_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** "1/3", "33%", "0.33" (a share of the lifetime, in (0, 1)) or "720h", "30d", "90m", "45s". */
export function parseRenewBefore(text: string): RenewBefore {
  const t = text.trim();
  const invalid = () => new Error(`invalid --renew-before "${text}": use a share of the lifetime (1/3, 33%, 0.33) or a duration (720h, 30d)`);
  let share: number | undefined;
  const fraction = /^(\d+)\/(\d+)$/.exec(t);
  const percent = /^(\d+(?:\.\d+)?)%$/.exec(t);
  const duration = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(t);
  if (fraction) share = Number(fraction[1]) / Number(fraction[2]);
  else if (percent) share = Number(percent[1]) / 100;
  else if (/^0?\.\d+$/.test(t)) share = Number(t);
  else if (duration) {
    const durationMs = Math.round(Number(duration[1]) * UNITS_MS[duration[2]]);
    if (durationMs <= 0) throw invalid();
    return { durationMs };
  } else throw invalid();
  if (!(share > 0 && share < 1)) throw invalid();
  return { share };
}

export function describeRenewBefore(r: RenewBefore): string {
  return "share" in r ? `${Math.round(r.share * 1000) / 10}% of the lifetime` : `${Math.round(r.durationMs / 3_600_000)}h`;
}

export interface CertificateWindow {
  notBefore: Date;
  notAfter: Date;
  /** The certificate as written (PEM): the jitter's seed. */
  pem: string;
}

/** A number in [0, 1) fixed by the certificate's bytes. */
export function jitterShare(pem: string): number {
  return createHash("sha256").update(pem).digest().readUInt32BE(0) / 2 ** 32;
}

/** When to start renewing this certificate. */
export function renewalTime(cert: CertificateWindow, renewBefore: RenewBefore = DEFAULT_RENEW_BEFORE): Date {
  const start = cert.notBefore.getTime();
  const end = cert.notAfter.getTime();
  const lifetime = Math.max(0, end - start);
  let windowMs = "share" in renewBefore ? lifetime * renewBefore.share : renewBefore.durationMs;
  if (windowMs >= lifetime) windowMs = lifetime / 3; // the default share
  const jitterMs = Math.min(windowMs * JITTER_SHARE_OF_WINDOW, MAX_JITTER_MS) * jitterShare(cert.pem);
  return new Date(Math.round(end - windowMs - jitterMs));
}
