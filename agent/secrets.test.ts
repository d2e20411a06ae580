// The two Secrets the agent writes, table-driven: which existing Secrets are ours to use or overwrite
// (and the exact words an operator reads when one is not), what the builders write, and that a write
// built from a stale read is refused by the API (in-memory, shared/kube/fake.ts) instead of
// overwriting someone else's change.
import { issuedCertificate } from "../shared/api/builders";
import { API_VERSION, IssuedCertificate } from "../shared/api/types";
import { FakeApi } from "../shared/kube/fake";
import type { Secret } from "../shared/kube/secrets";
import {
  CA_CERT,
  CA_KEY,
  CERT_CHAIN,
  ISSUED_SECRET_TYPE,
  KEY_FINGERPRINT_ANNOTATION,
  MANAGED_BY_LABEL,
  MANAGED_BY_VALUE,
  ORIGINAL_AGENT_LABEL,
  OWNER_ANNOTATION,
  PRIVATE_KEY_SECRET_KEY,
  PRIVATE_KEY_SECRET_TYPE,
  REVISION_ANNOTATION,
  ROOT_CERT,
} from "./constants";
import { IssuanceStamp } from "./issuance";
import {
  adoptedTargetSecret,
  CaBundle,
  isManaged,
  privateKeyRef,
  secretData,
  stagedKeyConflict,
  stagedKeySecret,
  targetConflict,
  targetSecret,
  writtenByOriginalAgent,
} from "./secrets";
import { KEY, NAME, NS, TARGET } from "./testing/reconciler-env";

const UID = "0b7e7c4e-0000-4000-8000-000000000001";
const FP = "ab".repeat(32);
const STAMP: IssuanceStamp = { owner: KEY, revision: 3, fingerprint: FP };
const STAMP_ANNOTATIONS = { [OWNER_ANNOTATION]: KEY, [REVISION_ANNOTATION]: "3", [KEY_FINGERPRINT_ANNOTATION]: FP };
const PEM = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMG\n-----END PRIVATE KEY-----\n";
const BUNDLE: CaBundle = { caCert: "CA CERT PEM", caKey: "CA KEY PEM", certChain: "CHAIN PEM", rootCert: "ROOT PEM" };
const b64 = (text: string) => Buffer.from(text, "utf8").toString("base64");
const MANAGED = { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE };

function ic(): IssuedCertificate {
  const o = issuedCertificate({ name: NAME, namespace: NS, target: TARGET });
  o.metadata.uid = UID;
  return o;
}

/** A Secret as someone (us or not) left it. */
const secret = (ns: string, name: string, type: string | undefined, labels?: Record<string, string>, annotations?: Record<string, string>): Secret => ({
  apiVersion: "v1",
  kind: "Secret",
  ...(type ? { type } : {}),
  metadata: { name, namespace: ns, ...(labels ? { labels } : {}), ...(annotations ? { annotations } : {}) },
  data: { other: b64("data") },
});

describe("isManaged", () => {
  it.each<[string, boolean, Parameters<typeof isManaged>[0]]>([
    ["labelled managed-by=cert-agent", true, { metadata: { labels: MANAGED } }],
    ["labelled managed-by=helm", false, { metadata: { labels: { [MANAGED_BY_LABEL]: "helm" } } }],
    ["labelled with other labels only", false, { metadata: { labels: { app: "cert-agent" } } }],
    ["without labels", false, { metadata: {} }],
    ["absent", false, undefined],
  ])("an object %s -> managed: %s", (_name, managed, obj) => {
    expect(isManaged(obj)).toBe(managed);
  });
});

describe("secretData", () => {
  it("decodes a key of a Secret, and is undefined for a missing key or Secret", () => {
    const s = secret(NS, NAME, "Opaque");
    expect(secretData(s, "other")).toBe("data");
    expect(secretData(s, "absent")).toBeUndefined();
    expect(secretData(undefined, "other")).toBeUndefined();
  });
});

