// decide() on arbitrary observations (property-based, seeded): whatever observe could hand it, within
// the types (strings of any text, any counts, any combination of summaries, states and bookkeeping), it
// never throws and answers one action of the Decision union, with a usable requeue delay.
import fc from "fast-check";
import { issuedCertificate } from "../shared/api/builders";
import { ISSUED_CERTIFICATE_STATES, IssuedCertificate } from "../shared/api/types";
import { CertificateVerificationError, CertificateVerificationReason, ImportedPrivateKey, KeySpec } from "../shared/pki";
import { propertyRuns, seeded } from "../shared/testing/property";
import { Reason } from "./constants";
import { Decision, decide, DecideOptions } from "./decide";
import { IssuanceStamp } from "./issuance";
import { DirectiveSummary, Observed, RequestSummary, StagedKeySummary, TargetSummary, Verdict } from "./observe";
import { CertificateIntent, InvalidSpecError } from "./spec";

const ACTIONS: readonly Decision["action"][] = ["none", "begin", "fail", "request", "rerequest", "write", "adopt", "adoptOriginal", "requestBounce", "awaitBounce", "finish"];
const REASONS: readonly string[] = Object.values(Reason);

// Small domains, mostly: the deep branches need fields that agree (same owner, revision, fingerprint,
// certificate); any text and any count now and then.
const text = fc.oneof({ arbitrary: fc.constantFrom("", "mesh/ic", "fp", "CERT"), weight: 6 }, fc.string({ unit: "binary", maxLength: 30 }));
const count = fc.oneof({ arbitrary: fc.nat(2), weight: 6 }, fc.nat());
/** Dates as the certificate parser returns them (valid: it refuses others): mostly within hours of one
 * another (so that waits, timeouts and validity windows are met), any from 2000 to 2100 too. */
const T = Date.parse("2026-06-01T00:00:00Z");
const date = fc.oneof(
  { arbitrary: fc.integer({ min: -7_200_000, max: 7_200_000 }).map((ms) => new Date(T + ms)), weight: 3 },
  fc.date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2100-01-01T00:00:00Z"), noInvalidDate: true }),
);
/** The variant observe usually reads, weighted up against the others. */
const often = <T>(arb: fc.Arbitrary<T>) => ({ arbitrary: arb, weight: 3 });
const keySpec: fc.Arbitrary<KeySpec> = fc.constantFrom<KeySpec>(
  { algorithm: "RSA", bits: 2048 }, { algorithm: "RSA", bits: 3072 }, { algorithm: "RSA", bits: 4096 },
  { algorithm: "ECDSA", curve: "P-256" }, { algorithm: "ECDSA", curve: "P-384" });
const stamp: fc.Arbitrary<IssuanceStamp> = fc.record({ owner: fc.oneof({ arbitrary: fc.constant("mesh/ic"), weight: 4 }, text), revision: count, fingerprint: text });
const reason = fc.oneof(fc.constantFrom(...REASONS), text);

const target: fc.Arbitrary<TargetSummary> = fc.oneof(
  fc.constant({ state: "missing" as const }),
  fc.record({ state: fc.constant("foreign" as const), message: text }),
  fc.record({ state: fc.constant("original" as const), fingerprint: text }),
  fc.record({ state: fc.constant("incomplete" as const), message: text, stamp }),
  fc.record({ state: fc.constant("invalid" as const), message: text, stamp }),
  often(fc.record({ state: fc.constant("valid" as const), stamp, caCertPem: text, keyDescription: fc.oneof(fc.constantFrom("RSA-4096", "ECDSA-P256"), text),
    sanKeys: fc.array(text, { maxLength: 3 }), notBefore: date, notAfter: date, rootCertPem: text, rootShas: fc.array(text, { maxLength: 2 }) })),
);
const staged: fc.Arbitrary<StagedKeySummary> = fc.oneof(
  fc.constant({ state: "missing" as const }),
  fc.record({ state: fc.constant("foreign" as const), message: text }),
  fc.record({ state: fc.constant("unreadable" as const), stamp, message: text }),
  often(fc.record({ state: fc.constant("ready" as const), stamp, pem: text, fingerprint: text,
    key: keySpec.map((spec) => ({ spec } as ImportedPrivateKey)) })),
);
const request: fc.Arbitrary<RequestSummary> = fc.oneof(
  fc.constant({ state: "missing" as const }),
  often(fc.record({ state: fc.constant("present" as const), stamp, answer: fc.constantFrom("pending" as const, "failed" as const, "finished" as const, "finished" as const),
    error: text, certificatePem: text, rootPem: text })),
);
const verdict: fc.Arbitrary<Verdict> = fc.oneof(
  often(fc.record({ ok: fc.constant(true as const), certificate: fc.record({ subject: text, issuer: text, sans: fc.array(text, { maxLength: 2 }),
    notBefore: date, notAfter: date, serialNumber: text, keyDescription: text }) })),
  fc.record({ ok: fc.constant(false as const), error: fc.tuple(fc.constantFrom<CertificateVerificationReason>("Malformed", "UntrustedChain", "Expired"), text)
    .map(([r, detail]) => new CertificateVerificationError(r, detail)) }),
);
const ref = fc.record({ name: text, namespace: text });
const directive: fc.Arbitrary<DirectiveSummary> = fc.oneof(
  fc.record({ state: fc.constant("missing" as const), ref }),
  fc.record({ state: fc.constant("present" as const), ref,
    request: fc.option(fc.record({ cycle: fc.oneof(fc.constantFrom("mesh/ic#1", "mesh/ic#2"), text), requestedAt: fc.oneof(date.map((d) => d.toISOString()), text) }), { nil: undefined }),
    progress: fc.option(fc.record({ cycle: fc.oneof(fc.constantFrom("mesh/ic#1", "mesh/ic#2"), text), outcome: fc.constantFrom("waiting" as const, "error" as const, "done" as const), message: text }), { nil: undefined }) },
  { requiredKeys: ["state", "ref"] }),
);
const intent: fc.Arbitrary<CertificateIntent | InvalidSpecError> = fc.oneof(
  { weight: 6, arbitrary: fc.record({ hosts: fc.array(text, { maxLength: 3 }), org: text, keySpec, target: ref }) },
  text.map((message) => new InvalidSpecError(message)),
);
const optional = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });

