// The key types the agent supports, for tests that run over each of them.
import { describeKeySpec, generateKeyPair, type KeySpec } from "../index";

export const ALL_KEY_SPECS: readonly KeySpec[] = [
  { algorithm: "RSA", bits: 2048 },
  { algorithm: "RSA", bits: 3072 },
  { algorithm: "RSA", bits: 4096 }, // the slow one (1.5-5 s per key)
  { algorithm: "ECDSA", curve: "P-256" },
  { algorithm: "ECDSA", curve: "P-384" },
];

/** All but RSA-4096: for files where one slow key elsewhere is enough. */
export const FAST_KEY_SPECS: readonly KeySpec[] = ALL_KEY_SPECS.filter((s) => !(s.algorithm === "RSA" && s.bits === 4096));

/** One key pair per spec, keyed by describeKeySpec; generated concurrently (Node's WebCrypto uses the thread pool). */
export async function keyPairsFor(specs: readonly KeySpec[]): Promise<Map<string, CryptoKeyPair>> {
  const generated = await Promise.all(specs.map((spec) => generateKeyPair(spec)));
  return new Map(specs.map((spec, i) => [describeKeySpec(spec), generated[i]]));
}
