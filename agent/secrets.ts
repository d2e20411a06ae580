// The two Secrets the agent writes: the staged private key (owned by the IssuedCertificate, deleted
// once the key is in the target) and the target secret Istio reads (never owned: it must outlive a
// re-issue and the IssuedCertificate itself).
import { CoreV1Api, V1Secret } from "@kubernetes/client-node";
import { API_VERSION, ISSUED_CERTIFICATE, IssuedCertificate, ObjectRef } from "../shared/api/types";
import { isNotFound } from "../shared/kube/errors";
import {
  CA_CERT,
  CA_KEY,
  CERT_CHAIN,
  GENERATION_ANNOTATION,
  ISSUED_SECRET_TYPE,
  KEY_FINGERPRINT_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  OWNER_ANNOTATION,
  PRIVATE_KEY_SECRET_KEY,
  PRIVATE_KEY_SECRET_TYPE,
  ROOT_CERT,
} from "./constants";

export const ownerKey = (ic: IssuedCertificate) => `${ic.metadata.namespace}/${ic.metadata.name}`;

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
const unb64 = (text: string | undefined) => (text === undefined ? undefined : Buffer.from(text, "base64").toString("utf8"));

export async function getSecret(core: CoreV1Api, ref: ObjectRef): Promise<V1Secret | undefined> {
  try {
    return await core.readNamespacedSecret({ name: ref.name, namespace: ref.namespace });
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

export async function deleteSecret(core: CoreV1Api, ref: ObjectRef): Promise<boolean> {
  try {
    await core.deleteNamespacedSecret({ name: ref.name, namespace: ref.namespace });
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}

export function secretData(secret: V1Secret | undefined, key: string): string | undefined {
  return unb64(secret?.data?.[key]);
}

// ---- the staged private key -------------------------------------------------------------------

export const privateKeyRef = (ic: IssuedCertificate): ObjectRef => ({ name: ic.metadata.name!, namespace: ic.metadata.namespace! });

export interface StagedKey {
  pem: string;
  generation: number;
  fingerprint: string;
}

export class ForeignSecretError extends Error {
  override readonly name = "ForeignSecretError";
}

/** The staged key if the Secret is ours; undefined if absent. */
export function readStagedKey(secret: V1Secret | undefined): StagedKey | undefined {
  if (!secret) return undefined;
  if (!isManaged(secret) || secret.type !== PRIVATE_KEY_SECRET_TYPE) {
    throw new ForeignSecretError(
      `secret ${secret.metadata?.namespace}/${secret.metadata?.name} exists and is not a private key staged by cert-agent`,
    );
  }
  const pem = secretData(secret, PRIVATE_KEY_SECRET_KEY);
  if (!pem) return undefined;
  return {
    pem,
    generation: Number(secret.metadata?.annotations?.[GENERATION_ANNOTATION] ?? NaN),
    fingerprint: secret.metadata?.annotations?.[KEY_FINGERPRINT_ANNOTATION] ?? "",
  };
}

/** Creates or overwrites the staged key Secret; `existing` carries the resourceVersion to guard the write. */
export async function writeStagedKey(core: CoreV1Api, ic: IssuedCertificate, key: StagedKey, existing: V1Secret | undefined): Promise<void> {
  const ref = privateKeyRef(ic);
  const body: V1Secret = {
    apiVersion: "v1",
    kind: "Secret",
    type: PRIVATE_KEY_SECRET_TYPE,
    metadata: {
      name: ref.name,
      namespace: ref.namespace,
      labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
      annotations: {
        [OWNER_ANNOTATION]: ownerKey(ic),
        [GENERATION_ANNOTATION]: String(key.generation),
        [KEY_FINGERPRINT_ANNOTATION]: key.fingerprint,
      },
      ownerReferences: [ownerReference(ic)],
      ...(existing ? { resourceVersion: existing.metadata?.resourceVersion } : {}),
    },
    data: { [PRIVATE_KEY_SECRET_KEY]: b64(key.pem) },
  };
  if (existing) await core.replaceNamespacedSecret({ name: ref.name, namespace: ref.namespace, body });
  else await core.createNamespacedSecret({ namespace: ref.namespace, body });
}

// ---- the target secret (Istio's plugged-in CA) ------------------------------------------------

export interface CaBundle {
  caCert: string;
  caKey: string;
  certChain: string;
  rootCert: string;
}

export function bundleData(bundle: CaBundle): Record<string, string> {
  return {
    [CA_CERT]: b64(bundle.caCert),
    [CA_KEY]: b64(bundle.caKey),
    [CERT_CHAIN]: b64(bundle.certChain),
    [ROOT_CERT]: b64(bundle.rootCert),
  };
}

/**
 * Refuses to take over a Secret someone else made (a hand-plugged CA) or one written for another
 * IssuedCertificate: overwriting it would lose data we cannot restore.
 */
export function checkTargetOwnership(existing: V1Secret | undefined, ic: IssuedCertificate): void {
  if (!existing) return;
  const where = `${existing.metadata?.namespace}/${existing.metadata?.name}`;
  if (!isManaged(existing) || existing.type !== ISSUED_SECRET_TYPE) {
    throw new ForeignSecretError(
      `target secret ${where} exists and is not managed by cert-agent; it was left untouched. ` +
        `Delete it, or label it ${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE} and give it type ${ISSUED_SECRET_TYPE} to hand it over`,
    );
  }
  const owner = existing.metadata?.annotations?.[OWNER_ANNOTATION];
  if (owner && owner !== ownerKey(ic)) {
    throw new ForeignSecretError(`target secret ${where} belongs to IssuedCertificate ${owner}; it was left untouched`);
  }
}

/** Writes the bundle in one request (never a partial secret); returns false when already up to date. */
export async function writeTargetSecret(
  core: CoreV1Api,
  ic: IssuedCertificate,
  target: ObjectRef,
  bundle: CaBundle,
  existing: V1Secret | undefined,
): Promise<boolean> {
  checkTargetOwnership(existing, ic);
  const data = bundleData(bundle);
  if (existing && sameData(existing.data, data)) return false;
  const body: V1Secret = {
    apiVersion: "v1",
    kind: "Secret",
    type: ISSUED_SECRET_TYPE,
    metadata: {
      name: target.name,
      namespace: target.namespace,
      labels: { ...(existing?.metadata?.labels ?? {}), [MANAGED_BY_LABEL]: MANAGED_BY_VALUE },
      annotations: {
        ...(existing?.metadata?.annotations ?? {}),
        [OWNER_ANNOTATION]: ownerKey(ic),
        [GENERATION_ANNOTATION]: String(ic.metadata.generation),
      },
      ...(existing ? { resourceVersion: existing.metadata?.resourceVersion } : {}),
    },
    data,
  };
  if (existing) await core.replaceNamespacedSecret({ name: target.name, namespace: target.namespace, body });
  else await core.createNamespacedSecret({ namespace: target.namespace, body });
  return true;
}

function sameData(a: Record<string, string> | undefined, b: Record<string, string>): boolean {
  const keys = Object.keys(b);
  return !!a && Object.keys(a).length === keys.length && keys.every((k) => a[k] === b[k]);
}