/** Mostly true. */
const usually = fc.oneof({ arbitrary: fc.constant(true), weight: 3 }, fc.constant(false));
/** Mostly present. */
const mostly = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 4 });

const observed: fc.Arbitrary<Observed> = fc.record({
  generation: count,
  status: mostly(fc.record({ observedGeneration: optional(count), state: mostly(fc.constantFrom(...ISSUED_CERTIFICATE_STATES)), error: optional(text) })),
  book: fc.record({ revision: count, failures: count, failureReason: reason, retryAtMs: optional(date.map((d) => d.getTime())) }, { requiredKeys: ["revision", "failures", "failureReason"] }),
  intent, target,
  staged: mostly(staged), request: mostly(request), verdict: mostly(verdict), directive: optional(directive),
  targetCollidesWith: fc.option(text, { nil: undefined, freq: 8 }),
  bounceDirective: optional(ref),
  // What observe's reads usually agree on: the status is of the current generation; the staged key, the
  // request, the target and the bounce request belong to the current issuance (the target, half the
  // time, to the previous one: what REQUESTED of a re-issue sees); the key is of the asked type.
  agree: fc.record({ generation: usually, staged: usually, request: usually, target: usually, targetOfPrevious: fc.boolean(), directive: usually, keySpec: usually }),
}).map((g) => {
  const ic: IssuedCertificate = issuedCertificate({ name: "ic", namespace: "mesh", ...(g.bounceDirective ? { podBounceDirective: g.bounceDirective } : {}) });
  ic.metadata.generation = g.generation;
  if (g.status) ic.status = g.agree.generation ? { ...g.status, observedGeneration: g.generation } : g.status;
  const current: IssuanceStamp = { owner: "mesh/ic", revision: g.book.revision, fingerprint: "fp" };
  const agreeing = <T extends object>(summary: T | undefined, agree: boolean): T | undefined =>
    summary && agree && "stamp" in summary ? { ...summary, stamp: current } : summary;
  let stagedKey = agreeing(g.staged, g.agree.staged);
  if (stagedKey?.state === "ready" && g.agree.keySpec && "keySpec" in g.intent) stagedKey = { ...stagedKey, fingerprint: "fp", key: { ...stagedKey.key, spec: g.intent.keySpec } };
  const previous: IssuanceStamp = { ...current, revision: Math.max(0, current.revision - 1) };
  const targetNow = g.agree.target && g.agree.targetOfPrevious && "stamp" in g.target ? { ...g.target, stamp: previous } : agreeing(g.target, g.agree.target)!;
  const o: Observed = { ic, raw: {}, book: g.book, intent: g.intent, target: targetNow };
  const directiveNow = g.directive?.state === "present" && g.directive.request && g.agree.directive
    ? { ...g.directive, request: { ...g.directive.request, cycle: `mesh/ic#${g.book.revision}` } } : g.directive;
  const parts = { staged: stagedKey, request: agreeing(g.request, g.agree.request), verdict: g.verdict, directive: directiveNow, targetCollidesWith: g.targetCollidesWith };
  for (const [k, v] of Object.entries(parts)) if (v !== undefined) Object.assign(o, { [k]: v });
  return o;
});

/** The options as config.ts validates them. */
const options: fc.Arbitrary<DecideOptions> = fc.record({
  now: date,
  retryBackoff: fc.record({ baseMs: fc.integer({ min: 1, max: 60_000 }), maxMs: fc.integer({ min: 60_000, max: 3_600_000 }), random: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }).map((r) => () => r) }),
  resyncMs: fc.integer({ min: 1, max: 3_600_000 }),
  conflictRecheckMs: fc.integer({ min: 1, max: 3_600_000 }),
  bounceTimeoutMs: optional(fc.integer({ min: 1, max: 3_600_000 })),
  renewBefore: optional(fc.oneof(fc.double({ min: 0.01, max: 0.99, noNaN: true }).map((share) => ({ share })), fc.integer({ min: 1, max: 400 * 86_400_000 }).map((durationMs) => ({ durationMs })))),
});

describe(seeded("decide on arbitrary observations"), () => {
  it("never throws and answers one action of the union, with its reason a Reason and a finite, non-negative requeue delay", () => {
    const seen = new Set<string>();
    fc.assert(fc.property(observed, options, (o, opts) => {
      const d = decide(o, opts);
      seen.add(d.action);
      expect(ACTIONS).toContain(d.action);
      if (d.action === "fail" || d.action === "rerequest") expect(REASONS).toContain(d.reason);
      if (d.action === "begin") {
        expect(REASONS).toContain(d.trigger.reason);
        expect(Number.isSafeInteger(d.revision) && d.revision >= 1).toBe(true);
      }
      if ("requeueAfterMs" in d && d.requeueAfterMs !== undefined) {
        expect(Number.isFinite(d.requeueAfterMs)).toBe(true);
        expect(d.requeueAfterMs).toBeGreaterThanOrEqual(0);
      }
    }), propertyRuns(20_000));
    // The generators reach every action (else some branches were never tried).
    expect([...seen].sort()).toEqual([...ACTIONS].sort());
  });
});
