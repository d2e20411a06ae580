// Object builders for tests and the demo: a complete, valid object from a few choices.
import {
  API_VERSION,
  CERTIFICATE_REQUEST,
  CertificateRequest,
  ISSUED_CERTIFICATE,
  IssuedCertificate,
  IssuedCertificateSpec,
  ObjectRef,
  POD_BOUNCE_DIRECTIVE,
  PodBounceDirective,
  BounceSelector,
} from "./types";

export const ISTIOD_SPIFFE_ID = "spiffe://cluster.local/ns/istio-system/sa/istiod";
export const DEFAULT_TARGET_SECRET: ObjectRef = { name: "cacerts", namespace: "istio-system" };

export interface IssuedCertificateOptions {
  name: string;
  namespace: string;
  hosts?: string[];
  target?: ObjectRef;
  signingSecret?: ObjectRef;
  org?: string;
  ttlDays?: number;
  rsaKeySizeBits?: number;
  podBounceDirective?: ObjectRef;
  annotations?: Record<string, string>;
}

export function issuedCertificate(o: IssuedCertificateOptions): IssuedCertificate {
  const spec: IssuedCertificateSpec = {
    hosts: o.hosts ?? [ISTIOD_SPIFFE_ID],
    issuedCertificateSecret: o.target ?? DEFAULT_TARGET_SECRET,
    certOptions: { ttlDays: o.ttlDays ?? 365, rsaKeySizeBytes: o.rsaKeySizeBits ?? 4096, orgName: o.org ?? "cluster.local" },
    glooMeshCa: { signingCertificateSecret: o.signingSecret ?? { name: "root-ca", namespace: o.namespace } },
  };
  if (o.podBounceDirective) spec.podBounceDirective = o.podBounceDirective;
  return {
    apiVersion: API_VERSION,
    kind: ISSUED_CERTIFICATE.kind,
    metadata: { name: o.name, namespace: o.namespace, ...(o.annotations ? { annotations: o.annotations } : {}) },
    spec,
  };
}

export function certificateRequest(name: string, namespace: string, csrPem: string): CertificateRequest {
  return {
    apiVersion: API_VERSION,
    kind: CERTIFICATE_REQUEST.kind,
    metadata: { name, namespace },
    spec: { certificateSigningRequest: encodeBytes(csrPem) },
  };
}

export function podBounceDirective(name: string, namespace: string, podsToBounce: BounceSelector[]): PodBounceDirective {
  return { apiVersion: API_VERSION, kind: POD_BOUNCE_DIRECTIVE.kind, metadata: { name, namespace }, spec: { podsToBounce } };
}

/** Proto `bytes` field from text (PEM). */
export function encodeBytes(text: string): string {
  return Buffer.from(text, "utf8").toString("base64");
}

/** Text (PEM) from a proto `bytes` field; undefined stays undefined. */
export function decodeBytes(base64: string | undefined): string | undefined {
  return base64 === undefined ? undefined : Buffer.from(base64, "base64").toString("utf8");
}
