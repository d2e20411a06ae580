import { certificateRequestSchema, issuedCertificateSchema, JSONSchema, podBounceDirectiveSchema } from "./crds";
import {
  CertificateRequestSpec,
  CertificateRequestStatus,
  IssuedCertificateSpec,
  IssuedCertificateStatus,
  PodBounceDirectiveSpec,
  PodBounceDirectiveStatus,
} from "./types";

// Every field of every type, required and nested: the compiler rejects an example that misses a
// field of types.ts or has one types.ts lacks, and the test below compares the paths with the schema.
type DeepRequired<T> = T extends (infer E)[] ? DeepRequired<E>[] : T extends object ? { [K in keyof T]-?: DeepRequired<T[K]> } : T;

const ref = { name: "n", namespace: "ns" };
const issuedSpec: DeepRequired<IssuedCertificateSpec> = {
  hosts: ["h"],
  org: "o",
  signingCertificateSecret: ref,
  issuedCertificateSecret: ref,
  podBounceDirective: ref,
  certOptions: { ttlDays: 1, rsaKeySizeBytes: 2048, orgName: "o", secretRotationGracePeriodRatio: 0.1 },
  glooMeshCa: { signingCertificateSecret: ref },
  agentCa: { vault: {} },
};
const issuedStatus: DeepRequired<IssuedCertificateStatus> = { observedGeneration: 1, error: "e", state: "PENDING" };
const requestSpec: DeepRequired<CertificateRequestSpec> = { certificateSigningRequest: "Y3Ny" };
const requestStatus: DeepRequired<CertificateRequestStatus> = {
  observedGeneration: 1,
  error: "e",
  state: "FINISHED",
  signedCertificate: "Yw==",
  signingRootCa: "cg==",
};
const bounceSpec: DeepRequired<PodBounceDirectiveSpec> = {
  podsToBounce: [
    {
      namespace: "ns",
      labels: { app: "istiod" },
      waitForReplicas: 1,
      rootCertSync: { secretRef: ref, secretKey: "root-cert.pem", configMapRef: ref, configMapKey: "root-cert.pem" },
    },
  ],
};
const bounceStatus: DeepRequired<PodBounceDirectiveStatus> = { podsBounced: [{ bouncedPods: ["p"] }] };

/** Dotted paths of every property an object has ("[]" for array items); map values are not fields. */
function valuePaths(value: unknown, prefix = "", mapsAt: Set<string> = new Set()): string[] {
  if (Array.isArray(value)) return value.length ? valuePaths(value[0], `${prefix}[]`, mapsAt) : [];
  if (value === null || typeof value !== "object" || mapsAt.has(prefix)) return [];
  return Object.entries(value).flatMap(([key, child]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    return [path, ...valuePaths(child, path, mapsAt)];
  });
}

function schemaPaths(schema: JSONSchema, prefix = ""): string[] {
  if (schema.items) return schemaPaths(schema.items, `${prefix}[]`);
  return Object.entries(schema.properties ?? {}).flatMap(([key, child]) => {
    const path = prefix ? `${prefix}.${key}` : key;
    return [path, ...schemaPaths(child, path)];
  });
}

// Opaque or map-typed fields: their members are data, not schema properties.
const opaque = new Set(["spec.agentCa.vault", "spec.podsToBounce[].labels"]);

describe.each([
  ["IssuedCertificate", issuedCertificateSchema, { spec: issuedSpec, status: issuedStatus }],
  ["CertificateRequest", certificateRequestSchema, { spec: requestSpec, status: requestStatus }],
  ["PodBounceDirective", podBounceDirectiveSchema, { spec: bounceSpec, status: bounceStatus }],
])("%s", (_kind, schema, example) => {
  it("has exactly the fields of its TypeScript type in its CRD schema", () => {
    expect(schemaPaths(schema).sort()).toEqual(valuePaths(example, "", opaque).sort());
  });
});
