// Test helpers for `cert-agent status`: real intermediates signed by the reference issuer's code at any
// point in time (an expired one is signed in the past), and the target secret the agent would write.
import { ISTIOD_SPIFFE_ID } from "../../shared/api/builders";
import type { IssuedCertificate, PodBounceDirective } from "../../shared/api/types";
import type { FakeApi } from "../../shared/kube/fake";
import type { Secret } from "../../shared/kube/secrets";
import { buildCertChain, buildCsr, exportPrivateKeyPem, generateKeyPair, type KeySpec, publicKeyFingerprint } from "../../shared/pki";
import { type RootCa, signIntermediate } from "../../e2e/issuer/sign";
import { ISSUED_SECRET_TYPE, MANAGED_SELECTOR } from "../constants";
import { ownerKey } from "../issuance";
import { type CaBundle, targetSecret } from "../secrets";
import type { StatusReaders } from "./gather";

export interface SignedBundle extends CaBundle {
  /** Hex SHA-256 of the public key, for the target's stamp. */
  fingerprint: string;
}

/** A complete bundle whose intermediate was signed at `now` for ttlDays: what the agent would install. */
export async function signedBundle(root: RootCa, o: { spec: KeySpec; now: Date; ttlDays: number; hosts?: string[] }): Promise<SignedBundle> {
  const hosts = o.hosts ?? [ISTIOD_SPIFFE_ID];
  const keys = await generateKeyPair(o.spec);
  const csrPem = await buildCsr({ keys, org: "cluster.local", hosts });
  const caCert = await signIntermediate({ csrPem, hosts, ttlDays: o.ttlDays, root, now: o.now });
  return {
    caCert,
    caKey: await exportPrivateKeyPem(keys.privateKey),
    certChain: buildCertChain(caCert, root.certPem),
    rootCert: root.certPem,
    fingerprint: await publicKeyFingerprint(keys.publicKey),
  };
}

/** The target secret the agent writes for ic (its spec.issuedCertificateSecret), holding bundle. */
export function ourTargetSecret(ic: IssuedCertificate, bundle: SignedBundle, revision = 1): Secret {
  const ref = ic.spec!.issuedCertificateSecret!;
  return targetSecret({ name: ref.name, namespace: ref.namespace }, bundle, { owner: ownerKey(ic), revision, fingerprint: bundle.fingerprint }, undefined);
}

/** apiReaders' equivalent on the in-memory API (the fake has no field selectors: the type is filtered here). */
export function fakeStatusReaders(api: FakeApi): StatusReaders {
  const secrets = api.client<Secret>("Secret");
  return {
    issued: api.client<IssuedCertificate>("IssuedCertificate"),
    secrets,
    listTargets: async (namespace) => (await secrets.list(namespace, MANAGED_SELECTOR)).items.filter((s) => s.type === ISSUED_SECRET_TYPE),
    directives: api.client<PodBounceDirective>("PodBounceDirective"),
  };
}
