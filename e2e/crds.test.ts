// What our CRDs (charts/cert-agent/crds/) promise, checked against the real API server the Jest
// global setup started with them installed: schemas accept what the agent and issuer write and
// reject what they must never see, status lives in its own subresource, generation tracks spec only,
// and kubectl shows the state.
import * as k8s from "@kubernetes/client-node";
import { CERTIFICATE_REQUEST, GROUP, ISSUED_CERTIFICATE, POD_BOUNCE_DIRECTIVE, VERSION } from "../shared/api/types";
import {
  createTestNamespace,
  describeWithControlPlane,
  sharedKubeConfig,
  sharedKubectl,
  type TestNamespace,
} from "./controlplane/testenv";

interface Obj {
  apiVersion: string;
  kind: string;
  metadata: { name: string; generation?: number; resourceVersion?: string; labels?: Record<string, string> };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

const b64 = (s: string): string => Buffer.from(s).toString("base64");
const CSR_PEM = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n";

/** The server's Status message from a failed call (ApiException.body is the raw JSON text). */
async function rejection(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  const e = await p.then(
    () => {
      throw new Error("the server accepted the object");
    },
    (err: unknown) => err,
  );
  if (!(e instanceof k8s.ApiException)) throw e;
  const body = typeof e.body === "string" ? (JSON.parse(e.body) as { message?: string }) : (e.body as { message?: string });
  return { code: e.code, message: body.message ?? "" };
}

describeWithControlPlane("certificates.mesh.gloo.solo.io/v1 CRDs on a real API server", () => {
  let ns: TestNamespace;
  let api: k8s.CustomObjectsApi;

  const ref = (plural: string) => ({ group: GROUP, version: VERSION, namespace: ns.name, plural });
  const create = (plural: string, body: Obj) => api.createNamespacedCustomObject({ ...ref(plural), body }) as Promise<Obj>;
  const get = (plural: string, name: string) => api.getNamespacedCustomObject({ ...ref(plural), name }) as Promise<Obj>;
  const replace = (plural: string, body: Obj) =>
    api.replaceNamespacedCustomObject({ ...ref(plural), name: body.metadata.name, body }) as Promise<Obj>;
  const replaceStatus = (plural: string, body: Obj) =>
    api.replaceNamespacedCustomObjectStatus({ ...ref(plural), name: body.metadata.name, body }) as Promise<Obj>;

  const issuedCertificate = (name: string, spec: Record<string, unknown> = {}): Obj => ({
    apiVersion: `${GROUP}/${VERSION}`,
    kind: ISSUED_CERTIFICATE.kind,
    metadata: { name },
    spec: { hosts: ["spiffe://cluster.local/ns/istio-system/sa/istiod"], ...spec },
  });
  const certificateRequest = (name: string, csr: string = b64(CSR_PEM)): Obj => ({
    apiVersion: `${GROUP}/${VERSION}`,
    kind: CERTIFICATE_REQUEST.kind,
    metadata: { name },
    spec: { certificateSigningRequest: csr },
  });

  beforeAll(async () => {
    const kc = sharedKubeConfig();
    api = kc.makeApiClient(k8s.CustomObjectsApi);
    ns = await createTestNamespace(kc, "crds");
  });

  afterAll(async () => {
    await ns?.cleanup();
  });

  describe("valid objects are accepted and stored as sent", () => {
    test("IssuedCertificate with every field", async () => {
      const spec = {
        hosts: ["spiffe://cluster.local/ns/istio-system/sa/istiod", "istiod.istio-system.svc"],
        org: "legacy-org",
        signingCertificateSecret: { name: "root", namespace: "gloo-mesh" },
        issuedCertificateSecret: { name: "cacerts", namespace: "istio-system" },
        podBounceDirective: { name: "bounce", namespace: "istio-system" },
        certOptions: { ttlDays: 365, rsaKeySizeBytes: 4096, orgName: "Acme", secretRotationGracePeriodRatio: 0.1 },
        glooMeshCa: { signingCertificateSecret: { name: "root", namespace: "gloo-mesh" } },
        // agentCa.vault is kept opaque: arbitrary content must survive untouched.
        agentCa: { vault: { server: "https://vault.example", nested: { any: ["thing", 1, true] } } },
      };
      const created = await create(ISSUED_CERTIFICATE.plural, issuedCertificate("full", spec));
      expect(created.metadata.generation).toBe(1);
      expect((await get(ISSUED_CERTIFICATE.plural, "full")).spec).toEqual(spec);
    });

    test("CertificateRequest with a base64 CSR", async () => {
      await create(CERTIFICATE_REQUEST.plural, certificateRequest("csr"));
      const got = await get(CERTIFICATE_REQUEST.plural, "csr");
      expect(Buffer.from(got.spec!.certificateSigningRequest as string, "base64").toString()).toBe(CSR_PEM);
    });

    test("PodBounceDirective with selectors and root-cert sync", async () => {
      const spec = {
        podsToBounce: [
          { namespace: "istio-system", labels: { app: "istiod" }, waitForReplicas: 1 },
          {
            namespace: "gloo-mesh-gateways",
            labels: { istio: "ingressgateway" },
            rootCertSync: {
              secretRef: { name: "cacerts", namespace: "istio-system" },
              secretKey: "root-cert.pem",
              configMapRef: { name: "istio-ca-root-cert", namespace: "gloo-mesh-gateways" },
              configMapKey: "root-cert.pem",
            },
          },
        ],
      };
      await create(POD_BOUNCE_DIRECTIVE.plural, {
        apiVersion: `${GROUP}/${VERSION}`,
        kind: POD_BOUNCE_DIRECTIVE.kind,
        metadata: { name: "bounce" },
        spec,
      });
      expect((await get(POD_BOUNCE_DIRECTIVE.plural, "bounce")).spec).toEqual(spec);
    });

    test("unknown fields are pruned, not stored", async () => {
      const body = issuedCertificate("pruned", { notInTheSchema: "x", certOptions: { ttlDays: 1, bogus: true } });
      await create(ISSUED_CERTIFICATE.plural, body);
      const got = await get(ISSUED_CERTIFICATE.plural, "pruned");
      expect(got.spec).not.toHaveProperty("notInTheSchema");
      expect(got.spec!.certOptions).toEqual({ ttlDays: 1 });
    });
  });

  describe("invalid objects are rejected with the server's reason", () => {
    test("an IssuedCertificate status.state outside the enum, written through /status", async () => {
      const created = await create(ISSUED_CERTIFICATE.plural, issuedCertificate("bogus-state"));
      const r = await rejection(replaceStatus(ISSUED_CERTIFICATE.plural, { ...created, status: { state: "BOGUS" } }));
      expect(r.code).toBe(422);
      expect(r.message).toContain('status.state: Unsupported value: "BOGUS"');
      expect(r.message).toContain('"PENDING", "REQUESTED", "ISSUED", "FINISHED", "FAILED"');
    });

    test("a CertificateRequest state that only IssuedCertificate has", async () => {
      const created = await create(CERTIFICATE_REQUEST.plural, certificateRequest("cr-state"));
      const r = await rejection(replaceStatus(CERTIFICATE_REQUEST.plural, { ...created, status: { state: "ISSUED" } }));
      expect(r.code).toBe(422);
      expect(r.message).toContain('status.state: Unsupported value: "ISSUED"');
      expect(r.message).toContain('"PENDING", "FINISHED", "FAILED"');
    });

    test("a negative spec.certOptions.rsaKeySizeBytes", async () => {
      const r = await rejection(
        create(ISSUED_CERTIFICATE.plural, issuedCertificate("negative-key", { certOptions: { rsaKeySizeBytes: -1 } })),
      );
      expect(r.code).toBe(422);
      expect(r.message).toContain("spec.certOptions.rsaKeySizeBytes: Invalid value: -1");
      expect(r.message).toContain("should be greater than or equal to 0");
    });

    test("a spec.certOptions.ttlDays above 100 years (the uint32 that overflowed an issuer's dates)", async () => {
      const r = await rejection(
        create(ISSUED_CERTIFICATE.plural, issuedCertificate("forever", { certOptions: { ttlDays: 4294967295 } })),
      );
      expect(r.code).toBe(422);
      expect(r.message).toContain("spec.certOptions.ttlDays: Invalid value: 4294967295");
      expect(r.message).toContain("should be less than or equal to 36500");
    });

    test("a spec.certificateSigningRequest that is not base64", async () => {
      const r = await rejection(create(CERTIFICATE_REQUEST.plural, certificateRequest("not-b64", "this is not base64!")));
      expect(r.code).toBe(422);
      expect(r.message).toContain("spec.certificateSigningRequest");
      expect(r.message).toContain("must be of type byte");
    });

    test("hosts that are not a list of strings", async () => {
      const r = await rejection(create(ISSUED_CERTIFICATE.plural, issuedCertificate("bad-hosts", { hosts: "a.example" })));
      expect(r.code).toBe(422);
      expect(r.message).toContain('spec.hosts: Invalid value: "string": spec.hosts in body must be of type array');
    });
  });

  describe("status subresource and generation", () => {
    test("a /status write changes status but not generation; a spec change bumps generation", async () => {
      const created = await create(ISSUED_CERTIFICATE.plural, issuedCertificate("gen"));
      expect(created.metadata.generation).toBe(1);

      const withStatus = await replaceStatus(ISSUED_CERTIFICATE.plural, {
        ...created,
        status: { state: "REQUESTED", observedGeneration: 1 },
      });
      expect(withStatus.status).toEqual({ state: "REQUESTED", observedGeneration: 1 });
      expect(withStatus.metadata.generation).toBe(1);
      expect(withStatus.metadata.resourceVersion).not.toBe(created.metadata.resourceVersion);

      // The main endpoint ignores status: only /status may write it.
      const ignored = await replace(ISSUED_CERTIFICATE.plural, { ...withStatus, status: { state: "FAILED" } });
      expect(ignored.status).toEqual({ state: "REQUESTED", observedGeneration: 1 });
      expect(ignored.metadata.generation).toBe(1);

      // Metadata (labels) is not spec either.
      const labelled = await replace(ISSUED_CERTIFICATE.plural, {
        ...ignored,
        metadata: { ...ignored.metadata, labels: { touched: "yes" } },
      });
      expect(labelled.metadata.generation).toBe(1);

      const respecced = await replace(ISSUED_CERTIFICATE.plural, {
        ...labelled,
        spec: { ...labelled.spec, certOptions: { ttlDays: 30 } },
      });
      expect(respecced.metadata.generation).toBe(2);
      expect(respecced.status).toEqual({ state: "REQUESTED", observedGeneration: 1 });

      // And /status ignores spec.
      const specViaStatus = await replaceStatus(ISSUED_CERTIFICATE.plural, {
        ...respecced,
        spec: { hosts: ["changed"] },
        status: { state: "FINISHED", observedGeneration: 2 },
      });
      expect(specViaStatus.spec!.hosts).toEqual(["spiffe://cluster.local/ns/istio-system/sa/istiod"]);
      expect(specViaStatus.metadata.generation).toBe(2);
    });

    test("a stale resourceVersion is a 409 conflict", async () => {
      const created = await create(CERTIFICATE_REQUEST.plural, certificateRequest("conflict"));
      await replaceStatus(CERTIFICATE_REQUEST.plural, { ...created, status: { state: "PENDING" } });
      const r = await rejection(replaceStatus(CERTIFICATE_REQUEST.plural, { ...created, status: { state: "FAILED" } }));
      expect(r.code).toBe(409);
      expect(r.message).toContain("the object has been modified; please apply your changes to the latest version");
    });
  });

  describe("kubectl get", () => {
    /** Splits kubectl's table output into header cells and rows of cells. */
    const table = (out: string): { header: string[]; rows: string[][] } => {
      const [head, ...rows] = out.trim().split("\n").map((l) => l.trim().split(/\s{2,}/));
      return { header: head!, rows };
    };

    test("issuedcertificates show STATE and AGE, with ERROR in -o wide", async () => {
      const created = await create(ISSUED_CERTIFICATE.plural, issuedCertificate("shown"));
      await replaceStatus(ISSUED_CERTIFICATE.plural, { ...created, status: { state: "FAILED", error: "signer unreachable" } });

      const { header, rows } = table(await sharedKubectl(["get", "issuedcertificates", "-n", ns.name]));
      expect(header).toEqual(["NAME", "STATE", "AGE"]);
      const row = rows.find((r) => r[0] === "shown");
      expect(row?.[1]).toBe("FAILED");
      expect(row?.[2]).toMatch(/^\d+s$/);

      const wide = table(await sharedKubectl(["get", "issuedcertificates", "shown", "-n", ns.name, "-o", "wide"]));
      expect(wide.header).toEqual(["NAME", "STATE", "ERROR", "AGE"]);
      expect(wide.rows[0]!.slice(0, 3)).toEqual(["shown", "FAILED", "signer unreachable"]);
    });

    test("certificaterequests show STATE and AGE", async () => {
      const created = await create(CERTIFICATE_REQUEST.plural, certificateRequest("listed"));
      await replaceStatus(CERTIFICATE_REQUEST.plural, { ...created, status: { state: "FINISHED" } });

      const out = await sharedKubectl(["get", "certificaterequests", "-n", ns.name]);
      const { header, rows } = table(out);
      expect(header).toEqual(["NAME", "STATE", "AGE"]);
      expect(rows.find((r) => r[0] === "listed")?.[1]).toBe("FINISHED");
    });
  });
});
