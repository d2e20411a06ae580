// The mesh root rotates without downtime, with the real istiod in the loop (docs/root-rotation.md): the
// agent as its own process, SIGKILLed in each step; istiod reading the cacerts Secret through a
// kubelet-like projection and publishing istio-ca-root-cert; KWOK pods bounced by a directive. All the
// while a poller asks istiod for workload certificates and checks that every unexpired one verifies
// against the trust bundle every istio-ca-root-cert ConfigMap holds at that moment.
import { X509Certificate } from "node:crypto";
import { AppsV1Api, KubeConfig } from "@kubernetes/client-node";
import { KEY_ALGORITHM_ANNOTATION, ROOT_CERT } from "../agent/constants";
import { APPROVED_ROOTS_ANNOTATION, readRootRotation, ROOT_ROTATION_ANNOTATION, rootFingerprints, type RootRotation } from "../agent/root-rotation";
import { podBounceDirective } from "../shared/api/builders";
import { PodBounceDirective, POD_BOUNCE_DIRECTIVE } from "../shared/api/types";
import { CustomResourceClient } from "../shared/kube/custom-objects";
import { ControlPlaneWithNodes, startControlPlaneWithNodes } from "./controlplane/nodes";
import { describeWithControlPlane } from "./controlplane/testenv";
import { type Clients, clients, createSigningSecret, decodeSecret, getSecretOrUndefined, loadKubeConfig, newIssuedCertificate, openssl, spawnAgent,
  startIssuer, waitFor, waitForEvent, waitForState, type AgentProcess } from "./harness";
import { type Istiod, startIstiod, type WorkloadCertificate } from "./istiod/istiod";
import { createRootCa, type RootCa } from "./issuer/sign";
import type { ReferenceIssuer } from "./issuer/issuer";
import { deployment, readyPods } from "./workloads";

jest.setTimeout(600_000);

const MESH = "mesh";
const ISTIO = "istio-system";
const APPS = "workloads";
const IC = "mesh-ca";
/** Short enough for the test, longer than the workload certificates' lifetime (as 25 h is to Istio's 24 h). */
const OVERLAP_S = 40;
const WORKLOAD_TTL_S = 20;

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;
const certsOf = (pem: string) => [...pem.matchAll(PEM_CERT)].map(([block]) => new X509Certificate(block));

/** Why `cert` does not verify against `bundlePem` at `now` (undefined: it does): leaf <- one of its intermediates <- one of the bundle's roots. */
function untrustedBy(cert: WorkloadCertificate, bundlePem: string, now: Date): string | undefined {
  const leaf = new X509Certificate(cert.certPem);
  const intermediate = certsOf(cert.intermediatesPem).find((i) => leaf.checkIssued(i) && leaf.verify(i.publicKey));
  if (!intermediate) return "no intermediate in istiod's answer signed the leaf";
  const roots = certsOf(bundlePem);
  if (!roots.some((r) => intermediate.checkIssued(r) && intermediate.verify(r.publicKey))) {
    return `its intermediate (${intermediate.issuer}) chains to none of the bundle's ${roots.length} root(s)`;
  }
  if (new Date(intermediate.validTo).getTime() <= now.getTime()) return "its intermediate expired";
  return undefined;
}

interface Signed { cert: WorkloadCertificate; at: number; notAfter: number }

/** Signs a workload certificate every ~400 ms and checks every unexpired one against every ConfigMap's bundle. */
class TrustPoller {
  readonly signed: Signed[] = [];
  readonly violations: string[] = [];
  readonly signErrors: string[] = [];
  checks = 0;
  private running = true;
  private readonly done: Promise<void>;

  constructor(private readonly istiod: Istiod, private readonly namespaces: string[]) {
    this.done = this.loop();
  }