describe("the staged private key", () => {
  const NOT_OURS = "secret mesh/ic exists and is not a private key staged by cert-agent; it was left untouched. " +
    "Delete it or rename the IssuedCertificate";

  it("is named after the IssuedCertificate, in its namespace", () => {
    expect(privateKeyRef(ic())).toEqual({ name: NAME, namespace: NS });
  });

  it.each<[string, Secret | undefined, string | undefined]>([
    ["no Secret", undefined, undefined],
    ["our staged key (label and type)", secret(NS, NAME, PRIVATE_KEY_SECRET_TYPE, MANAGED), undefined],
    ["a Secret of our type without our label", secret(NS, NAME, PRIVATE_KEY_SECRET_TYPE), NOT_OURS],
    ["a Secret with our label but type Opaque", secret(NS, NAME, "Opaque", MANAGED), NOT_OURS],
    ["a Secret with our label but the target's type", secret(NS, NAME, ISSUED_SECRET_TYPE, MANAGED), NOT_OURS],
    ["an unlabelled Secret of no type", secret(NS, NAME, undefined), NOT_OURS],
    ["the target secret another IssuedCertificate (other/a) had written there", secret(NS, NAME, ISSUED_SECRET_TYPE, MANAGED, { [OWNER_ANNOTATION]: "other/a" }),
      "secret mesh/ic is the target secret of IssuedCertificate other/a, which collides with this IssuedCertificate's staged key; " +
      "it was left untouched. other/a now fails with TargetSecretCollision: change its spec.issuedCertificateSecret, then delete this secret"],
  ])("at the staged-key name, %s: the exact conflict (or none)", (_name, existing, conflict) => {
    expect(stagedKeyConflict(existing)).toBe(conflict);
  });

  it("is a labelled Secret of the private-key type, stamped, controlled by the IssuedCertificate (deleted with it), holding the PEM", () => {
    expect(stagedKeySecret(ic(), PEM, STAMP, undefined)).toEqual({
      apiVersion: "v1",
      kind: "Secret",
      type: PRIVATE_KEY_SECRET_TYPE,
      metadata: {
        name: NAME,
        namespace: NS,
        labels: MANAGED,
        annotations: STAMP_ANNOTATIONS,
        ownerReferences: [{ apiVersion: API_VERSION, kind: "IssuedCertificate", name: NAME, uid: UID, controller: true, blockOwnerDeletion: true }],
      },
      data: { [PRIVATE_KEY_SECRET_KEY]: b64(PEM) },
    });
  });

  it("an overwrite carries the resourceVersion of the Secret it replaces", () => {
    const existing = { ...secret(NS, NAME, PRIVATE_KEY_SECRET_TYPE, MANAGED), metadata: { name: NAME, namespace: NS, resourceVersion: "17" } };
    expect(stagedKeySecret(ic(), PEM, STAMP, existing).metadata.resourceVersion).toBe("17");
  });

  it("an overwrite built from a stale read is refused with 409 and leaves the newer Secret in place", async () => {
    const api = new FakeApi();
    const secrets = api.client<Secret>("Secret");
    await secrets.create(NS, stagedKeySecret(ic(), PEM, STAMP, undefined));
    const stale = (await secrets.get(NS, NAME))!;
    const newer = await secrets.replace(stagedKeySecret(ic(), "NEWER PEM", STAMP, stale));

    await expect(secrets.replace(stagedKeySecret(ic(), "STALE PEM", STAMP, stale))).rejects.toMatchObject({ code: 409 });
    expect(secretData(await secrets.get(NS, NAME), PRIVATE_KEY_SECRET_KEY)).toBe("NEWER PEM");
    // From a fresh read the overwrite goes through.
    await secrets.replace(stagedKeySecret(ic(), "FRESH PEM", STAMP, newer));
    expect(secretData(await secrets.get(NS, NAME), PRIVATE_KEY_SECRET_KEY)).toBe("FRESH PEM");
  });
});

