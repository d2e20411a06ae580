import { DEFAULT_RENEW_BEFORE, describeRenewBefore, jitterShare, parseRenewBefore, renewalTime } from "./renewal";

const DAY = 86_400_000;
const HOUR = 3_600_000;
const T0 = new Date("2026-01-01T00:00:00Z");
const cert = (lifetimeMs: number, pem = "cert A") => ({ notBefore: T0, notAfter: new Date(T0.getTime() + lifetimeMs), pem });

describe("parseRenewBefore", () => {
  it.each([
    ["1/3", { share: 1 / 3 }],
    ["33%", { share: 0.33 }],
    ["12.5%", { share: 0.125 }],
    ["0.25", { share: 0.25 }],
    [".5", { share: 0.5 }],
    [" 720h ", { durationMs: 720 * HOUR }],
    ["30d", { durationMs: 30 * DAY }],
    ["90m", { durationMs: 90 * 60_000 }],
    ["45s", { durationMs: 45_000 }],
    // Several digits everywhere: numerator, denominator, decimals.
    ["10/30", { share: 1 / 3 }],
    ["2/10", { share: 0.2 }],
    ["12.25%", { share: 0.1225 }],
    ["1.25h", { durationMs: 4_500_000 }],
    ["0.125", { share: 0.125 }],
  ])("%s", (text, expected) => {
    expect(parseRenewBefore(text)).toEqual(expected);
  });

  it.each(["x1/3", "1/3x", "x33%", "33%x", "x0.25", "0.25x", "1.5xh", "1.h", "1.5%%", "", "0", "1", "3/3", "4/3", "0/3", "100%", "0%", "1.5", "-1h", "0h", "10", "10y", "1/0", "abc",
    // Anchored at both ends: no valid prefix or suffix is taken for the whole.
    "1h30m", "30dx", "00.5", "+.5", "0.5e-1", ".5x"])("refuses %j with a message that says what is accepted", (text) => {
    expect(() => parseRenewBefore(text)).toThrow(`invalid --renew-before "${text}": use a share of the lifetime (1/3, 33%, 0.33) or a duration (720h, 30d)`);
  });

  it("describes both forms", () => {
    expect(describeRenewBefore(DEFAULT_RENEW_BEFORE)).toBe("33.3% of the lifetime");
    expect(describeRenewBefore({ durationMs: 720 * HOUR })).toBe("720h");
  });
});

describe("renewalTime", () => {
  it("is the same for the same certificate and differs between certificates (a hash of its bytes)", () => {
    expect(jitterShare("cert A")).toBe(jitterShare("cert A"));
    expect(jitterShare("cert A")).not.toBe(jitterShare("cert B"));
    expect(jitterShare("cert A")).toBeGreaterThanOrEqual(0);
    expect(jitterShare("cert A")).toBeLessThan(1);
  });

  it.each([
    // [name, lifetime, renewBefore, nominal renewal point, jitter span]
    ["365 days, default 1/3: at 2/3 of the lifetime, jitter up to 24 h earlier", 365 * DAY, DEFAULT_RENEW_BEFORE, (365 * DAY * 2) / 3, 24 * HOUR],
    ["365 days, 30d before: 335 days in, jitter up to 24 h", 365 * DAY, { durationMs: 30 * DAY }, 335 * DAY, 24 * HOUR],
    ["1 day, 25%: 18 h in, jitter up to 10% of 6 h", DAY, { share: 0.25 }, 18 * HOUR, 0.6 * HOUR],
    ["1 day, 48h before does not fit: falls back to 1/3", DAY, { durationMs: 48 * HOUR }, 16 * HOUR, 0.8 * HOUR],
  ])("%s", (_name, lifetime, renewBefore, nominalMs, spanMs) => {
    const c = cert(lifetime);
    const at = renewalTime(c, renewBefore).getTime() - T0.getTime();
    const expected = nominalMs - spanMs * jitterShare(c.pem);
    expect(Math.abs(at - expected)).toBeLessThanOrEqual(1);
    expect(at).toBeLessThanOrEqual(nominalMs);
    expect(at).toBeGreaterThan(nominalMs - spanMs);
  });

  it("a certificate without a lifetime (notAfter <= notBefore) renews at its notAfter", () => {
    const c = { notBefore: T0, notAfter: T0, pem: "x" };
    expect(renewalTime(c).getTime()).toBe(T0.getTime());
  });
});
