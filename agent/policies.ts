// The re-issue policy chain (cert-manager's "trigger policies"): ordered pure checks on what was
// observed of a FINISHED IssuedCertificate; the first that fires says why a new issuance is needed.
// Renewal before expiry will be one more check here.
import { describeKeySpec } from "../shared/pki";
import { hostComparisonKey } from "../shared/pki/hosts";
import { Reason } from "./constants";
import { Observed } from "./observe";
import { CertificateIntent } from "./spec";

export interface Trigger {
  reason: Reason;
  message: string;
}

export type Policy = (o: Observed, intent: CertificateIntent) => Trigger | undefined;

const targetName = (intent: CertificateIntent) => `target secret ${intent.target.namespace}/${intent.target.name}`;

/** Someone else's Secret is at the target: never overwrite it, and make no key (see decide.ts). */
export const targetForeign: Policy = (o) =>
  o.target.state === "foreign" ? { reason: Reason.TargetSecretConflict, message: o.target.message } : undefined;

export const targetMissing: Policy = (o, intent) =>
  o.target.state === "missing" ? { reason: Reason.TargetSecretMissing, message: `${targetName(intent)} is gone; issuing again` } : undefined;

export const targetIncomplete: Policy = (o) =>
  o.target.state === "incomplete" ? { reason: Reason.TargetSecretIncomplete, message: `${o.target.message}; issuing again` } : undefined;

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

export const REISSUE_POLICIES: readonly Policy[] = [targetForeign, targetMissing, targetIncomplete, keyTypeDiffers, sansDiffer];

/** The first policy that fires, or undefined when the target is what the spec asks for. */
export function reissueTrigger(o: Observed): Trigger | undefined {
  if (!("keySpec" in o.intent)) return undefined;
  for (const policy of REISSUE_POLICIES) {
    const trigger = policy(o, o.intent);
    if (trigger) return trigger;
  }
  return undefined;
}