describe("the target secret", () => {
  const NOT_MANAGED = "target secret istio-system/cacerts exists and is not managed by cert-agent; it was left untouched. " +
    "Delete it, or label it app.kubernetes.io/managed-by=cert-agent and give it type certificates.mesh.gloo.solo.io/issued_certificate to hand it over";
  const T = (type: string | undefined, labels?: Record<string, string>, annotations?: Record<string, string>) =>
    secret(TARGET.namespace, TARGET.name, type, labels, annotations);

  it.each<[string, Secret | undefined, string | undefined]>([
    ["no Secret", undefined, undefined],
    ["ours, written for this IssuedCertificate", T(ISSUED_SECRET_TYPE, MANAGED, { [OWNER_ANNOTATION]: KEY }), undefined],
    ["handed over (our label and type, no owner yet)", T(ISSUED_SECRET_TYPE, MANAGED), undefined],
    ["a hand-plugged CA (Opaque, unlabelled)", T("Opaque"), NOT_MANAGED],
    ["of our type but unlabelled", T(ISSUED_SECRET_TYPE), NOT_MANAGED],
    ["labelled but Opaque", T("Opaque", MANAGED), NOT_MANAGED],
    ["labelled managed-by=helm, of our type", T(ISSUED_SECRET_TYPE, { [MANAGED_BY_LABEL]: "helm" }), NOT_MANAGED],
    ["ours, but written for another IssuedCertificate", T(ISSUED_SECRET_TYPE, MANAGED, { [OWNER_ANNOTATION]: "mesh/other" }),
      "target secret istio-system/cacerts belongs to IssuedCertificate mesh/other; it was left untouched"],
  ])("at the target, %s: the exact conflict (or none)", (_name, existing, conflict) => {
    expect(targetConflict(existing, ic())).toBe(conflict);
  });

  it("a new target is the whole bundle in one labelled, stamped Secret of Istio's issued type, not owned by anything", () => {
    expect(targetSecret(TARGET, BUNDLE, STAMP, undefined)).toEqual({
      apiVersion: "v1",
      kind: "Secret",
      type: ISSUED_SECRET_TYPE,
      metadata: { name: TARGET.name, namespace: TARGET.namespace, labels: MANAGED, annotations: STAMP_ANNOTATIONS },
      data: { [CA_CERT]: b64(BUNDLE.caCert), [CA_KEY]: b64(BUNDLE.caKey), [CERT_CHAIN]: b64(BUNDLE.certChain), [ROOT_CERT]: b64(BUNDLE.rootCert) },
    });
  });

  it("overwriting keeps the labels and annotations others set, replaces our stamp, and carries the resourceVersion", () => {
    const existing = T(ISSUED_SECRET_TYPE, { ...MANAGED, "example.com/team": "mesh" },
      { "example.com/note": "keep me", [OWNER_ANNOTATION]: KEY, [REVISION_ANNOTATION]: "2", [KEY_FINGERPRINT_ANNOTATION]: "cd".repeat(32) });
    existing.metadata.resourceVersion = "41";
    expect(targetSecret(TARGET, BUNDLE, STAMP, existing).metadata).toEqual({
      name: TARGET.name,
      namespace: TARGET.namespace,
      labels: { ...MANAGED, "example.com/team": "mesh" },
      annotations: { "example.com/note": "keep me", ...STAMP_ANNOTATIONS },
      resourceVersion: "41",
    });
  });

  it("takes over a handed-over Secret: its other labels stay and our label is set", () => {
    const existing = T(ISSUED_SECRET_TYPE, { "example.com/team": "mesh" });
    expect(targetSecret(TARGET, BUNDLE, STAMP, existing).metadata.labels).toEqual({ "example.com/team": "mesh", ...MANAGED });
  });

  it("an overwrite built from a stale read is refused with 409 and leaves the newer bundle in place", async () => {
    const api = new FakeApi();
    const secrets = api.client<Secret>("Secret");
    await secrets.create(TARGET.namespace, targetSecret(TARGET, BUNDLE, STAMP, undefined));
    const stale = (await secrets.get(TARGET.namespace, TARGET.name))!;
    const newer = await secrets.replace(targetSecret(TARGET, { ...BUNDLE, caCert: "NEWER" }, STAMP, stale));

    await expect(secrets.replace(targetSecret(TARGET, { ...BUNDLE, caCert: "STALE" }, STAMP, stale))).rejects.toMatchObject({ code: 409 });
    expect(secretData(await secrets.get(TARGET.namespace, TARGET.name), CA_CERT)).toBe("NEWER");
    await secrets.replace(targetSecret(TARGET, { ...BUNDLE, caCert: "FRESH" }, STAMP, newer));
    expect(secretData(await secrets.get(TARGET.namespace, TARGET.name), CA_CERT)).toBe("FRESH");
  });
});

