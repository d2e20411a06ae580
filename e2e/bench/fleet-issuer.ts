#!/usr/bin/env node
// The management plane of the benchmark: one process running the reference issuer for every managed
// cluster it is given (one ReferenceIssuer per kubeconfig: the reference issuer works on one cluster, so
// serving several means one instance each, in one process, as a management plane would). Runs until
// SIGTERM/SIGINT; on SIGUSR2 it prints its memory after a full GC (run it with --expose-gc). Usage: node dist/e2e/bench/fleet-issuer.js --kubeconfig A [--kubeconfig B ...] [--namespace NS]
import { parseArgs } from "node:util";
import { createLogger } from "../../shared/controller/logger";
import { ReferenceIssuer } from "../issuer/issuer";
import { loadKubeConfig } from "../harness";

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { kubeconfig: { type: "string", multiple: true }, namespace: { type: "string" } }, strict: true });
  const kubeconfigs = values.kubeconfig ?? [];
  if (kubeconfigs.length === 0) {
    process.stderr.write("fleet-issuer: at least one --kubeconfig\n");
    return 2;
  }
  const log = createLogger("warn");
  const issuers = kubeconfigs.map((path) => new ReferenceIssuer({ kc: loadKubeConfig(path), log, namespace: values.namespace }));
  await Promise.all(issuers.map((i) => i.start()));
  process.stdout.write(`${JSON.stringify({ message: "issuers started", clusters: kubeconfigs.length })}\n`);
  // SIGUSR2: the memory held after a full GC (with --expose-gc), what each extra cluster adds.
  process.on("SIGUSR2", () => {
    (globalThis as { gc?: () => void }).gc?.();
    const m = process.memoryUsage();
    process.stdout.write(`${JSON.stringify({ message: "memory", rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers })}\n`);
  });
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  await Promise.all(issuers.map((i) => i.stop()));
  process.stdout.write(`${JSON.stringify({ message: "issuers stopped", signed: issuers.map((i) => i.signed.count) })}\n`);
  return 0;
}

main().then((code) => process.exit(code), (err: unknown) => {
  process.stderr.write(`fleet-issuer: ${String(err)}\n`);
  process.exit(1);
});
