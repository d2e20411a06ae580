#!/usr/bin/env node
// Floor (a) of the throughput benchmark, as its own process like the agent: the API writes the
// workflow needs per certificate, done by a plain client-node loop with the agent's concurrency against
// the same API server, the reference issuer answering, and no crypto (one key and CSR made at start-up
// serve every certificate; nothing is verified). Per IssuedCertificate, woken by watches only (no
// reads: a plain loop knows what it wrote):
//   on the IssuedCertificate's ADDED event: 1 status PENDING, 2 create the staged-key Secret,
//     3 create the CertificateRequest, 4 status REQUESTED;
//   on the issuer's FINISHED answer (CertificateRequest watch): 5 create the target Secret,
//     6 status ISSUED, 7 delete the staged-key Secret, 8 status FINISHED.
// Usage: node dist/e2e/bench/floor-client.js --kubeconfig F --namespace NS --key ECDSA-P256|RSA-4096|...
//          --concurrency C --count N   (exits after N certificates are FINISHED)
import { CoreV1Api, KubeConfig, Watch } from "@kubernetes/client-node";
import { parseArgs } from "node:util";
import { decodeBytes, encodeBytes, ISTIOD_SPIFFE_ID } from "../../shared/api/builders";
import { API_VERSION, CERTIFICATE_REQUEST, CertificateRequest, ISSUED_CERTIFICATE, IssuedCertificate, IssuedCertificateState } from "../../shared/api/types";
import { CustomResourceClient } from "../../shared/kube/custom-objects";
import { buildCertChain, buildCsr, exportPrivateKeyPem, generateKeyPair } from "../../shared/pki";
import { parseKeySpecName } from "./stats";

interface Work {
  name: string;
  phase: 1 | 2;
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: {
    kubeconfig: { type: "string" }, namespace: { type: "string" }, key: { type: "string" }, concurrency: { type: "string" }, count: { type: "string" },
  }, strict: true });
  const namespace = values.namespace!;
  const concurrency = Number(values.concurrency ?? 4);
  const count = Number(values.count);
  const kc = new KubeConfig();
  kc.loadFromFile(values.kubeconfig!);
  const core = kc.makeApiClient(CoreV1Api);
  const issued = new CustomResourceClient<IssuedCertificate>(kc, ISSUED_CERTIFICATE);
  const requests = new CustomResourceClient<CertificateRequest>(kc, CERTIFICATE_REQUEST);

  // Off the clock: the one key and CSR every certificate reuses.
  const keys = await generateKeyPair(parseKeySpecName(values.key!));
  const keyPem = await exportPrivateKeyPem(keys.privateKey);
  const csrPem = await buildCsr({ keys, org: "cluster.local", hosts: [ISTIOD_SPIFFE_ID] });

  const latest = new Map<string, IssuedCertificate>();
  const requested = new Set<string>();
  const answered = new Map<string, CertificateRequest>();
  const started = new Set<string>();
  const queue: Work[] = [];
  let finished = 0;
  const idle = new Set<() => void>();
  const enqueue = (w: Work) => {
    queue.push(w);
    for (const resume of idle) resume();
    idle.clear();
  };

  const status = async (name: string, state: IssuedCertificateState) => {
    const ic = latest.get(name)!;
    latest.set(name, await issued.replaceStatus({ ...ic, status: { observedGeneration: ic.metadata.generation ?? 0, state, error: "" } }));
  };
  const phase1 = async (name: string) => {
    await status(name, "PENDING");
    await core.createNamespacedSecret({ namespace, body: { metadata: { name, namespace }, type: "Opaque", data: { "ca-key.pem": encodeBytes(keyPem) } } });
    await requests.create(namespace, { apiVersion: API_VERSION, kind: CERTIFICATE_REQUEST.kind, metadata: { name, namespace },
      spec: { certificateSigningRequest: encodeBytes(csrPem) } });
    await status(name, "REQUESTED");
    requested.add(name);
    if (answered.has(name)) enqueue({ name, phase: 2 });
  };
  const phase2 = async (name: string) => {
    const cr = answered.get(name)!;
    const certPem = decodeBytes(cr.status!.signedCertificate)!;
    const rootPem = decodeBytes(cr.status!.signingRootCa)!;
    const target = latest.get(name)!.spec!.issuedCertificateSecret!;
    await core.createNamespacedSecret({ namespace: target.namespace || namespace, body: { metadata: { name: target.name, namespace: target.namespace || namespace }, type: "Opaque", data: {
      "ca-cert.pem": encodeBytes(certPem), "ca-key.pem": encodeBytes(keyPem), "cert-chain.pem": encodeBytes(buildCertChain(certPem, rootPem)), "root-cert.pem": encodeBytes(rootPem),
    } } });
    await status(name, "ISSUED");
    await core.deleteNamespacedSecret({ name, namespace });
    await status(name, "FINISHED");
    finished += 1;
  };

  const icList = await issued.list(namespace);
  const crList = await requests.list(namespace);
  const onIssued = (ic: IssuedCertificate) => {
    const name = ic.metadata.name!;
    if (started.has(name) || ic.status?.state) return;
    started.add(name);
    latest.set(name, ic);
    enqueue({ name, phase: 1 });
  };
  const onRequest = (cr: CertificateRequest) => {
    const name = cr.metadata.name!;
    if (answered.has(name) || cr.status?.state !== "FINISHED" || cr.status.observedGeneration !== cr.metadata.generation) return;
    answered.set(name, cr);
    if (requested.has(name)) enqueue({ name, phase: 2 });
  };
  icList.items.forEach(onIssued);
  const watches = [
    await new Watch(kc).watch(issued.watchPath(namespace), { resourceVersion: icList.metadata?.resourceVersion }, (_t, o) => onIssued(o as IssuedCertificate), () => {}),
    await new Watch(kc).watch(requests.watchPath(namespace), { resourceVersion: crList.metadata?.resourceVersion }, (_t, o) => onRequest(o as CertificateRequest), () => {}),
  ];
  process.stdout.write(`${JSON.stringify({ message: "floor client ready" })}\n`);

  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (finished < count) {
      const w = queue.shift();
      if (!w) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 200);
          idle.add(() => {
            clearTimeout(timer);
            resolve();
          });
        });
        continue;
      }
      await (w.phase === 1 ? phase1(w.name) : phase2(w.name));
    }
  }));
  for (const w of watches) w.abort();
  process.stdout.write(`${JSON.stringify({ message: "floor done", finished })}\n`);
  return 0;
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`floor-client: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
