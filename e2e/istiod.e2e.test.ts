// A real istiod (e2e/istiod/) with the real agent (dist/agent/main.js as a process; `npm run build`
// first) and the reference issuer, on a control plane of this suite's own: istiod writes
// istio-ca-root-cert into every namespace, which would disturb the suites sharing the default one, and
// the pod bouncer needs KWOK nodes. One scenario, in order (each test builds on the one before):
//   1. first install: istiod runs with its self-signed CA (no cacerts yet); the agent writes cacerts and
//      the bouncer restarts the istiod Deployment, whose restart the test carries out on the real istiod
//      (as the kubelet would start the new pod's container); the gateway is restarted only once the
//      real istiod has published our root in istio-ca-root-cert;
//   2. istiod signs with our intermediate: its metrics, its log and every istio-ca-root-cert agree;
//   3. a workload certificate from istiod's CA service is signed by our intermediate (and what
//      `openssl verify` makes of it);
//   4. a renewal under the same root: istiod (same process) reloads the new intermediate by itself.
import { AppsV1Api, KubeConfig } from "@kubernetes/client-node";
import { execFileSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KEY_ALGORITHM_ANNOTATION } from "../agent/constants";
import { podBounceDirective } from "../shared/api/builders";
import { type IssuedCertificate, type PodBounceDirective, POD_BOUNCE_DIRECTIVE } from "../shared/api/types";
import { CustomResourceClient } from "../shared/kube/custom-objects";
import { describeCertificate } from "../shared/pki";
import { ComponentExitedError } from "./controlplane/controlplane";
import { type ControlPlaneWithNodes, startControlPlaneWithNodes } from "./controlplane/nodes";
import { describeWithControlPlane, eventually } from "./controlplane/testenv";
import {
  type AgentProcess,
  type Clients,
  clients,
  createNamespace,
  createSigningSecret,
  decodeSecret,
  getSecretOrUndefined,
  loadKubeConfig,
  newIssuedCertificate,
  openssl,
  opensslCheckBundle,
  type RootCa,
  spawnAgent,
  startIssuer,
} from "./harness";
import { type Istiod, ISTIO_NAMESPACE, LOG, startIstiod } from "./istiod/istiod";
import type { ReferenceIssuer } from "./issuer/issuer";
import { deployment, readyPods } from "./workloads";

jest.setTimeout(240_000);

const TARGET = { name: "cacerts", namespace: ISTIO_NAMESPACE };
const IC_NAME = "istiod";
const DIRECTIVE = "istio";
/** The projector's delay (the kubelet's sync period, scaled down): part of every reload delay measured. */
const PROJECTION_DELAY_MS = 2000;

/** A bounce line of the agent's JSON log (message "bounce"). */
interface BounceLine {
  time: string;
  reason: string;
  detail: string;
}

function bounceLines(agent: AgentProcess): BounceLine[] {
  const lines: BounceLine[] = [];
  for (const line of agent.output().split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      const l = JSON.parse(line) as { message?: string; reason?: string; detail?: string; timestamp?: string };
      if (l.message === "bounce") lines.push({ time: String(l.timestamp ?? ""), reason: String(l.reason), detail: String(l.detail) });
    } catch {
      // not a log record
    }
  }
  return lines;
}

/**
 * openssl's verdict on whether issuerPem's key made certPem's signature ("Verified OK" or "Verification
 * failure"): `openssl dgst -verify` over the TBSCertificate with the signature value, both cut out of the
 * DER where `openssl asn1parse` says they are. Unlike `openssl verify`, no chain building is involved.
 */
