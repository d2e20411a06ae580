// The re-issue policy chain, each policy on its own (table-driven), then the chain's order: what makes
// a FINISHED IssuedCertificate issue again, and the exact reason and message it gives.
import { issuedCertificate, ISTIOD_SPIFFE_ID } from "../shared/api/builders";
import { KeySpec } from "../shared/pki";
import { Reason } from "./constants";
import { Observed, TargetSummary } from "./observe";
import { keyTypeDiffers, Policy, PolicyContext, REISSUE_POLICIES, reissueTrigger, renewalDue, sansDiffer, targetForeign, targetIncomplete, targetInvalid, targetMissing, Trigger } from "./policies";
import { DEFAULT_RENEW_BEFORE, renewalTime } from "./renewal";
import { CertificateIntent, InvalidSpecError } from "./spec";

const ISTIOD_DNS = "istiod.istio-system.svc";
const RSA4096: KeySpec = { algorithm: "RSA", bits: 4096 };
const intentOf = (o: Partial<CertificateIntent> = {}): CertificateIntent =>
  ({ hosts: [ISTIOD_SPIFFE_ID], org: "cluster.local", keySpec: RSA4096, target: { name: "cacerts", namespace: "istio-system" }, ...o });

const stamp = { owner: "mesh/ic", revision: 1, fingerprint: "fp" };
const valid = (o: Partial<Extract<TargetSummary, { state: "valid" }>> = {}): TargetSummary => ({
  state: "valid",
  stamp,
  caCertPem: "CERT",
  rootCertPem: "ROOT",
  rootShas: [],
  keyDescription: "RSA-4096",
  sanKeys: [`uri:${ISTIOD_SPIFFE_ID}`],
  notBefore: new Date("2026-01-01T00:00:00Z"),
  notAfter: new Date("2027-01-01T00:00:00Z"),
  ...o,
});
const missing: TargetSummary = { state: "missing" };
const foreign: TargetSummary = { state: "foreign", message: "target secret istio-system/cacerts exists and is not managed by cert-agent" };
const incomplete: TargetSummary = { state: "incomplete", stamp, message: "target secret istio-system/cacerts lacks ca-key.pem" };
const invalid: TargetSummary = { state: "invalid", stamp, message: "target secret istio-system/cacerts: cert-chain.pem is not ca-cert.pem followed by root-cert.pem" };

function observed(target: TargetSummary, intent: CertificateIntent | InvalidSpecError = intentOf()): Observed {
  return { ic: issuedCertificate({ name: "ic", namespace: "mesh" }), raw: {}, book: { revision: 1, failures: 0, failureReason: "" }, intent, target };
}

// The valid() certificate lives 2026-01-01 .. 2027-01-01; it renews at 2/3 of that, minus its jitter.
const DUE = renewalTime({ notBefore: new Date("2026-01-01T00:00:00Z"), notAfter: new Date("2027-01-01T00:00:00Z"), pem: "CERT" }, DEFAULT_RENEW_BEFORE);
const at = (date: Date | string, o: Partial<PolicyContext> = {}): PolicyContext =>
  ({ now: new Date(date), renewBefore: DEFAULT_RENEW_BEFORE, lateAfterMs: 300_000, ...o });
const CTX = at("2026-03-01T00:00:00Z");
const later = (ms: number) => new Date(DUE.getTime() + ms);

type Row = [string, Policy, TargetSummary, CertificateIntent, Trigger | undefined, PolicyContext?];

