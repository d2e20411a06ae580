// `npm run bench:renewal-jitter`: figures, not a test. A fleet of N clusters whose intermediates were
// all signed in the same second (real ECDSA P-256 certificates from the reference issuer's signing
// code, 365 days): how far apart their renewal times fall (agent/renewal.ts), i.e. how the jitter
// spreads the load on the issuer. The spread must stay within 24 h before the nominal point.
import { parseArgs } from "node:util";
import { renewalTime, DEFAULT_RENEW_BEFORE } from "../../agent/renewal";
import { buildCsr, generateKeyPair } from "../../shared/pki";
import { createRootCa, signIntermediate } from "../issuer/sign";

const HOUR = 3_600_000;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { count: { type: "string", default: "1000" }, help: { type: "boolean", short: "h" } } });
  if (values.help) {
    console.log("usage: npm run bench:renewal-jitter -- [--count N]   (N certificates signed in the same second, default 1000)");
    return;
  }
  const count = Number(values.count);
  if (!Number.isInteger(count) || count < 1) throw new Error(`--count must be a positive integer, got ${values.count}`);
  const root = await createRootCa();
  const now = new Date("2026-11-28T12:00:00Z");
  const lifetime = 365 * 24 * HOUR;
  const nominal = now.getTime() + lifetime * (1 - DEFAULT_RENEW_BEFORE_SHARE);
  const keys = await generateKeyPair({ algorithm: "ECDSA", curve: "P-256" }); // one key: the certificates still differ (serial, signature)
  const csrPem = await buildCsr({ keys, org: "cluster.local", hosts: ["spiffe://cluster.local/ns/istio-system/sa/istiod"] });
  const earlierHours: number[] = [];
  const started = Date.now();
  for (let i = 0; i < count; i++) {
    const pem = await signIntermediate({ csrPem, hosts: ["spiffe://cluster.local/ns/istio-system/sa/istiod"], ttlDays: 365, root, now });
    earlierHours.push((nominal - renewalTime({ notBefore: now, notAfter: new Date(now.getTime() + lifetime), pem }, DEFAULT_RENEW_BEFORE).getTime()) / HOUR);
  }
  earlierHours.sort((a, b) => a - b);
  const q = (p: number) => earlierHours[Math.min(count - 1, Math.floor(p * count))];
  const mean = earlierHours.reduce((a, b) => a + b, 0) / count;
  const sd = Math.sqrt(earlierHours.reduce((a, b) => a + (b - mean) ** 2, 0) / count);
  const buckets = new Array(8).fill(0);
  for (const h of earlierHours) buckets[Math.min(7, Math.floor(h / 3))]++;
  const maxInOneMinute = Math.max(...earlierHours.map((h) => earlierHours.filter((x) => x >= h && x < h + 1 / 60).length));
  console.log(`${count} certificates signed in the same second (365 days, --renew-before 1/3), made in ${Date.now() - started} ms`);
  console.log(`renewal time before the nominal point (2/3 of the lifetime), hours: min ${q(0).toFixed(2)}, p10 ${q(0.1).toFixed(2)}, median ${q(0.5).toFixed(2)}, p90 ${q(0.9).toFixed(2)}, max ${earlierHours[count - 1].toFixed(2)}; mean ${mean.toFixed(2)}, sd ${sd.toFixed(2)}`);
  console.log(`spread (max - min): ${(earlierHours[count - 1] - earlierHours[0]).toFixed(2)} h; at most ${maxInOneMinute} renewals in any one minute`);
  console.log(`per 3-hour bucket (0-3 h earlier ... 21-24 h earlier): ${buckets.join(" ")}`);
}

const DEFAULT_RENEW_BEFORE_SHARE = "share" in DEFAULT_RENEW_BEFORE ? DEFAULT_RENEW_BEFORE.share : 1 / 3;

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
