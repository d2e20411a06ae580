// Root rotation: the pure helpers, and the three steps on the in-memory API with a fake clock (restarts
// between steps, the trust bundle wait, approval under require-approval). The real istiod version is
// e2e/root-rotation.e2e.test.ts.
import { createRootCa, RootCa } from "../e2e/issuer/sign";
import { verifyCaCertificate, verifyCertChain } from "../shared/pki";
import { parseSingleCertificatePem } from "../shared/pki/certificate";
import type { ConfigMap } from "./bouncer/pod-bouncer-reconciler";
import { CA_CERT, CA_KEY, CERT_CHAIN, Reason, ROOT_CERT } from "./constants";
import {
  APPROVED_ROOTS_ANNOTATION,
  approvedRoots,
  combineRoots,
  keepRoots,
  readRootRotation,
  ROOT_ROTATION_ANNOTATION,
  rootBlocks,
  rootFingerprints,
  rootRotationAnnotation,
} from "./root-rotation";
import { newEnv, ReconcilerEnv, rootCa, secretText } from "./testing/reconciler-env";

const block = (bytes: string) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(bytes).toString("base64")}\n-----END CERTIFICATE-----`;

describe("root bundles", () => {
  it("fingerprints each CERTIFICATE block's DER once, in order, skipping other blocks and text", () => {
    const pem = `junk\n${block("a")}\n${block("b")}\r\n\n${block("a")}\n-----BEGIN PRIVATE KEY-----\nQUFB\n-----END PRIVATE KEY-----\n`;
    expect(rootBlocks(pem).map((b) => b.text)).toEqual([block("a"), block("b")]);
    // sha256("a"), the DER of the block: the fingerprint openssl x509 -outform der | sha256sum gives for a real root
    expect(rootFingerprints(block("a"))).toEqual(["ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"]);
    expect(rootFingerprints("not a pem")).toEqual([]);
    expect(rootFingerprints("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----")).toEqual([]);
  });

  it("combines: the current bytes unchanged, then only the roots it lacks", () => {
    const current = `${block("a")}\n\n`;
    expect(combineRoots(current, `${block("b")}\n`)).toBe(`${block("a")}\n${block("b")}\n`);
    expect(combineRoots(current, `${block("a")}\n${block("b")}\n`)).toBe(`${block("a")}\n${block("b")}\n`);
    expect(combineRoots(current, block("a"))).toBe(current);
  });

  it("keeps only the named roots, each as it was", () => {
    const both = `${block("a")}\n${block("b")}\n`;
    expect(keepRoots(both, rootFingerprints(block("b")))).toBe(`${block("b")}\n`);
    expect(keepRoots(both, [])).toBe("");
  });

  it("reads only a well-formed rotation annotation", () => {
    const sha = "ab".repeat(32);
    const at = (value: unknown) => readRootRotation({ [ROOT_ROTATION_ANNOTATION]: typeof value === "string" ? value : JSON.stringify(value) });
    expect(at({ phase: "trust", newRoots: [sha], since: "2026-01-01T00:00:00Z" })).toEqual({ phase: "trust", newRoots: [sha], since: "2026-01-01T00:00:00Z" });
    expect(at({ phase: "overlap", newRoots: [sha], until: "2026-01-02T00:00:00Z" })).toEqual({ phase: "overlap", newRoots: [sha], until: "2026-01-02T00:00:00Z" });
    for (const bad of ["{", "null", { phase: "trust", newRoots: [] , since: "x" }, { phase: "trust", newRoots: ["XY"], since: "x" }, { phase: "overlap", newRoots: [sha], until: "never" },
      { phase: "overlap", newRoots: [sha] }, { phase: "trust", newRoots: [sha] }, { phase: "later", newRoots: [sha], until: "2026-01-02T00:00:00Z" }]) {
      expect(at(bad)).toBeUndefined();
    }
    expect(readRootRotation(undefined)).toBeUndefined();
    expect(rootRotationAnnotation(undefined)).toEqual({ [ROOT_ROTATION_ANNOTATION]: null });
  });

  it("reads approved fingerprints in any case, separated by commas or spaces; ignores anything else", () => {
    const [a, b] = ["ab".repeat(32), "cd".repeat(32)];
    expect(approvedRoots({ [APPROVED_ROOTS_ANNOTATION]: ` ${a.toUpperCase()},${b} short, ${"zz".repeat(32)}` })).toEqual([a, b]);
    expect(approvedRoots({})).toEqual([]);
  });
});

describe("root rotation on the in-memory API", () => {
  let newRoot: RootCa;
  beforeAll(async () => {
    newRoot = await createRootCa({ commonName: "the new root", spec: { algorithm: "ECDSA", curve: "P-256" }, now: new Date("2025-06-01T00:00:00Z"), days: 3650 });
  });

  const targetText = (e: ReconcilerEnv, key: string) => secretText(e.target(), key)!;
  const configMap = (namespace: string, rootPem: string): ConfigMap =>
    ({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "istio-ca-root-cert", namespace }, data: { [ROOT_CERT]: rootPem } });
  /** FINISHED with the file's root, istiod's ConfigMaps in two namespaces holding it; then a spec change answered with the new root. */
  async function rotating(e: ReconcilerEnv): Promise<{ oldRoot: string; oldCaCert: string }> {
    await e.runUntil("FINISHED");
    const oldRoot = (await rootCa()).certPem;
    for (const ns of ["istio-system", "app"]) e.api.seed("ConfigMap", configMap(ns, oldRoot));
    const oldCaCert = targetText(e, CA_CERT);
    const ic = e.ic()!;
    await e.issuedCertificates.replace({ ...ic, spec: { ...ic.spec, certOptions: { ...ic.spec!.certOptions, ttlDays: 400 } } });
    await e.runUntil("REQUESTED");
    await e.sign(undefined, undefined, { root: newRoot });
    return { oldRoot, oldCaCert };
  }

  it("accept: trusts both roots first, writes the new intermediate once every ConfigMap holds both, drops the old root after the overlap; a restart between any two steps changes nothing", async () => {
    const e = newEnv();
    const { oldRoot, oldCaCert } = await rotating(e);

    // Step 1: root-cert.pem = old + new; the intermediate, key and stamp stay.
    await e.reconcile();
    const both = `${oldRoot.replace(/\n+$/, "")}\n${newRoot.certPem}`;
    expect(targetText(e, ROOT_CERT)).toBe(both);
    expect(targetText(e, CA_CERT)).toBe(oldCaCert);
    expect(() => verifyCertChain(targetText(e, CERT_CHAIN), oldCaCert, both)).not.toThrow();
    expect(readRootRotation(e.target()!.metadata.annotations)).toMatchObject({ phase: "trust" });
    expect(e.eventReasons()).toContainEqual(["Warning", Reason.RootChanged]);
    expect(await e.metrics.registry.getSingleMetricAsString("cert_agent_root_changes_total")).toMatch(/cert_agent_root_changes_total\{namespace="mesh",name="ic"\} 1/);
    expect(e.state()).toBe("REQUESTED");

    // Waits, saying where, until istiod's ConfigMaps hold both roots (one Event per message, not per pass).
    e.restart();
    const written = e.target()!.metadata.resourceVersion;
    await e.reconcile();
    expect(e.ic()!.status!.error).toMatch(/^root rotation step 1 of 3: waiting for the old and new roots to reach 2 of 2 istio-ca-root-cert ConfigMaps \(app: 1 of 2 roots missing; istio-system: 1 of 2 roots missing\)/);
    await e.reconcile();
    expect(e.eventReasons().filter(([, r]) => r === Reason.TrustBundlePropagating)).toHaveLength(1);
    await e.configMaps.replace({ ...e.api.peek<ConfigMap>("ConfigMap", "istio-system", "istio-ca-root-cert")!, data: { [ROOT_CERT]: both } });
    await e.reconcile();
    expect(e.ic()!.status!.error).toMatch(/reach 1 of 2 .*\(app: 1 of 2 roots missing\)/);
    expect(e.target()!.metadata.resourceVersion).toBe(written);
    await e.configMaps.replace({ ...e.api.peek<ConfigMap>("ConfigMap", "app", "istio-ca-root-cert")!, data: { [ROOT_CERT]: both } });

    // Step 2: the new intermediate (signed by the new root) with both roots, until now + 25 h.
    e.restart();
    await e.runUntil("FINISHED");
    const newCaCert = targetText(e, CA_CERT);
    expect(newCaCert).not.toBe(oldCaCert);
    expect(targetText(e, ROOT_CERT)).toBe(both);
    const { publicKey } = await parseSingleCertificatePem(newCaCert);
    await expect(verifyCaCertificate({ certificatePem: newCaCert, rootPem: newRoot.certPem, publicKey, now: e.clock.now() })).resolves.toBeDefined();
    await expect(verifyCaCertificate({ certificatePem: newCaCert, rootPem: oldRoot, publicKey, now: e.clock.now() })).rejects.toThrow();
    const overlap = readRootRotation(e.target()!.metadata.annotations);
    expect(overlap).toEqual({ phase: "overlap", newRoots: rootFingerprints(newRoot.certPem), until: new Date(e.clock.now().getTime() + 25 * 3_600_000).toISOString() });
    expect(e.ic()!.status).toMatchObject({ state: "FINISHED", error: "" });
    expect(await e.metrics.registry.getSingleMetricAsString("cert_agent_root_rotation_phase")).toMatch(/\{namespace="mesh",name="ic"\} 2/);

    // FINISHED sleeps until the overlap ends (before the renewal); then step 3: the new root alone.
    const wait = await e.reconcile();
    expect(wait).toEqual({ requeueAfterMs: expect.any(Number) });
    expect((wait as { requeueAfterMs: number }).requeueAfterMs).toBeLessThanOrEqual(25 * 3_600_000);
    e.clock.advance(25 * 3_600_000);
    e.restart();
    await e.reconcile();
    expect(targetText(e, ROOT_CERT)).toBe(newRoot.certPem);
    expect(() => verifyCertChain(targetText(e, CERT_CHAIN), newCaCert, newRoot.certPem)).not.toThrow();
    expect(e.target()!.metadata.annotations?.[ROOT_ROTATION_ANNOTATION]).toBeUndefined();
    expect(targetText(e, CA_KEY)).toBeDefined();
    expect(e.eventReasons()).toContainEqual(["Normal", Reason.RootOverlapEnded]);
    expect(e.state()).toBe("FINISHED");
    // Nothing more to do until the renewal.
    const settled = e.target()!.metadata.resourceVersion;
    await e.reconcile();
    expect(e.target()!.metadata.resourceVersion).toBe(settled);
    expect(await e.keyMaterialLeaks()).toEqual([]);
  });

  it("require-approval: a new root waits (a Warning, status naming its SHA-256), the target untouched, until the annotation approves it", async () => {
    const e = newEnv({ settings: { rootChangePolicy: "require-approval" } });
    await rotating(e);
    const before = e.target()!.metadata.resourceVersion;
    await e.reconcile();
    await e.reconcile();
    const sha = rootFingerprints(newRoot.certPem)[0]!;
    expect(e.ic()!.status).toMatchObject({ state: "REQUESTED", error: expect.stringContaining(`new root (sha256 ${sha}) that is not approved`) });
    expect(e.eventReasons().filter(([, r]) => r === Reason.RootChangeNotApproved)).toEqual([["Warning", Reason.RootChangeNotApproved]]);
    expect(e.target()!.metadata.resourceVersion).toBe(before);

    await e.issuedCertificates.patchAnnotations("mesh", "ic", { [APPROVED_ROOTS_ANNOTATION]: sha });
    await e.reconcile();
    expect(rootFingerprints(targetText(e, ROOT_CERT))).toEqual([rootFingerprints((await rootCa()).certPem)[0], sha]);
    expect(e.eventReasons()).toContainEqual(["Warning", Reason.RootChanged]);
  });

  it("without any istio-ca-root-cert ConfigMap (no istiod yet) nothing is waited for", async () => {
    const e = newEnv();
    await rotating(e);
    for (const ns of ["istio-system", "app"]) await e.configMaps.delete(ns, "istio-ca-root-cert");
    await e.reconcile();
    await e.runUntil("FINISHED");
    expect(readRootRotation(e.target()!.metadata.annotations)).toMatchObject({ phase: "overlap" });
  });
});