const rows: Row[] = [
  // targetForeign: someone else's Secret, named with the message observe wrote.
  ["targetForeign fires on a foreign target, with observe's message", targetForeign, foreign, intentOf(),
    { reason: Reason.TargetSecretConflict, message: "target secret istio-system/cacerts exists and is not managed by cert-agent" }],
  ["targetForeign is quiet on a missing target", targetForeign, missing, intentOf(), undefined],
  ["targetForeign is quiet on a valid target", targetForeign, valid(), intentOf(), undefined],

  // targetMissing: the message names the target of the spec.
  ["targetMissing fires on a missing target, naming it", targetMissing, missing, intentOf(),
    { reason: Reason.TargetSecretMissing, message: "target secret istio-system/cacerts is gone; issuing again" }],
  ["targetMissing names the spec's target", targetMissing, missing, intentOf({ target: { name: "cacerts-v2", namespace: "mesh-ca" } }),
    { reason: Reason.TargetSecretMissing, message: "target secret mesh-ca/cacerts-v2 is gone; issuing again" }],
  ["targetMissing is quiet on an incomplete target", targetMissing, incomplete, intentOf(), undefined],
  ["targetMissing is quiet on a foreign target", targetMissing, foreign, intentOf(), undefined],

  // targetIncomplete: observe's message says what is wrong.
  ["targetIncomplete fires on an incomplete target, with observe's message", targetIncomplete, incomplete, intentOf(),
    { reason: Reason.TargetSecretIncomplete, message: "target secret istio-system/cacerts lacks ca-key.pem; issuing again" }],
  ["targetIncomplete is quiet on a missing target", targetIncomplete, missing, intentOf(), undefined],
  ["targetIncomplete is quiet on a valid target", targetIncomplete, valid(), intentOf(), undefined],

  // targetInvalid (hostile review defect 6): observe's message names the check istiod would fail.
  ["targetInvalid fires on an invalid target, with observe's message", targetInvalid, invalid, intentOf(),
    { reason: Reason.TargetSecretInvalid, message: "target secret istio-system/cacerts: cert-chain.pem is not ca-cert.pem followed by root-cert.pem; issuing again" }],
  ["targetInvalid is quiet on an incomplete target", targetInvalid, incomplete, intentOf(), undefined],
  ["targetInvalid is quiet on a valid target", targetInvalid, valid(), intentOf(), undefined],

  // keyTypeDiffers: algorithm and size both count.
  ["keyTypeDiffers is quiet when the target holds the asked-for key type", keyTypeDiffers, valid(), intentOf(), undefined],
  ["keyTypeDiffers fires on another algorithm, naming both", keyTypeDiffers, valid(), intentOf({ keySpec: { algorithm: "ECDSA", curve: "P-256" } }),
    { reason: Reason.KeyAlgorithmChanged, message: "target secret istio-system/cacerts holds a RSA-4096 key, ECDSA-P256 is asked for; issuing with a new key" }],
  ["keyTypeDiffers fires on another RSA size", keyTypeDiffers, valid({ keyDescription: "RSA-2048" }), intentOf(),
    { reason: Reason.KeyAlgorithmChanged, message: "target secret istio-system/cacerts holds a RSA-2048 key, RSA-4096 is asked for; issuing with a new key" }],
  ["keyTypeDiffers fires on another curve", keyTypeDiffers, valid({ keyDescription: "ECDSA-P384" }), intentOf({ keySpec: { algorithm: "ECDSA", curve: "P-256" } }),
    { reason: Reason.KeyAlgorithmChanged, message: "target secret istio-system/cacerts holds a ECDSA-P384 key, ECDSA-P256 is asked for; issuing with a new key" }],
  ["keyTypeDiffers is quiet on a target that is not valid (nothing to compare)", keyTypeDiffers, incomplete, intentOf({ keySpec: { algorithm: "ECDSA", curve: "P-256" } }), undefined],

  // sansDiffer: compared as sets of comparison keys, whatever the order, case of DNS names or duplicates.
  ["sansDiffer is quiet when the SANs are the hosts", sansDiffer, valid(), intentOf(), undefined],
  ["sansDiffer is quiet when the hosts are listed in another order than the SANs", sansDiffer,
    valid({ sanKeys: [`dns:${ISTIOD_DNS}`, `uri:${ISTIOD_SPIFFE_ID}`] }), intentOf({ hosts: [ISTIOD_SPIFFE_ID, ISTIOD_DNS] }), undefined],
  ["sansDiffer is quiet when the SANs are in another order than the hosts", sansDiffer,
    valid({ sanKeys: [`uri:${ISTIOD_SPIFFE_ID}`, `dns:${ISTIOD_DNS}`] }), intentOf({ hosts: [ISTIOD_DNS, ISTIOD_SPIFFE_ID] }), undefined],
  ["sansDiffer is quiet on a host listed twice", sansDiffer, valid(), intentOf({ hosts: [ISTIOD_SPIFFE_ID, ISTIOD_SPIFFE_ID] }), undefined],
  ["sansDiffer is quiet on a SAN present twice", sansDiffer, valid({ sanKeys: [`uri:${ISTIOD_SPIFFE_ID}`, `uri:${ISTIOD_SPIFFE_ID}`] }), intentOf(), undefined],
  ["sansDiffer compares DNS names case-insensitively", sansDiffer, valid({ sanKeys: [`dns:${ISTIOD_DNS}`] }), intentOf({ hosts: ["IstioD.Istio-System.SVC"] }), undefined],
  ["sansDiffer compares IPs by address", sansDiffer, valid({ sanKeys: ["ip:0a000001"] }), intentOf({ hosts: ["::ffff:10.0.0.1"] }), undefined],
  ["sansDiffer fires on a host the target lacks", sansDiffer, valid(), intentOf({ hosts: [ISTIOD_SPIFFE_ID, ISTIOD_DNS] }),
    { reason: Reason.HostsChanged, message: "target secret istio-system/cacerts certifies other names than spec.hosts; issuing again" }],
  ["sansDiffer fires on a SAN no host asks for", sansDiffer, valid({ sanKeys: [`dns:${ISTIOD_DNS}`, `uri:${ISTIOD_SPIFFE_ID}`] }), intentOf(),
    { reason: Reason.HostsChanged, message: "target secret istio-system/cacerts certifies other names than spec.hosts; issuing again" }],
  ["sansDiffer fires on a SPIFFE ID of another case (URIs compare exactly)", sansDiffer, valid(), intentOf({ hosts: [ISTIOD_SPIFFE_ID.toUpperCase()] }),
    { reason: Reason.HostsChanged, message: "target secret istio-system/cacerts certifies other names than spec.hosts; issuing again" }],
  ["sansDiffer is quiet on a target that is not valid (nothing to compare)", sansDiffer, missing, intentOf({ hosts: [ISTIOD_DNS] }), undefined],

  // renewalDue: at the renewal time from renewal.ts; late (the agent was down) and expired are Warnings.
  ["renewalDue is quiet 1 ms before the renewal time", renewalDue, valid(), intentOf(), undefined, at(later(-1))],
  ["renewalDue fires at the renewal time", renewalDue, valid(), intentOf(),
    { reason: Reason.Renewing, message: `the certificate in target secret istio-system/cacerts (valid until 2027-01-01T00:00:00.000Z) reached its renewal time ${DUE.toISOString()}; renewing with a new key` }, at(DUE)],
  ["renewalDue within lateAfterMs of the renewal time is on time", renewalDue, valid(), intentOf(),
    { reason: Reason.Renewing, message: `the certificate in target secret istio-system/cacerts (valid until 2027-01-01T00:00:00.000Z) reached its renewal time ${DUE.toISOString()}; renewing with a new key` }, at(later(300_000))],
  ["renewalDue past lateAfterMs is overdue, saying by how much", renewalDue, valid(), intentOf(),
    { reason: Reason.RenewalOverdue, message: `the certificate in target secret istio-system/cacerts (valid until 2027-01-01T00:00:00.000Z) was due for renewal at ${DUE.toISOString()}, 120 min ago; renewing now` }, at(later(7_200_000))],
  ["renewalDue at notAfter: expired", renewalDue, valid(), intentOf(),
    { reason: Reason.CertificateExpired, message: "the certificate in target secret istio-system/cacerts expired at 2027-01-01T00:00:00.000Z; renewing at once" }, at("2027-01-01T00:00:00Z")],
  ["renewalDue honours --renew-before (a duration)", renewalDue, valid(), intentOf(), undefined, at("2026-12-01T00:00:00Z", { renewBefore: { durationMs: 10 * 86_400_000 } })],
  ["renewalDue is quiet on a target that is not valid", renewalDue, missing, intentOf(), undefined, at("2028-01-01T00:00:00Z")],
];

