// The two Secrets the agent writes: the staged private key (owned by the IssuedCertificate, deleted
// once the key is in the target) and the target secret Istio reads (never owned: it must outlive a
// re-issue and the IssuedCertificate itself). Pure builders and checks; the reconciler does the I/O.
import { API_VERSION, ISSUED_CERTIFICATE, IssuedCertificate, ObjectRef } from "../shared/api/types";
import type { Secret } from "../shared/kube/secrets";
import {
  CA_CERT,
  CA_KEY,
  CERT_CHAIN,
  ISSUED_SECRET_TYPE,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  ORIGINAL_AGENT_LABEL,
  OWNER_ANNOTATION,
  PRIVATE_KEY_SECRET_KEY,
  PRIVATE_KEY_SECRET_TYPE,
  ROOT_CERT,
} from "./constants";
import { IssuanceStamp, ownerKey, stampAnnotations } from "./issuance";

export function isManaged(obj: { metadata?: { labels?: Record<string, string> } } | undefined): boolean {
  return obj?.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
}

export function ownerReference(ic: IssuedCertificate) {
  return {
    apiVersion: API_VERSION,
    kind: ISSUED_CERTIFICATE.kind,
    name: ic.metadata.name!,
    uid: ic.metadata.uid!,
    controller: true,
    blockOwnerDeletion: true,
  };
}

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

export function secretData(secret: Secret | undefined, key: string): string | undefined {
  const value = secret?.data?.[key];
  return value === undefined ? undefined : Buffer.from(value, "base64").toString("utf8");
}

const where = (secret: Secret) => `${secret.metadata.namespace}/${secret.metadata.name}`;

// ---- the staged private key -------------------------------------------------------------------

export const privateKeyRef = (ic: IssuedCertificate): ObjectRef => ({ name: ic.metadata.name!, namespace: ic.metadata.namespace! });

/** Why the Secret at the staged-key name is not ours to use or overwrite; undefined when it is. */
export function stagedKeyConflict(secret: Secret | undefined): string | undefined {
  if (!secret || (isManaged(secret) && secret.type === PRIVATE_KEY_SECRET_TYPE)) return undefined;
  // Another IssuedCertificate's target, written before this IssuedCertificate existed: that one now
  // fails with TargetSecretCollision (decide.ts); renaming this one would not be the right fix.
  const owner = secret.metadata.annotations?.[OWNER_ANNOTATION];
  if (isManaged(secret) && secret.type === ISSUED_SECRET_TYPE && owner) {
    return `secret ${where(secret)} is the target secret of IssuedCertificate ${owner}, which collides with this IssuedCertificate's staged key; ` +
      `it was left untouched. ${owner} now fails with TargetSecretCollision: change its spec.issuedCertificateSecret, then delete this secret`;
  }
  return `secret ${where(secret)} exists and is not a private key staged by cert-agent; it was left untouched. ` +
    `Delete it or rename the IssuedCertificate`;
}

/** The staged key Secret; `existing` carries the resourceVersion that guards an overwrite. */
export function stagedKeySecret(ic: IssuedCertificate, pem: string, stamp: IssuanceStamp, existing: Secret | undefined): Secret {
  const ref = privateKeyRef(ic);
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: PRIVATE_KEY_SECRET_TYPE,
    metadata: {
      name: ref.name,
      namespace: ref.namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
      annotations: stampAnnotations(stamp),
      ownerReferences: [ownerReference(ic)],
      ...(existing ? { resourceVersion: existing.metadata.resourceVersion } : {}),
    },
    data: { [PRIVATE_KEY_SECRET_KEY]: b64(pem) },
  };
}

// ---- the target secret (Istio's plugged-in CA) ------------------------------------------------

export interface CaBundle {
  caCert: string;
  caKey: string;
  certChain: string;
  rootCert: string;
}

export const BUNDLE_KEYS = [CA_CERT, CA_KEY, CERT_CHAIN, ROOT_CERT] as const;