  private async loop(): Promise<void> {
    while (this.running) {
      try {
        const cert = await this.istiod.signWorkloadCertificate({ namespace: APPS, serviceAccount: "app", ttlSeconds: WORKLOAD_TTL_S });
        this.signed.push({ cert, at: Date.now(), notAfter: new Date(new X509Certificate(cert.certPem).validTo).getTime() });
      } catch (err) {
        this.signErrors.push(`${new Date().toISOString()} ${(err as Error).message}`);
      }
      const now = new Date();
      for (const ns of this.namespaces) {
        const bundle = await this.istiod.rootCertConfigMap(ns).catch(() => undefined);
        if (bundle === undefined) continue;
        for (const [i, s] of this.signed.entries()) {
          if (s.notAfter <= now.getTime() + 1_000) continue; // expired (or about to): no longer in use
          this.checks++;
          const why = untrustedBy(s.cert, bundle, now);
          if (why) this.violations.push(`${now.toISOString()} workload certificate #${i} (signed ${new Date(s.at).toISOString()}) vs ${ns}/istio-ca-root-cert: ${why}`);
        }
      }
      await new Promise((r) => setTimeout(r, 400));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.done;
  }
}

describeWithControlPlane("root rotation with the real istiod", () => {
  let cp: ControlPlaneWithNodes;
  let kc: KubeConfig;
  let c: Clients;
  let istiod: Istiod | undefined;
  let issuer: ReferenceIssuer | undefined;
  let agent: AgentProcess | undefined;

  beforeAll(async () => {
    cp = await startControlPlaneWithNodes({ nodes: 1 });
    kc = loadKubeConfig(cp.kubeconfigPath);
    c = clients(kc);
    for (const name of [MESH, ISTIO, APPS]) await c.core.createNamespace({ body: { metadata: { name } } });
  });
  afterAll(async () => {
    await agent?.stop();
    await issuer?.stop();
    await istiod?.stop();
    await cp?.stop();
  });

  const startAgent = (extra: string[] = []) => {
    agent = spawnAgent(cp.kubeconfigPath, ["--namespace", MESH, "--resync-period", "5s", "--root-overlap", `${OVERLAP_S}s`, ...extra]);
  };
  const killAgent = async () => {
    await agent!.stop("SIGKILL");
  };
  const target = async () => (await getSecretOrUndefined(c, ISTIO, "cacerts"))!;
  const rotationOf = async (): Promise<RootRotation | undefined> => readRootRotation((await target()).metadata?.annotations);
  const rootsOf = async () => rootFingerprints(decodeSecret(await target())[ROOT_CERT]!);
  const signingSecret = async (name: string, root: RootCa) => c.core.createNamespacedSecret({ namespace: MESH, body: {
    metadata: { name }, data: { "root-cert.pem": Buffer.from(root.certPem).toString("base64"), "key.pem": Buffer.from(root.keyPem).toString("base64") } } });
  const signWith = async (secret: string, o: { directive?: boolean } = {}) => {
    const ic = (await c.issued.get(MESH, IC))!;
    ic.spec!.glooMeshCa = { signingCertificateSecret: { name: secret, namespace: MESH } };
    if (o.directive === false) delete ic.spec!.podBounceDirective;
    await c.issued.replace(ic);
    return ic.metadata.generation! + 1;
  };
  const finishedAt = (generation: number) => waitFor(`generation ${generation} FINISHED`, async () => {
    const ic = await c.issued.get(MESH, IC);
    return ic?.status?.state === "FINISHED" && ic.status.observedGeneration === generation ? ic : undefined;
  }, 240_000, 200);
  /** Every istio-ca-root-cert ConfigMap holds exactly these roots. */
  const everyConfigMapHolds = async (shas: string[]) => {
    const maps = await istiod!.rootCertConfigMaps();
    const all = [...maps.values()];
    return all.length > 0 && all.every((pem) => pem !== undefined && JSON.stringify(rootFingerprints(pem).sort()) === JSON.stringify([...shas].sort()));
  };

  it("accept: old + new roots, then the new intermediate, then the new root alone; every workload certificate stays trusted throughout; the agent is killed in each step", async () => {
    const oldRoot = await createSigningSecret(c, MESH);
    const apps = kc.makeApiClient(AppsV1Api);
    await apps.createNamespacedDeployment({ namespace: APPS, body: deployment("app", 1) });
    await waitFor("the app pod", async () => (await readyPods(c.core, APPS, "app")).length === 1 || undefined, 60_000);
    await new CustomResourceClient<PodBounceDirective>(kc, POD_BOUNCE_DIRECTIVE).create(MESH, podBounceDirective("mesh", MESH, [{ namespace: APPS, labels: { app: "app" }, waitForReplicas: 1 }]));
    issuer = await startIssuer(kc, MESH);
    startAgent();
    await c.issued.create(MESH, newIssuedCertificate(MESH, IC, { target: { name: "cacerts", namespace: ISTIO }, podBounceDirective: { name: "mesh", namespace: MESH },
      annotations: { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" } }));
    await waitForState(c, MESH, IC, "FINISHED", 180_000);

    istiod = await startIstiod({ kubeconfigPath: cp.kubeconfigPath, kc, waitForCacerts: true });
    const [oldSha] = rootFingerprints(oldRoot.certPem);
    await waitFor("istiod to publish the old root everywhere", () => everyConfigMapHolds([oldSha!]), 60_000, 200);
    const poller = new TrustPoller(istiod, [ISTIO, APPS, MESH]);
    await waitFor("a workload certificate from istiod", async () => poller.signed.length > 0 || undefined, 60_000);

    const newRoot = await createRootCa({ commonName: "cert-agent test root 2", spec: { algorithm: "ECDSA", curve: "P-256" } });
    const [newSha] = rootFingerprints(newRoot.certPem);
    await signingSecret("root-ca-2", newRoot);
    const t0 = Date.now();
    const generation = await signWith("root-ca-2");

    // Step 1 written: both roots, the old intermediate. Kill the agent: istiod propagates without it.
    await waitFor("step 1", async () => (await rotationOf())?.phase === "trust" || undefined, 120_000, 100);
    const tStep1 = Date.now();
    expect(await rootsOf()).toEqual([oldSha, newSha]);
    await killAgent();
    await waitFor("istiod to publish both roots everywhere", () => everyConfigMapHolds([oldSha!, newSha!]), 60_000, 100);
    const tPropagated = Date.now();
    startAgent();

    // Step 2: the new intermediate with both roots. Kill the agent again right after.
    await waitFor("step 2", async () => (await rotationOf())?.phase === "overlap" || undefined, 120_000, 100);
    const tStep2 = Date.now();
    expect(await rootsOf()).toEqual([oldSha, newSha]);
    await killAgent();
    startAgent();
    await finishedAt(generation);
    const tFinished = Date.now();
    // istiod reloads the new intermediate by itself: the first workload certificate signed by it.
    const newCa = new X509Certificate(decodeSecret(await target())["ca-cert.pem"]!);
    // (By signature: every intermediate has the same empty subject, as Gloo Mesh's do, so names tell nothing.)
    const firstNew = await waitFor("a workload certificate from the new intermediate", async () =>
      poller.signed.find((s) => new X509Certificate(s.cert.certPem).verify(newCa.publicKey)), 60_000, 100);

    // Step 3 after the overlap: the new root alone, everywhere. Kill the agent once more afterwards.
    await waitFor("step 3", async () => ((await rotationOf()) === undefined && (await rootsOf()).length === 1) || undefined, (OVERLAP_S + 60) * 1000, 200);
    const tStep3 = Date.now();
    expect(await rootsOf()).toEqual([newSha]);
    await killAgent();
    startAgent();
    await waitFor("istiod to publish the new root alone everywhere", () => everyConfigMapHolds([newSha!]), 60_000, 100);
    // Let the poller check a few more rounds with the new root alone, then stop it.
    const checked = poller.checks;
    await waitFor("more trust checks", async () => poller.checks > checked + 20 || undefined, 60_000, 200);
    await poller.stop();

    console.log([
      `root rotation with istiod (${poller.signed.length} workload certificates, ${poller.checks} trust checks):`,
      `  spec change -> step 1 written       ${tStep1 - t0} ms`,
      `  step 1 -> both roots in every ConfigMap ${tPropagated - tStep1} ms (istiod reload + projection; the agent was down)`,
      `  propagated -> step 2 written        ${tStep2 - tPropagated} ms (includes the agent's restart)`,
      `  step 2 -> FINISHED (bounce)         ${tFinished - tStep2} ms`,
      `  step 2 -> first workload certificate from the new intermediate ${firstNew.at - tStep2} ms (istiod reload delay, projection included)`,
      `  step 2 -> step 3                     ${tStep3 - tStep2} ms (--root-overlap ${OVERLAP_S}s)`,
    ].join("\n"));
    expect(poller.violations).toEqual([]);
    expect(poller.signErrors).toEqual([]);
    expect(poller.signed.some((s) => s.at < tStep1)).toBe(true);
    expect(poller.signed.some((s) => s.at > tStep1 && s.at < tStep2)).toBe(true);
    expect(poller.signed.some((s) => s.at > tStep3)).toBe(true);

    // Cross-check with openssl: the intermediate that signed the last workload certificate, against
    // istio-system's bundle now. (openssl cannot verify the leaf itself: its subject and its issuer, the
    // intermediate's subject, are both empty, so it takes the leaf for self-signed; Node checked its signature above.)
    const last = poller.signed.at(-1)!.cert;
    const leaf = new X509Certificate(last.certPem);
    const signer = certsOf(last.intermediatesPem).find((i) => leaf.verify(i.publicKey))!;
    const bundle = (await istiod.rootCertConfigMap(ISTIO))!;
    expect(openssl(["verify", "-CAfile", "bundle.pem", "intermediate.pem"], { "bundle.pem": bundle, "intermediate.pem": signer.toString() })).toMatch(/intermediate\.pem: OK/);
    expect(signer.verify(new X509Certificate(newRoot.certPem).publicKey)).toBe(true);
    await waitForEvent(c, MESH, IC, "RootOverlapEnded", "Normal");
    const events = (await c.core.listNamespacedEvent({ namespace: MESH })).items.map((e) => `${e.type} ${e.reason}`);
    expect(events).toEqual(expect.arrayContaining(["Warning RootChanged", "Normal RootOverlapEnded"]));
  });

  it("require-approval: a new root waits, target untouched, across a kill; approving it starts the rotation (trust bundle read from every namespace: no directive)", async () => {
    await killAgent();
    startAgent(["--root-change-policy", "require-approval"]);
    const third = await createRootCa({ commonName: "cert-agent test root 3", spec: { algorithm: "ECDSA", curve: "P-256" } });
    const [thirdSha] = rootFingerprints(third.certPem);
    await signingSecret("root-ca-3", third);
    const before = (await target()).metadata!.resourceVersion;
    const generation = await signWith("root-ca-3", { directive: false });
    const waiting = await waitFor("the approval wait in status", async () => {
      const ic = await c.issued.get(MESH, IC);
      return ic?.status?.error?.includes(`new root (sha256 ${thirdSha}) that is not approved`) ? ic : undefined;
    }, 120_000, 200);
    expect(waiting.status!.state).toBe("REQUESTED");
    // Events are written after the status and not awaited: wait for this one before the kill, or the kill can
    // land between the two (the restarted agent does not repeat the Warning, which is what is checked below).
    const notApproved = async () => (await c.core.listNamespacedEvent({ namespace: MESH })).items.filter((e) => e.reason === "RootChangeNotApproved");
    await waitFor("the RootChangeNotApproved Warning", async () => (await notApproved()).length > 0 || undefined, 30_000, 100);
    await killAgent();
    startAgent(["--root-change-policy", "require-approval", "--log-level", "debug"]);
    // The restarted agent looks again (its debug line names the decision) and still writes nothing; the Warning is not repeated.
    await waitFor("the restarted agent's pass", async () => /"action":"awaitRoot"/.test(agent!.output()) || undefined, 60_000, 200);
    expect((await target()).metadata!.resourceVersion).toBe(before);
    expect((await notApproved()).map((e) => e.type)).toEqual(["Warning"]);

    await c.issued.patchAnnotations(MESH, IC, { [APPROVED_ROOTS_ANNOTATION]: thirdSha! });
    await waitFor("step 1 after the approval", async () => (await rotationOf())?.phase === "trust" || undefined, 120_000, 100);
    await waitFor("istiod to publish both roots everywhere", async () => (await everyConfigMapHolds([rootFingerprints(decodeSecret(await target())[ROOT_CERT]!)[0]!, thirdSha!])) || undefined, 60_000, 100);
    await finishedAt(generation);
    expect((await rotationOf())?.phase).toBe("overlap");
    expect(ROOT_ROTATION_ANNOTATION in ((await target()).metadata!.annotations ?? {})).toBe(true);
  });
});