describe("re-issue policies, each on its own", () => {
  it.each(rows)("%s", (_name, policy, target, intent, expected, ctx = CTX) => {
    expect(policy(observed(target, intent), intent, ctx)).toEqual(expected);
  });
});

describe("reissueTrigger", () => {
  it("runs the policies in this order: foreign, missing, incomplete, invalid, key type, SANs, renewal", () => {
    expect(REISSUE_POLICIES).toEqual([targetForeign, targetMissing, targetIncomplete, targetInvalid, keyTypeDiffers, sansDiffer, renewalDue]);
  });

  it.each<[string, TargetSummary, CertificateIntent, Reason | undefined]>([
    ["a valid target as the spec asks: no new issuance", valid(), intentOf(), undefined],
    ["a foreign target: refused", foreign, intentOf(), Reason.TargetSecretConflict],
    ["a missing target", missing, intentOf(), Reason.TargetSecretMissing],
    ["an incomplete target", incomplete, intentOf(), Reason.TargetSecretIncomplete],
    ["an invalid target", invalid, intentOf(), Reason.TargetSecretInvalid],
    ["another key type and other SANs: the key type is named (it comes first)", valid({ sanKeys: [`dns:${ISTIOD_DNS}`] }),
      intentOf({ keySpec: { algorithm: "ECDSA", curve: "P-384" } }), Reason.KeyAlgorithmChanged],
    ["other SANs only", valid({ sanKeys: [`dns:${ISTIOD_DNS}`] }), intentOf(), Reason.HostsChanged],
  ])("%s", (_name, target, intent, reason) => {
    expect(reissueTrigger(observed(target, intent), CTX)?.reason).toBe(reason);
  });

  it("gives the first policy's whole trigger", () => {
    expect(reissueTrigger(observed(missing), CTX)).toEqual({ reason: Reason.TargetSecretMissing, message: "target secret istio-system/cacerts is gone; issuing again" });
  });

  it("asks for nothing on an invalid spec (decide reports it instead), even with the target gone", () => {
    expect(reissueTrigger(observed(missing, new InvalidSpecError("spec.hosts is empty: at least one SAN is required")), CTX)).toBeUndefined();
  });
});
