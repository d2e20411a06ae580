// Pure helpers of the benchmark: percentiles, interval arithmetic for the latency split, key-spec names.
import type { KeySpec } from "../../shared/pki";

export interface Summary {
  n: number;
  min: number;
  median: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/**
 * Nearest-rank percentile (p in 0..100) of values: the smallest value with at least p% of the values at
 * or below it. With fewer than 100 values p99 is the maximum; with fewer than 10, p90 is too.
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile ${p} is not within 0..100`);
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

/** The median proper: the middle value, or the mean of the two middle values. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function summarize(values: readonly number[]): Summary {
  if (values.length === 0) return { n: 0, min: NaN, median: NaN, p90: NaN, p99: NaN, max: NaN, mean: NaN };
  return {
    n: values.length,
    min: Math.min(...values),
    median: median(values),
    p90: percentile(values, 90),
    p99: percentile(values, 99),
    max: Math.max(...values),
    mean: values.reduce((a, b) => a + b, 0) / values.length,
  };
}

export type Interval = readonly [number, number];

/** The total length covered by intervals (overlaps counted once), clipped to [from, to]. */
export function coveredLength(intervals: readonly Interval[], from = -Infinity, to = Infinity): number {
  const clipped = intervals
    .map(([a, b]) => [Math.max(a, from), Math.min(b, to)] as const)
    .filter(([a, b]) => b > a)
    .sort((x, y) => x[0] - y[0]);
  let total = 0;
  let start = NaN;
  let end = NaN;
  for (const [a, b] of clipped) {
    if (Number.isNaN(end) || a > end) {
      if (!Number.isNaN(end)) total += end - start;
      start = a;
      end = b;
    } else {
      end = Math.max(end, b);
    }
  }
  if (!Number.isNaN(end)) total += end - start;
  return total;
}

/** "ECDSA-P256", "ECDSA-P384", "RSA-2048", "RSA-3072", "RSA-4096" (describeKeySpec's names) -> KeySpec. */
export function parseKeySpecName(name: string): KeySpec {
  const m = /^(?:ECDSA-P(256|384)|RSA-(2048|3072|4096))$/i.exec(name.trim());
  if (!m) throw new Error(`unknown key type ${JSON.stringify(name)}: ECDSA-P256, ECDSA-P384, RSA-2048, RSA-3072 or RSA-4096`);
  return m[1] ? { algorithm: "ECDSA", curve: m[1] === "256" ? "P-256" : "P-384" } : { algorithm: "RSA", bits: Number(m[2]) as 2048 | 3072 | 4096 };
}

/** A ratio as "1.23x" (or "n/a" when either side is missing). */
export function ratioText(value: number, floor: number): string {
  return Number.isFinite(value) && Number.isFinite(floor) && floor > 0 ? `${(value / floor).toFixed(2)}x` : "n/a";
}

/** Milliseconds for a table: one decimal below 10, whole above. */
export function ms(value: number): string {
  if (!Number.isFinite(value)) return "n/a";
  return value < 10 ? value.toFixed(1) : String(Math.round(value));
}
