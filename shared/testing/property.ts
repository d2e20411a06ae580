// Settings every property-based test (fast-check) shares: a fixed seed, so a run is repeatable and a
// failure can be replayed, and that seed in the test's title. fast-check prints the seed and the
// shrunk counterexample's path on failure; CERT_AGENT_PROPERTY_SEED=<seed> replays a run (e.g. one
// found by a CI run with another seed).
import type { Parameters } from "fast-check";

export const PROPERTY_SEED = Number(process.env.CERT_AGENT_PROPERTY_SEED ?? 20_261_128);

/** fast-check's parameters: the shared seed and `numRuns` cases. */
export function propertyRuns<T>(numRuns: number): Parameters<T> {
  return { seed: PROPERTY_SEED, numRuns };
}

/** "<what> (seed N)": the seed shows in the test's name. */
export const seeded = (what: string) => `${what} (seed ${PROPERTY_SEED})`;