export function bundleData(bundle: CaBundle): Record<string, string> {
  return {
    [CA_CERT]: b64(bundle.caCert),
    [CA_KEY]: b64(bundle.caKey),
    [CERT_CHAIN]: b64(bundle.certChain),
    [ROOT_CERT]: b64(bundle.rootCert),
  };
}

/**
 * Why the existing target is not ours to overwrite (a hand-plugged CA, or one written for another
 * IssuedCertificate): overwriting it would lose data we cannot restore. Undefined when it is ours.
 */
export function targetConflict(existing: Secret | undefined, ic: IssuedCertificate): string | undefined {
  if (!existing) return undefined;
  if (!isManaged(existing) || existing.type !== ISSUED_SECRET_TYPE) {
    return `target secret ${where(existing)} exists and is not managed by cert-agent; it was left untouched. ` +
      `Delete it, or label it ${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE} and give it type ${ISSUED_SECRET_TYPE} to hand it over`;
  }
  const owner = existing.metadata.annotations?.[OWNER_ANNOTATION];
  if (owner && owner !== ownerKey(ic)) return `target secret ${where(existing)} belongs to IssuedCertificate ${owner}; it was left untouched`;
  return undefined;
}

/**
 * Is `existing` the target secret Gloo Mesh's own agent wrote for this IssuedCertificate (a cluster
 * migrating to cert-agent)? All of: not ours yet, type ISSUED_SECRET_TYPE, at the IssuedCertificate's
 * spec.issuedCertificateSecret, labelled `agent.certificates.mesh.gloo.solo.io=<the IssuedCertificate's
 * namespace>` (the original labels with its own namespace, where Gloo Mesh puts its IssuedCertificates),
 * and no owner annotation naming another IssuedCertificate. Such a secret is adopted; anything else
 * that is not ours stays refused by targetConflict.
 */
export function writtenByOriginalAgent(existing: Secret | undefined, ic: IssuedCertificate, target: ObjectRef): boolean {
  if (!existing || isManaged(existing) || existing.type !== ISSUED_SECRET_TYPE) return false;
  const { name, namespace, labels, annotations } = existing.metadata;
  if (namespace !== target.namespace || name !== target.name) return false;
  if (!ic.metadata.namespace || labels?.[ORIGINAL_AGENT_LABEL] !== ic.metadata.namespace) return false;
  const owner = annotations?.[OWNER_ANNOTATION];
  return owner === undefined || owner === ownerKey(ic);
}

/**
 * The original agent's target secret, taken over: our label and stamp added to what it has, its type,
 * data (the extra empty key.pem too) and other labels and annotations kept, and its resourceVersion,
 * which guards the write. Our next full write (a re-issue) replaces the data with the four keys.
 */
export function adoptedTargetSecret(existing: Secret, stamp: IssuanceStamp): Secret {
  return {
    ...existing,
    metadata: {
      ...existing.metadata,
      labels: { ...(existing.metadata.labels ?? {}), [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
      annotations: { ...(existing.metadata.annotations ?? {}), ...stampAnnotations(stamp) },
    },
  };
}

/**
 * The whole target secret in one object (never a partial bundle); keeps labels and annotations others set.
 * `annotations` are merged in last; a null value removes one (the root rotation's phase).
 */
export function targetSecret(target: ObjectRef, bundle: CaBundle, stamp: IssuanceStamp, existing: Secret | undefined,
  annotations: Record<string, string | null> = {}): Secret {
  const merged: Record<string, string | null> = { ...(existing?.metadata.annotations ?? {}), ...stampAnnotations(stamp), ...annotations };
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: ISSUED_SECRET_TYPE,
    metadata: {
      name: target.name,
      namespace: target.namespace,
      labels: { ...(existing?.metadata.labels ?? {}), [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
      annotations: Object.fromEntries(Object.entries(merged).filter((e): e is [string, string] => e[1] !== null)),
      ...(existing ? { resourceVersion: existing.metadata.resourceVersion } : {}),
    },
    data: bundleData(bundle),
  };
}
