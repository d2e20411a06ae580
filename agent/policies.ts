// The re-issue policy chain (cert-manager's "trigger policies"): ordered pure checks on what was
// observed of a FINISHED IssuedCertificate; the first that fires says why a new issuance is needed.
// Renewal before expiry is the last: any other reason re-issues first (and renews with it).
import { describeKeySpec } from "../shared/pki";
import { hostComparisonKey } from "../shared/pki/hosts";
import { Reason } from "./constants";
import { Observed } from "./observe";
import { RenewBefore, renewalTime } from "./renewal";
import { CertificateIntent } from "./spec";

export interface Trigger {
  reason: Reason;
  message: string;
}

/** What the time-dependent checks need besides the observation. */
export interface PolicyContext {
  now: Date;
  renewBefore: RenewBefore;
  /** Past its renewal time by more than this, a renewal is late (the agent was not running): a Warning. */
  lateAfterMs: number;
}

export type Policy = (o: Observed, intent: CertificateIntent, ctx: PolicyContext) => Trigger | undefined;

const targetName = (intent: CertificateIntent) => `target secret ${intent.target.namespace}/${intent.target.name}`;

/** Someone else's Secret is at the target: never overwrite it, and make no key (see decide.ts). */
export const targetForeign: Policy = (o) =>
  o.target.state === "foreign" ? { reason: Reason.TargetSecretConflict, message: o.target.message } : undefined;

export const targetMissing: Policy = (o, intent) =>
  o.target.state === "missing" ? { reason: Reason.TargetSecretMissing, message: `${targetName(intent)} is gone; issuing again` } : undefined;

export const targetIncomplete: Policy = (o) =>
  o.target.state === "incomplete" ? { reason: Reason.TargetSecretIncomplete, message: `${o.target.message}; issuing again` } : undefined;

/** Ours and whole, but not a CA istiod can use (observe's message names the check it fails). */
export const targetInvalid: Policy = (o) =>
  o.target.state === "invalid" ? { reason: Reason.TargetSecretInvalid, message: `${o.target.message}; issuing again` } : undefined;

/** The key-algorithm annotation (or rsaKeySizeBytes) asks for another key type than the target holds. */
export const keyTypeDiffers: Policy = (o, intent) => {
  if (o.target.state !== "valid") return undefined;
  const wanted = describeKeySpec(intent.keySpec);
  return o.target.keyDescription === wanted ? undefined : {
    reason: Reason.KeyAlgorithmChanged,
    message: `${targetName(intent)} holds a ${o.target.keyDescription} key, ${wanted} is asked for; issuing with a new key`,
  };
};

export const sansDiffer: Policy = (o, intent) => {
  if (o.target.state !== "valid") return undefined;
  const wanted = [...new Set(intent.hosts.map(hostComparisonKey))].sort();
  const present = [...new Set(o.target.sanKeys)].sort();
  return JSON.stringify(wanted) === JSON.stringify(present) ? undefined : {
    reason: Reason.HostsChanged,
    message: `${targetName(intent)} certifies other names than spec.hosts; issuing again`,
  };
};

/** Renewal before expiry, at the time renewal.ts derives from the certificate itself. */
export const renewalDue: Policy = (o, intent, ctx) => {
  if (o.target.state !== "valid") return undefined;
  const now = ctx.now.getTime();
  const notAfter = o.target.notAfter;
  if (now >= notAfter.getTime()) {
    return { reason: Reason.CertificateExpired, message: `the certificate in ${targetName(intent)} expired at ${notAfter.toISOString()}; renewing at once` };
  }
  const due = renewalTime({ notBefore: o.target.notBefore, notAfter, pem: o.target.caCertPem }, ctx.renewBefore);
  const lateMs = now - due.getTime();
  if (lateMs < 0) return undefined;
  if (lateMs > ctx.lateAfterMs) {
    return { reason: Reason.RenewalOverdue,
      message: `the certificate in ${targetName(intent)} (valid until ${notAfter.toISOString()}) was due for renewal at ${due.toISOString()}, ${Math.round(lateMs / 60_000)} min ago; renewing now` };
  }
  return { reason: Reason.Renewing, message: `the certificate in ${targetName(intent)} (valid until ${notAfter.toISOString()}) reached its renewal time ${due.toISOString()}; renewing with a new key` };
};

export const REISSUE_POLICIES: readonly Policy[] = [targetForeign, targetMissing, targetIncomplete, targetInvalid, keyTypeDiffers, sansDiffer, renewalDue];

/** The first policy that fires, or undefined when the target is what the spec asks for. */
export function reissueTrigger(o: Observed, ctx: PolicyContext): Trigger | undefined {
  if (!("keySpec" in o.intent)) return undefined;
  for (const policy of REISSUE_POLICIES) {
    const trigger = policy(o, o.intent, ctx);
    if (trigger) return trigger;
  }
  return undefined;
}