function opensslSignatureCheck(certPem: string, issuerPem: string): string {
  const dir = mkdtempSync(join(tmpdir(), "cert-agent-sigcheck-"));
  try {
    const run = (args: string[]): string => execFileSync("openssl", args, { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    writeFileSync(join(dir, "cert.pem"), certPem);
    writeFileSync(join(dir, "issuer.pem"), issuerPem);
    run(["x509", "-in", "issuer.pem", "-pubkey", "-noout", "-out", "pub.pem"]);
    run(["x509", "-in", "cert.pem", "-outform", "DER", "-out", "cert.der"]);
    const der = readFileSync(join(dir, "cert.der"));
    // The Certificate SEQUENCE's three children, at depth 1: TBSCertificate, AlgorithmIdentifier, BIT STRING.
    const children = run(["asn1parse", "-inform", "DER", "-in", "cert.der"]).split("\n")
      .map((l) => /^\s*(\d+):d=1\s+hl=(\d+)\s+l=\s*(\d+)/.exec(l)).filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ offset: Number(m[1]), hl: Number(m[2]), l: Number(m[3]) }));
    const [tbs, , sig] = children;
    if (!tbs || !sig) throw new Error("not a certificate");
    writeFileSync(join(dir, "tbs.der"), der.subarray(tbs.offset, tbs.offset + tbs.hl + tbs.l));
    writeFileSync(join(dir, "sig.bin"), der.subarray(sig.offset + sig.hl + 1, sig.offset + sig.hl + sig.l)); // after the unused-bits octet
    const algorithm = /Signature Algorithm: (\S+)/.exec(run(["x509", "-in", "cert.pem", "-noout", "-text"]))![1]!;
    const digest = /sha384/i.test(algorithm) ? "-sha384" : /sha512/i.test(algorithm) ? "-sha512" : "-sha256";
    try {
      return run(["dgst", digest, "-verify", "pub.pem", "-signature", "sig.bin", "tbs.der"]).trim();
    } catch (e) {
      return String((e as { stdout?: string }).stdout ?? "").trim() || String(e);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Go's %x of a serial number: lower-case hex without leading zeros. */
const goHex = (serial: string): string => serial.toLowerCase().replace(/^0+(?=.)/, "");

describeWithControlPlane("a real istiod with the agent's CA", () => {
  let cp: ControlPlaneWithNodes;
  let kc: KubeConfig;
  let c: Clients;
  let apps: AppsV1Api;
  let mesh: string;
  let root: RootCa;
  let issuer: ReferenceIssuer | undefined;
  let agent: AgentProcess | undefined;
  let istiod: Istiod | undefined;
  /** Fails a wait at once when a control-plane component, istiod or the agent has exited. */
  const watched = {
    get failure(): ComponentExitedError | undefined {
      const child = agent?.child;
      const agentExit = child && (child.exitCode !== null || child.signalCode !== null)
        ? new ComponentExitedError("cert-agent", { code: child.exitCode, signal: child.signalCode, status: `exited (${child.exitCode ?? child.signalCode})` },
          "(its output)", agent!.output().trimEnd().split("\n").slice(-20).join("\n"))
        : undefined;
      return cp?.failure ?? istiod?.failure ?? agentExit;
    },
  };
  const waitUntil = <T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> =>
    eventually(what, fn, { timeoutMs, controlPlane: watched });

  const cacerts = async (): Promise<Record<string, string>> => decodeSecret((await getSecretOrUndefined(c, TARGET.namespace, TARGET.name))!);
  const issued = async (): Promise<IssuedCertificate> => (await c.issued.get(mesh, IC_NAME))!;
  const finished = (generation: number) => waitUntil(`IssuedCertificate ${IC_NAME} FINISHED for generation ${generation}`, async () => {
    const ic = await issued();
    if (ic.status?.state === "FAILED") throw new Error(`FAILED: ${ic.status.error}`);
    return ic.status?.state === "FINISHED" && ic.status.observedGeneration === generation && ic.metadata.generation === generation ? ic : undefined;
  });

  beforeAll(async () => {
    cp = await startControlPlaneWithNodes({ nodes: 2 });
    kc = loadKubeConfig(cp.kubeconfigPath);
    c = clients(kc);
    apps = kc.makeApiClient(AppsV1Api);
    mesh = await createNamespace(c, "mesh");
    root = await createSigningSecret(c, mesh);
    // istiod first, before any cacerts: it starts with a self-signed CA, as on a cluster where the
    // Secret does not exist yet (its volume is optional).
    istiod = await startIstiod({ kubeconfigPath: cp.kubeconfigPath, kc, projectionDelayMs: PROJECTION_DELAY_MS });
    // The istiod and gateway Deployments the bouncer restarts are KWOK pods; the real istiod above is
    // restarted by the test when the bouncer restarts its Deployment.
    for (const [name, replicas] of [["istiod", 1], ["gateway", 1]] as const) {
      await apps.createNamespacedDeployment({ namespace: ISTIO_NAMESPACE, body: deployment(name, replicas) });
    }
    for (const name of ["istiod", "gateway"]) {
      await waitUntil(`${name} pods Ready`, async () => (await readyPods(c.core, ISTIO_NAMESPACE, name)).length === 1 || undefined, 60_000);
    }
    await new CustomResourceClient<PodBounceDirective>(kc, POD_BOUNCE_DIRECTIVE).create(mesh, podBounceDirective(DIRECTIVE, mesh, [
      { namespace: ISTIO_NAMESPACE, labels: { app: "istiod" }, waitForReplicas: 1 },
      {
        namespace: ISTIO_NAMESPACE,
        labels: { app: "gateway" },
        rootCertSync: {
          secretRef: TARGET,
          secretKey: "root-cert.pem",
          configMapRef: { name: "istio-ca-root-cert", namespace: ISTIO_NAMESPACE },
          configMapKey: "root-cert.pem",
        },
      },
    ]));
    issuer = await startIssuer(kc, mesh);
    agent = spawnAgent(cp.kubeconfigPath, ["--namespace", mesh, "--bounce-strategy", "rollout", "--log-level", "debug"]);
  });

  afterAll(async () => {
    await agent?.stop();
    await issuer?.stop();
    await istiod?.stop();
    await cp?.stop();
  });

  it("first install: the bouncer restarts istiod, and restarts the gateway only once the real istiod has published our root", async () => {
    expect(istiod!.logLines().map((l) => l.message)).toContain(LOG.selfSignedCa);
    const selfSignedRoot = await waitUntil("istiod's self-signed root in istio-system/istio-ca-root-cert", () => istiod!.rootCertConfigMap(ISTIO_NAMESPACE));
    expect(selfSignedRoot).not.toBe(root.certPem);

    await c.issued.create(mesh, newIssuedCertificate(mesh, IC_NAME, {
      target: TARGET,
      ttlDays: 30,
      annotations: { [KEY_ALGORITHM_ANNOTATION]: "ECDSA-P256" },
      podBounceDirective: { name: DIRECTIVE, namespace: mesh },
    }));
    // The bouncer restarts the istiod Deployment; its new pod would start the new istiod container.
    await waitUntil("the bouncer to restart the istiod Deployment", async () =>
      bounceLines(agent!).some((l) => l.reason === "PodsRestarted" && l.detail.includes("app=istiod")) || undefined);
    const data = await cacerts();
    expect(data["root-cert.pem"]).toBe(root.certPem);
    // Meanwhile the gateway must wait: the ConfigMap still holds the self-signed root.
    await waitUntil("the bouncer to wait for the real istiod's ConfigMap", async () =>
      bounceLines(agent!).some((l) => l.reason === "BounceWaiting" && l.detail.includes("app=gateway") && l.detail.includes("to hold the new root")) || undefined);
    expect(await istiod!.rootCertConfigMap(ISTIO_NAMESPACE)).toBe(selfSignedRoot);
    expect(bounceLines(agent!).some((l) => l.reason === "PodsRestarted" && l.detail.includes("app=gateway"))).toBe(false);

    const pidBefore = istiod!.pid();
    const restartedAt = Date.now();
    await istiod!.restart();
    expect(istiod!.pid()).not.toBe(pidBefore);
    expect(istiod!.logLines().map((l) => l.message)).toContain(LOG.pluggedCa);
    const published = await waitUntil("the real istiod to publish our root in istio-system", async () =>
      (await istiod!.rootCertConfigMap(ISTIO_NAMESPACE)) === root.certPem ? Date.now() : undefined);
    console.log(`[figure] istiod restarted with the plugged-in CA: ready and our root in istio-ca-root-cert ${published - restartedAt} ms after the restart began`);

    await finished(1);
    const restarts = bounceLines(agent!).filter((l) => l.reason === "PodsRestarted").map((l) => (l.detail.includes("app=istiod") ? "istiod" : "gateway"));
    expect(restarts).toEqual(["istiod", "gateway"]);
    // The gateway went after istiod's ConfigMap held our root, never before.
    const gatewayRestart = bounceLines(agent!).find((l) => l.reason === "PodsRestarted" && l.detail.includes("app=gateway"))!;
    expect(Date.parse(gatewayRestart.time)).toBeGreaterThanOrEqual(restartedAt);
  });

  it("istiod signs with our intermediate: its CA metrics, its log and every istio-ca-root-cert match cacerts", async () => {
    const data = await cacerts();
    expect(opensslCheckBundle(data)).toEqual({ verify: "ca-cert.pem: OK", keyMatches: true });
    const ours = await describeCertificate(data["ca-cert.pem"]!);
    const ourRoot = await describeCertificate(data["root-cert.pem"]!);

    const metrics = await waitUntil("istiod's CA metrics to name our certificates", async () => {
      const m = await istiod!.caMetrics();
      return m.certChainExpiry?.getTime() === ours.notAfter.getTime() ? m : undefined;
    }, 30_000);
    expect(metrics.rootCertExpiry?.getTime()).toBe(ourRoot.notAfter.getTime());

    // istiod logs the chain of its own serving certificate, which it issues under our intermediate.
    const serials = istiod!.logLines().map((l) => /x509 cert - Issuer: .*SN: ([0-9a-f]+),/.exec(l.message)?.[1]).filter((s): s is string => s !== undefined);
    expect(serials).toContain(goHex(ours.serialNumber));
    expect(serials).toContain(goHex(ourRoot.serialNumber));

    // One istio-ca-root-cert per namespace (but the few istiod ignores), each our root byte for byte.
    const ns = await createNamespace(c, "late"); // created now: istiod must notice new namespaces too
    const expected = await istiod!.namespacesForRootCert();
    expect(expected).toContain(ns);
    const maps = await waitUntil("istio-ca-root-cert in every namespace, holding our root", async () => {
      const found = await istiod!.rootCertConfigMaps();
      return expected.every((n) => found.get(n) === data["root-cert.pem"]) ? found : undefined;
    }, 60_000);
    for (const [namespace, pem] of maps) expect({ namespace, same: pem === root.certPem }).toEqual({ namespace, same: true });
    console.log(`[figure] istiod: ${maps.size} istio-ca-root-cert ConfigMaps, all = root-cert.pem; metrics: cert chain expiry ${metrics.certChainExpiry!.toISOString()}, root ${metrics.rootCertExpiry!.toISOString()}`);
  });

  it("a workload certificate from istiod's CA service is signed by our intermediate, which our root signed", async () => {
    const data = await cacerts();
    const ns = await createNamespace(c, "workload");
    const cert = await istiod!.signWorkloadCertificate({ namespace: ns, serviceAccount: "web" });
    // istiod's answer: the leaf, its cert-chain.pem (our ca-cert.pem, then the root), its root-cert.pem.
    expect(cert.certChain.slice(1)).toEqual([data["ca-cert.pem"], data["root-cert.pem"], data["root-cert.pem"]].map((p) => p!.trimEnd() + "\n"));
    expect(cert.rootPem).toBe(data["root-cert.pem"]);
    expect(cert.intermediatesPem).toBe(data["ca-cert.pem"]!.trimEnd() + "\n");
    const leaf = new X509Certificate(cert.certPem);
    expect(leaf.subjectAltName).toBe(`URI:spiffe://cluster.local/ns/${ns}/sa/web`);
    // The signatures, checked by openssl one link at a time: leaf by our ca-cert.pem, ca-cert.pem by our root.
    expect(opensslSignatureCheck(cert.certPem, data["ca-cert.pem"]!)).toBe("Verified OK");
    expect(opensslSignatureCheck(data["ca-cert.pem"]!, data["root-cert.pem"]!)).toBe("Verified OK");
    expect(opensslSignatureCheck(cert.certPem, data["root-cert.pem"]!)).toBe("Verification failure");
    expect(leaf.verify(new X509Certificate(data["ca-cert.pem"]!).publicKey)).toBe(true);
    // `openssl verify` with the chain istiod returned refuses the leaf as self-signed: our intermediate's
    // subject is empty (as Gloo Mesh issues it), so the leaf's issuer is empty like its subject, and Go
    // leaves out the authorityKeyIdentifier when the two names are equal (crypto/x509 takes that for
    // self-signed). OpenSSL then never looks at the chain. Recorded here so a change shows up.
    const summary = await describeCertificate(cert.certPem);
    expect([summary.subject, summary.issuer, (await describeCertificate(data["ca-cert.pem"]!)).subject]).toEqual(["", "", ""]);
    const files = { "leaf.pem": cert.certPem, "chain.pem": cert.intermediatesPem, "root.pem": data["root-cert.pem"]! };
    expect(openssl(["x509", "-in", "leaf.pem", "-noout", "-text"], files)).not.toMatch(/Authority Key Identifier/);
    expect(() => openssl(["verify", "-CAfile", "root.pem", "-untrusted", "chain.pem", "leaf.pem"], files))
      .toThrow(/error 18 at 0 depth lookup: self-signed certificate/);
  });

  it("a renewal under the same root: istiod reloads the new intermediate by itself, without a restart", async () => {
    const pid = istiod!.pid();
    const before = await cacerts();
    const projectionsBefore = istiod!.projections().length;
    // A spec change is a new issuance: a new key and certificate, same root.
    const ic = await issued();
    ic.spec!.certOptions = { ...ic.spec!.certOptions, ttlDays: 20 };
    await c.issued.replace(ic);
    const renewed = await waitUntil("the renewed cacerts", async () => {
      const d = await cacerts();
      return d["ca-cert.pem"] !== before["ca-cert.pem"] ? d : undefined;
    });
    expect(renewed["root-cert.pem"]).toBe(before["root-cert.pem"]);
    const ours = await describeCertificate(renewed["ca-cert.pem"]!);

    const projection = await waitUntil("the projector to swap in the renewed files", async () =>
      istiod!.projections().slice(projectionsBefore).find((p) => p.files["ca-cert.pem"] === renewed["ca-cert.pem"]));
    const reloadLine = await waitUntil("istiod to log the reload", async () =>
      istiod!.logLines().find((l) => l.message === LOG.intermediateReloaded && l.time.getTime() >= projection.projectedAt - 1000));
    const metricsAt = await waitUntil("istiod's metrics to show the renewed certificate", async () =>
      (await istiod!.caMetrics()).certChainExpiry?.getTime() === ours.notAfter.getTime() ? Date.now() : undefined, 30_000);
    expect(istiod!.pid()).toBe(pid);
    expect(istiod!.logLines().some((l) => l.message.startsWith(LOG.reloadFailed))).toBe(false);
    // The reload logs istiod's new serving chain, under the new intermediate.
    const serials = istiod!.logLines().filter((l) => l.time >= reloadLine.time)
      .map((l) => /x509 cert - Issuer: .*SN: ([0-9a-f]+),/.exec(l.message)?.[1]);
    expect(serials).toContain(goHex(ours.serialNumber));
    const logged = reloadLine.time.getTime();
    console.log(`[figure] istiod hot reload, same pid: cacerts change seen -> files swapped ${projection.projectedAt - projection.observedAt} ms ` +
      `(projection delay ${PROJECTION_DELAY_MS} ms) -> istiod logged the reload ${logged - projection.projectedAt} ms later; ` +
      `change seen -> reload logged ${logged - projection.observedAt} ms, -> new expiry in its metrics (polled) ${metricsAt - projection.observedAt} ms`);

    // The same root: the ConfigMaps keep it; the next workload certificate comes from the new intermediate.
    expect(await istiod!.rootCertConfigMap(ISTIO_NAMESPACE)).toBe(root.certPem);
    const cert = await istiod!.signWorkloadCertificate({ namespace: mesh, serviceAccount: "after-renewal" });
    expect(cert.intermediatesPem.trim()).toBe(renewed["ca-cert.pem"]!.trim());
    await finished(2);
  });
});