describe("the target secret Gloo Mesh's own agent wrote (a migration)", () => {
  /** Labels exactly as the original writes them: its namespace (where Gloo Mesh puts IssuedCertificates) and an empty cluster. */
  const ORIGINAL_LABELS = { [ORIGINAL_AGENT_LABEL]: NS, "cluster.multicluster.solo.io": "" };
  const T = (type: string | undefined, labels?: Record<string, string>, annotations?: Record<string, string>, where = TARGET) =>
    secret(where.namespace, where.name, type, labels, annotations);
  const NOT_MANAGED = /^target secret istio-system\/cacerts exists and is not managed by cert-agent; it was left untouched/;

  it.each<[string, boolean, Secret | undefined]>([
    ["as the original writes it: its type, its label = the IssuedCertificate's namespace, an empty cluster label", true, T(ISSUED_SECRET_TYPE, ORIGINAL_LABELS)],
    ["with only the agent label", true, T(ISSUED_SECRET_TYPE, { [ORIGINAL_AGENT_LABEL]: NS })],
    ["with an owner annotation naming this IssuedCertificate", true, T(ISSUED_SECRET_TYPE, ORIGINAL_LABELS, { [OWNER_ANNOTATION]: KEY })],
    ["labelled for another namespace (another agent's, or IssuedCertificates elsewhere)", false, T(ISSUED_SECRET_TYPE, { ...ORIGINAL_LABELS, [ORIGINAL_AGENT_LABEL]: "gloo-mesh" })],
    ["with an empty agent label", false, T(ISSUED_SECRET_TYPE, { [ORIGINAL_AGENT_LABEL]: "" })],
    ["without the agent label", false, T(ISSUED_SECRET_TYPE, { "cluster.multicluster.solo.io": "" })],
    ["of another type (Opaque)", false, T("Opaque", ORIGINAL_LABELS)],
    ["of no type", false, T(undefined, ORIGINAL_LABELS)],
    ["of the staged-key type", false, T(PRIVATE_KEY_SECRET_TYPE, ORIGINAL_LABELS)],
    ["with an owner annotation naming another IssuedCertificate", false, T(ISSUED_SECRET_TYPE, ORIGINAL_LABELS, { [OWNER_ANNOTATION]: "mesh/other" })],
    ["already ours (managed-by=cert-agent)", false, T(ISSUED_SECRET_TYPE, { ...ORIGINAL_LABELS, ...MANAGED })],
    ["at another name than spec.issuedCertificateSecret", false, T(ISSUED_SECRET_TYPE, ORIGINAL_LABELS, undefined, { namespace: TARGET.namespace, name: "other-cacerts" })],
    ["that does not exist", false, undefined],
  ])("a Secret %s -> adopted: %s", (_name, adopted, existing) => {
    expect(writtenByOriginalAgent(existing, ic(), TARGET)).toBe(adopted);
    // What is not adopted is refused exactly as before (or is ours already).
    if (existing && !adopted && !isManaged(existing)) expect(targetConflict(existing, ic())).toMatch(/left untouched/);
  });

  it("look-alikes that are not adopted keep today's exact refusal", () => {
    expect(targetConflict(T(ISSUED_SECRET_TYPE, { ...ORIGINAL_LABELS, [ORIGINAL_AGENT_LABEL]: "gloo-mesh" }), ic())).toMatch(NOT_MANAGED);
    expect(targetConflict(T("Opaque", ORIGINAL_LABELS), ic())).toMatch(NOT_MANAGED);
    expect(targetConflict(T(ISSUED_SECRET_TYPE), ic())).toMatch(NOT_MANAGED);
  });

  it("adopting adds our label and stamp and keeps everything else: type, data (the empty key.pem too), labels, annotations, resourceVersion", () => {
    const existing: Secret = {
      ...T(ISSUED_SECRET_TYPE, ORIGINAL_LABELS, { "example.com/note": "keep me" }),
      data: { [CA_CERT]: b64("CERT"), [CA_KEY]: b64("KEY"), [CERT_CHAIN]: b64("CHAIN"), [ROOT_CERT]: b64("ROOT"), "key.pem": "" },
    };
    existing.metadata.resourceVersion = "17";
    existing.metadata.uid = "secret-uid";
    const stamp0: IssuanceStamp = { owner: KEY, revision: 0, fingerprint: FP };
    expect(adoptedTargetSecret(existing, stamp0)).toEqual({
      ...existing,
      metadata: {
        ...existing.metadata,
        labels: { ...ORIGINAL_LABELS, ...MANAGED },
        annotations: { "example.com/note": "keep me", [OWNER_ANNOTATION]: KEY, [REVISION_ANNOTATION]: "0", [KEY_FINGERPRINT_ANNOTATION]: FP },
      },
    });
    // Pure: the Secret as read is not changed.
    expect(existing.metadata.labels).toEqual(ORIGINAL_LABELS);
    // Once adopted it is ours: no conflict.
    expect(targetConflict(adoptedTargetSecret(existing, stamp0), ic())).toBeUndefined();
  });

  it("an adoption built from a stale read is refused with 409 and leaves the newer Secret in place", async () => {
    const api = new FakeApi();
    const secrets = api.client<Secret>("Secret");
    await secrets.create(TARGET.namespace, T(ISSUED_SECRET_TYPE, ORIGINAL_LABELS));
    const stale = (await secrets.get(TARGET.namespace, TARGET.name))!;
    await secrets.replace({ ...stale, data: { other: b64("newer") } });
    await expect(secrets.replace(adoptedTargetSecret(stale, STAMP))).rejects.toMatchObject({ code: 409 });
    expect(isManaged(await secrets.get(TARGET.namespace, TARGET.name))).toBe(false);
  });
});
