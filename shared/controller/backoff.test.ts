import { backoffDelay, parseDuration } from "./backoff";

describe("backoffDelay", () => {
  const opts = { baseMs: 1000, maxMs: 60_000 };

  it.each([
    [1, 0, 500],
    [1, 0.999999, 1000],
    [2, 0, 1000],
    [3, 0.5, 3000],
    [7, 0, 30_000],
    [7, 0.999999, 60_000],
    [50, 0.5, 45_000],
    [10_000, 0.999999, 60_000],
  ])("attempt %i with random %f waits %i ms", (attempt, r, expected) => {
    expect(backoffDelay(attempt, { ...opts, random: () => r })).toBe(expected);
  });

  it("never exceeds the cap and never drops below half of it once capped", () => {
    for (let attempt = 1; attempt < 100; attempt++) {
      const d = backoffDelay(attempt, opts);
      expect(d).toBeLessThanOrEqual(60_000);
      expect(d).toBeGreaterThanOrEqual(Math.min(60_000, 1000 * 2 ** (attempt - 1)) / 2);
    }
  });
});

describe("parseDuration", () => {
  it.each([
    ["250ms", 250],
    ["5s", 5000],
    ["1.5m", 90_000],
    ["2h", 7_200_000],
    ["42", 42],
  ])("%s = %i ms", (text, ms) => expect(parseDuration(text)).toBe(ms));

  it.each(["", "5 days", "-1s", "s"])("rejects %p", (text) => expect(() => parseDuration(text)).toThrow(/invalid duration/));
});
