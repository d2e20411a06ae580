// TypeScript shapes of certificates.mesh.gloo.solo.io/v1, field for field as the Gloo Mesh protos
// (docs/api.md). Proto `bytes` are base64 strings on the wire; enums travel as their names.
// crds.ts holds the OpenAPI schema of the same shapes; types.test.ts proves the two agree.

export const GROUP = "certificates.mesh.gloo.solo.io";
export const VERSION = "v1";
export const API_VERSION = `${GROUP}/${VERSION}`;

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  creationTimestamp?: string | Date;
  deletionTimestamp?: string | Date;
  finalizers?: string[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectRef {
  name: string;
  namespace: string;
}

export interface CommonCertOptions {
  ttlDays?: number;
  /** Despite the name, Gloo Mesh reads this as BITS (2048, 4096); 0 means 4096. */
  rsaKeySizeBytes?: number;
  orgName?: string;
  /** Gloo Mesh never read it; kept for wire compatibility. */
  secretRotationGracePeriodRatio?: number;
}

export interface GlooMeshCa {
  signingCertificateSecret?: ObjectRef;
}

/** Vault-backed agent CA: out of scope for this agent, kept opaque (preserved, not validated). */
export interface AgentCa {
  vault?: Record<string, unknown>;
}

export interface IssuedCertificateSpec {
  hosts?: string[];
  /** Deprecated: certOptions.orgName wins when set. */
  org?: string;
  /** Deprecated: issuer-side secret holding the signing CA. */
  signingCertificateSecret?: ObjectRef;
  issuedCertificateSecret?: ObjectRef;
  podBounceDirective?: ObjectRef;
  certOptions?: CommonCertOptions;
  glooMeshCa?: GlooMeshCa;
  agentCa?: AgentCa;
}

export const ISSUED_CERTIFICATE_STATES = ["PENDING", "REQUESTED", "ISSUED", "FINISHED", "FAILED"] as const;
export type IssuedCertificateState = (typeof ISSUED_CERTIFICATE_STATES)[number];

export interface IssuedCertificateStatus {
  observedGeneration?: number;
  error?: string;
  state?: IssuedCertificateState;
}

export interface IssuedCertificate {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: IssuedCertificateSpec;
  status?: IssuedCertificateStatus;
}

export interface CertificateRequestSpec {
  /** PEM PKCS#10 CSR, base64 on the wire. */
  certificateSigningRequest?: string;
}

export const CERTIFICATE_REQUEST_STATES = ["PENDING", "FINISHED", "FAILED"] as const;
export type CertificateRequestState = (typeof CERTIFICATE_REQUEST_STATES)[number];

export interface CertificateRequestStatus {
  observedGeneration?: number;
  error?: string;
  state?: CertificateRequestState;
  /** PEM, base64 on the wire. */
  signedCertificate?: string;
  /** PEM, base64 on the wire. */
  signingRootCa?: string;
}

export interface CertificateRequest {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: CertificateRequestSpec;
  status?: CertificateRequestStatus;
}

export interface RootCertSync {
  secretRef?: ObjectRef;
  secretKey?: string;
  configMapRef?: ObjectRef;
  configMapKey?: string;
}

export interface BounceSelector {
  namespace?: string;
  labels?: Record<string, string>;
  waitForReplicas?: number;
  rootCertSync?: RootCertSync;
}

export interface PodBounceDirectiveSpec {
  podsToBounce?: BounceSelector[];
}

export interface BouncedPodSet {
  bouncedPods?: string[];
}

export interface PodBounceDirectiveStatus {
  podsBounced?: BouncedPodSet[];
}

export interface PodBounceDirective {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: PodBounceDirectiveSpec;
  status?: PodBounceDirectiveStatus;
}

/** Names used with the generic custom-objects API. */
export interface ResourceInfo {
  kind: string;
  listKind: string;
  plural: string;
  singular: string;
}

export const ISSUED_CERTIFICATE: ResourceInfo = {
  kind: "IssuedCertificate",
  listKind: "IssuedCertificateList",
  plural: "issuedcertificates",
  singular: "issuedcertificate",
};
export const CERTIFICATE_REQUEST: ResourceInfo = {
  kind: "CertificateRequest",
  listKind: "CertificateRequestList",
  plural: "certificaterequests",
  singular: "certificaterequest",
};
export const POD_BOUNCE_DIRECTIVE: ResourceInfo = {
  kind: "PodBounceDirective",
  listKind: "PodBounceDirectiveList",
  plural: "podbouncedirectives",
  singular: "podbouncedirective",
};
