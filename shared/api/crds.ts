// The CustomResourceDefinitions of certificates.mesh.gloo.solo.io/v1, generated from this file into
// charts/cert-agent/crds/ by `npm run gen:crds`. crds.test.ts fails when the YAML drifts from here and
// types.test.ts fails when these schemas drift from types.ts.
import {
  CERTIFICATE_REQUEST,
  CERTIFICATE_REQUEST_STATES,
  GROUP,
  ISSUED_CERTIFICATE,
  ISSUED_CERTIFICATE_STATES,
  POD_BOUNCE_DIRECTIVE,
  ResourceInfo,
  VERSION,
} from "./types";

export interface JSONSchema {
  type?: "object" | "array" | "string" | "integer" | "number" | "boolean";
  format?: string;
  description?: string;
  properties?: Record<string, JSONSchema>;
  items?: JSONSchema;
  additionalProperties?: JSONSchema;
  enum?: readonly string[];
  minimum?: number;
  maximum?: number;
  "x-kubernetes-preserve-unknown-fields"?: boolean;
}

const str = (description?: string): JSONSchema => ({ type: "string", ...(description ? { description } : {}) });
/** Proto `bytes`: base64 on the wire; the API server rejects anything that is not base64. */
const bytes = (description: string): JSONSchema => ({ type: "string", format: "byte", description });
const uint32 = (description?: string): JSONSchema => ({
  type: "integer",
  format: "int64",
  minimum: 0,
  maximum: 4294967295,
  ...(description ? { description } : {}),
});
const int64 = (description?: string): JSONSchema => ({ type: "integer", format: "int64", ...(description ? { description } : {}) });
const obj = (properties: Record<string, JSONSchema>, description?: string): JSONSchema => ({
  type: "object",
  properties,
  ...(description ? { description } : {}),
});
const stringMap = (): JSONSchema => ({ type: "object", additionalProperties: { type: "string" } });
const objectRef = (description?: string): JSONSchema => obj({ name: str(), namespace: str() }, description);

export const issuedCertificateSchema = obj({
  spec: obj({
    hosts: { type: "array", items: str(), description: "SANs of the certificate, e.g. spiffe://cluster.local/ns/istio-system/sa/istiod" },
    org: str("Deprecated: subject O; certOptions.orgName wins when set"),
    signingCertificateSecret: objectRef("Deprecated: issuer-side secret holding the signing CA"),
    issuedCertificateSecret: objectRef("Where the agent writes the final secret (Istio reads istio-system/cacerts)"),
    podBounceDirective: objectRef("PodBounceDirective to run after issuing"),
    certOptions: obj({
      // At most 100 years: the proto's uint32 allows 2^32-1 days, which overflowed an issuer's dates to 1899.
      ttlDays: { ...uint32("Validity of the intermediate in days; 0 means 365; at most 36500"), maximum: 36500 },
      rsaKeySizeBytes: uint32("RSA key size in BITS (Gloo Mesh's reading); 0 means 4096"),
      orgName: str("Subject O of the certificate"),
      secretRotationGracePeriodRatio: { type: "number", minimum: 0, maximum: 1 },
    }),
    glooMeshCa: obj({ signingCertificateSecret: objectRef() }),
    agentCa: obj({ vault: { type: "object", "x-kubernetes-preserve-unknown-fields": true } }),
  }),
  status: obj({
    observedGeneration: int64(),
    error: str(),
    state: { type: "string", enum: ISSUED_CERTIFICATE_STATES },
  }),
});

export const certificateRequestSchema = obj({
  spec: obj({
    certificateSigningRequest: bytes("PEM PKCS#10 certificate signing request"),
  }),
  status: obj({
    observedGeneration: int64(),
    error: str(),
    state: { type: "string", enum: CERTIFICATE_REQUEST_STATES },
    signedCertificate: bytes("PEM signed intermediate certificate"),
    signingRootCa: bytes("PEM root CA of the issuer"),
  }),
});

export const podBounceDirectiveSchema = obj({
  spec: obj({
    podsToBounce: {
      type: "array",
      items: obj({
        namespace: str(),
        labels: stringMap(),
        waitForReplicas: uint32(),
        rootCertSync: obj({
          secretRef: objectRef(),
          secretKey: str(),
          configMapRef: objectRef(),
          configMapKey: str(),
        }),
      }),
    },
  }),
  status: obj({
    podsBounced: { type: "array", items: obj({ bouncedPods: { type: "array", items: str() } }) },
  }),
});

const stateColumns = [
  { name: "State", type: "string", jsonPath: ".status.state" },
  { name: "Error", type: "string", jsonPath: ".status.error", priority: 1 },
  { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
];

function crd(info: ResourceInfo, schema: JSONSchema, printerColumns?: object[]) {
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${info.plural}.${GROUP}`, labels: { "app.kubernetes.io/part-of": "cert-agent" } },
    spec: {
      group: GROUP,
      names: { kind: info.kind, listKind: info.listKind, plural: info.plural, singular: info.singular, categories: ["gloo-mesh"] },
      scope: "Namespaced",
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          ...(printerColumns ? { additionalPrinterColumns: printerColumns } : {}),
          schema: { openAPIV3Schema: schema },
        },
      ],
    },
  };
}

export const crds = {
  issuedcertificates: crd(ISSUED_CERTIFICATE, issuedCertificateSchema, stateColumns),
  certificaterequests: crd(CERTIFICATE_REQUEST, certificateRequestSchema, stateColumns),
  podbouncedirectives: crd(POD_BOUNCE_DIRECTIVE, podBounceDirectiveSchema),
};
