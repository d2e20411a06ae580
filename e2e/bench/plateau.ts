// Whether the agent's RSS stops growing over the soak (soak.ts), from its RSS samples alone (pure: the
// report and the chart recompute nothing else). Two views, because each alone misleads: the growth
// between two windows of means (robust to GC saw-teeth, blind to the trend inside them) and the slope
// of a least-squares line over the second half (the trend, what "stops growing" means).
import type { Plateau, RssSample } from "./result";

/** The soak length from which the windows are fixed: minutes 10-15 against the last 5. */
const FIXED_WINDOWS_FROM_MIN = 20;

/**
 * The windows compared, in minutes since the soak started. From 20 minutes on: minutes 10-15 (past the
 * warm-up: caches filled, V8's heap sized) against the last 5. Shorter soaks: the middle third against
 * the last third, the same idea scaled down.
 */
export function plateauWindows(minutes: number): { baseline: [number, number]; final: [number, number] } {
  if (minutes >= FIXED_WINDOWS_FROM_MIN) return { baseline: [10, 15], final: [minutes - 5, minutes] };
  return { baseline: [minutes / 3, (2 * minutes) / 3], final: [(2 * minutes) / 3, minutes] };
}

/** Mean of the samples with fromS <= tS < toS (the last window also takes a sample at exactly toS). */
export function meanBetween(samples: readonly RssSample[], fromS: number, toS: number, closed = false): number {
  const v = samples.filter((s) => s.tS >= fromS && (s.tS < toS || (closed && s.tS === toS))).map((s) => s.rssMiB);
  return v.length ? v.reduce((a, b) => a + b, 0) / v.length : NaN;
}

/** Mean RSS of each minute from tS 0 up to endS; the last minute may be partial. */
export function perMinuteMeans(samples: readonly RssSample[], endS: number): number[] {
  const out: number[] = [];
  for (let m = 0; m * 60 < endS; m++) out.push(meanBetween(samples, m * 60, Math.min((m + 1) * 60, endS), (m + 1) * 60 >= endS));
  return out;
}

/** Least-squares line through points: y = intercept + slope * x (NaN with fewer than two distinct x). */
export function leastSquares(points: readonly (readonly [number, number])[]): { slope: number; intercept: number } {
  const n = points.length;
  const mx = points.reduce((a, p) => a + p[0], 0) / n;
  const my = points.reduce((a, p) => a + p[1], 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of points) {
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
  }
  if (!(n >= 2 && sxx > 0)) return { slope: NaN, intercept: NaN };
  const slope = sxy / sxx;
  return { slope, intercept: my - slope * mx };
}

/** The second half's fit, x in seconds: what the chart draws and slopeMiBPer10Min is read from. */
export function secondHalfFit(samples: readonly RssSample[], minutes: number): { fromS: number; toS: number; slope: number; intercept: number } {
  const toS = minutes * 60;
  const fromS = toS / 2;
  const fit = leastSquares(samples.filter((s) => s.tS >= fromS && s.tS <= toS).map((s) => [s.tS, s.rssMiB] as const));
  return { fromS, toS, ...fit };
}

/** The plateau figures of a soak of `minutes`, from RSS samples with tS in seconds since its start. */
export function plateau(samples: readonly RssSample[], minutes: number): Plateau {
  const endS = minutes * 60;
  const inWindow = samples.filter((s) => s.tS <= endS);
  const rss = inWindow.map((s) => s.rssMiB);
  const w = plateauWindows(minutes);
  const mean = ([from, to]: [number, number], closed: boolean) => meanBetween(inWindow, from * 60, to * 60, closed);
  const baseline = { fromMin: w.baseline[0], toMin: w.baseline[1], meanMiB: mean(w.baseline, false) };
  const final = { fromMin: w.final[0], toMin: w.final[1], meanMiB: mean(w.final, true) };
  const fit = secondHalfFit(inWindow, minutes);
  return {
    startMiB: rss[0] ?? NaN,
    minMiB: rss.length ? Math.min(...rss) : NaN,
    maxMiB: rss.length ? Math.max(...rss) : NaN,
    endMiB: rss[rss.length - 1] ?? NaN,
    perMinuteMiB: perMinuteMeans(inWindow, endS),
    baseline,
    final,
    growthMiB: final.meanMiB - baseline.meanMiB,
    slopeMiBPer10Min: fit.slope * 600,
    fitFromMin: fit.fromS / 60,
  };
}
