// What Gloo Mesh's own certificate agent leaves behind on a cluster that migrates to cert-agent, for
// tests: the target secret exactly as it writes it (docs: /work/shared/REFERENCE.md, "The original
// agent, observed") and the IssuedCertificate status it leaves. The key is a real RSA key exported
// as PKCS#1 by node:crypto (Go's x509.MarshalPKCS1PrivateKey, as the original writes it), the
// certificate a real one from the reference issuer's signing code.
import { generateKeyPairSync } from "node:crypto";
import { RootCa, signIntermediate } from "../../e2e/issuer/sign";
import type { IssuedCertificate, IssuedCertificateStatus, ObjectRef } from "../../shared/api/types";
import type { Secret } from "../../shared/kube/secrets";
import { buildCertChain, buildCsr, importPrivateKeyPem } from "../../shared/pki";
import { CA_CERT, CA_KEY, CERT_CHAIN, ISSUED_SECRET_TYPE, ORIGINAL_AGENT_LABEL, ROOT_CERT } from "../constants";

/** The empty cluster label skv2 puts on the original's outputs on a cluster without AGENT_CLUSTER. */
export const ORIGINAL_CLUSTER_LABEL = "cluster.multicluster.solo.io";
/** The extra, always empty, data key the original writes next to the four PEMs. */
export const ORIGINAL_EMPTY_KEY = "key.pem";

export interface OriginalTargetOptions {
  target: ObjectRef;
  /** The value of agent.certificates.mesh.gloo.solo.io: the namespace the original ran in. */
  agentNamespace: string;
  /** Signs the intermediate (root-cert.pem is its certificate, byte for byte). */
  root: RootCa;
  hosts: string[];
  /** RSA modulus length (the IssuedCertificate's certOptions.rsaKeySizeBytes, read as bits). */
  bits?: number;
  org?: string;
  ttlDays?: number;
  /** The signing time (default now). */
  now?: Date;
}

export interface OriginalTarget {
  secret: Secret;
  /** The PEMs as written (ca-key.pem is PKCS#1: "-----BEGIN RSA PRIVATE KEY-----"). */
  caCertPem: string;
  caKeyPem: string;
}

const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");

/** The target secret as the original agent writes it: its type, its two labels, the four PEMs and an empty key.pem. */
export async function originalAgentTarget(o: OriginalTargetOptions): Promise<OriginalTarget> {
  const { privateKey: caKeyPem } = generateKeyPairSync("rsa", {
    modulusLength: o.bits ?? 2048,
    publicKeyEncoding: { type: "spki", format: "pem" },
    privateKeyEncoding: { type: "pkcs1", format: "pem" },
  });
  const key = await importPrivateKeyPem(caKeyPem);
  const csrPem = await buildCsr({ keys: { privateKey: key.privateKey, publicKey: key.publicKey }, org: o.org ?? "istio", hosts: o.hosts });
  const caCertPem = await signIntermediate({ csrPem, hosts: o.hosts, ttlDays: o.ttlDays ?? 365, root: o.root, now: o.now });
  const secret: Secret = {
    apiVersion: "v1",
    kind: "Secret",
    type: ISSUED_SECRET_TYPE,
    metadata: {
      name: o.target.name,
      namespace: o.target.namespace,
      labels: { [ORIGINAL_AGENT_LABEL]: o.agentNamespace, [ORIGINAL_CLUSTER_LABEL]: "" },
    },
    data: {
      [CA_CERT]: b64(caCertPem),
      [CA_KEY]: b64(caKeyPem),
      [CERT_CHAIN]: b64(buildCertChain(caCertPem, o.root.certPem)),
      [ROOT_CERT]: b64(o.root.certPem),
      [ORIGINAL_EMPTY_KEY]: "",
    },
  };
  return { secret, caCertPem, caKeyPem };
}

/** The status the original leaves on an IssuedCertificate it finished: no error field (proto3 omits an empty one). */
export const originalFinishedStatus = (ic: IssuedCertificate): IssuedCertificateStatus =>
  ({ observedGeneration: ic.metadata.generation ?? 1, state: "FINISHED" });
