// Reads what an IssuedCertificate asks for and refuses what cannot work, before any key is made.
import { IssuedCertificate, ObjectRef } from "../shared/api/types";
import { KeySpec, parseKeyAlgorithm, validateHost } from "../shared/pki";
import { boundedText, hasControlCharacters } from "../shared/text/bounded";
import { KEY_ALGORITHM_ANNOTATION } from "./constants";

export interface CertificateIntent {
  hosts: string[];
  org: string;
  keySpec: KeySpec;
  target: ObjectRef;
}

/** certOptions.ttlDays above this is a typo (the CRD allows up to 2^32-1: an overflow, not a lifetime). */
export const MAX_TTL_DAYS = 36_500;
/** X.520 ub-organization-name. */
const MAX_ORG_LENGTH = 64;

/** A value in a message: JSON-quoted and cut to 100 characters (InvalidSpecError escapes what JSON leaves). */
const quote = (s: string) => JSON.stringify(s.length > 100 ? `${s.slice(0, 100)}...` : s);

/** Why a spec cannot work. Its message goes to status, an Event and the log: one printable line of at most 1 KB. */
export class InvalidSpecError extends Error {
  override readonly name = "InvalidSpecError";

  constructor(message: string) {
    // JSON quoting leaves C1 controls and U+2028/2029 as they are, and a value may be long.
    super(boundedText(message));
  }
}

/** A DNS-1123 label: a namespace is one, a Secret name is several joined by dots (a subdomain). */
const LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
const SUBDOMAIN = new RegExp(`^${LABEL}(\\.${LABEL})*$`);
const DNS_LABEL = new RegExp(`^${LABEL}$`);
/** What the API server accepts (validation.IsDNS1123Subdomain / IsDNS1123Label); lengths first. */
const isSecretName = (s: string | undefined): boolean => s !== undefined && s.length <= 253 && SUBDOMAIN.test(s);
export const isNamespace = (s: string | undefined): boolean => s !== undefined && s.length <= 63 && DNS_LABEL.test(s);

export function readIntent(ic: IssuedCertificate): CertificateIntent {
  const spec = ic.spec ?? {};
  const hosts = spec.hosts ?? [];
  if (hosts.length === 0) throw new InvalidSpecError("spec.hosts is empty: at least one SAN is required");
  const bad = hosts.find((h) => h.trim() === "" || h !== h.trim());
  if (bad !== undefined) throw new InvalidSpecError(`spec.hosts contains an empty or space-padded entry ${quote(bad)}`);
  for (const [i, host] of hosts.entries()) {
    const why = validateHost(host);
    if (why) throw new InvalidSpecError(`spec.hosts[${i}] ${quote(host)} ${why}`);
  }
  const ttlDays = spec.certOptions?.ttlDays ?? 0;
  if (ttlDays > MAX_TTL_DAYS) throw new InvalidSpecError(`spec.certOptions.ttlDays ${ttlDays} is above ${MAX_TTL_DAYS} (100 years)`);

  const target = spec.issuedCertificateSecret;
  // The reconciler skips objects without one (hasTarget), as Gloo Mesh does; other callers get a reason.
  if (!target) throw new InvalidSpecError("spec.issuedCertificateSecret is missing: nothing says where to write the certificate");
  if (!isSecretName(target.name) || !isNamespace(target.namespace)) {
    throw new InvalidSpecError(
      `spec.issuedCertificateSecret (name ${quote(String(target.name))}, namespace ${quote(String(target.namespace))}) needs a valid name and namespace`,
    );
  }
  if (target.namespace === ic.metadata.namespace && target.name === ic.metadata.name) {
    throw new InvalidSpecError(
      `spec.issuedCertificateSecret ${target.namespace}/${target.name} is where the private key is staged: ` +
        `name the IssuedCertificate or the target secret differently`,
    );
  }

  let keySpec: KeySpec;
  try {
    keySpec = parseKeyAlgorithm(ic.metadata.annotations?.[KEY_ALGORITHM_ANNOTATION], spec.certOptions?.rsaKeySizeBytes);
  } catch (err) {
    throw new InvalidSpecError((err as Error).message);
  }
  // certOptions.orgName wins over the deprecated org, as in Gloo Mesh.
  const org = spec.certOptions?.orgName || spec.org || "";
  const field = spec.certOptions?.orgName ? "spec.certOptions.orgName" : "spec.org";
  if (hasControlCharacters(org)) throw new InvalidSpecError(`${field} ${quote(org)} contains control characters`);
  if (org.length > MAX_ORG_LENGTH) throw new InvalidSpecError(`${field} is longer than ${MAX_ORG_LENGTH} characters (X.520's bound)`);
  return {
    hosts,
    org,
    keySpec,
    target: { name: target.name, namespace: target.namespace },
  };
}

/**
 * Objects without a target secret reference are not ours to process (Gloo Mesh skips them too). A
 * reference that is there but names nothing (an empty name) is processed, so that readIntent refuses
 * it with a reason in status, an Event and the log instead of ignoring it in silence.
 */
export function hasTarget(ic: IssuedCertificate): boolean {
  const ref = ic.spec?.issuedCertificateSecret;
  return typeof ref === "object" && ref !== null;
}
