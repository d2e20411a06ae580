// Exponential backoff with jitter and a cap, shared by the work queue, informer restarts and the
// FAILED-state retry.

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  /** Source of randomness in [0, 1); injectable so tests are exact. */
  random?: () => number;
}

/**
 * Delay before retry number `attempt` (1-based): base * 2^(attempt-1), capped at max, then "equal
 * jitter": a uniform value in [d/2, d]. Half the delay is guaranteed, so many objects failing
 * together (an issuer outage) spread out without any of them retrying in a hot loop.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions): number {
  const random = opts.random ?? Math.random;
  const exponent = Math.min(Math.max(attempt, 1) - 1, 52);
  const capped = Math.min(opts.maxMs, opts.baseMs * 2 ** exponent);
  return Math.round(capped / 2 + random() * (capped / 2));
}

/** Parses "500ms", "5s", "10m", "2h" (or a bare number of milliseconds) into milliseconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new Error(`invalid duration "${text}": use a number with ms, s, m or h (e.g. 5s, 10m)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? "ms") as "ms" | "s" | "m" | "h"];
  return Math.round(Number(match[1]) * unit);
}
