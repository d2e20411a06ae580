#!/usr/bin/env node
// The reference issuer as a process: npm run issuer -- [--kubeconfig F] [--namespace NS] [--misbehave MODE]
import { KubeConfig } from "@kubernetes/client-node";
import { parseArgs } from "node:util";
import { createLogger } from "../../shared/controller/logger";
import { ReferenceIssuer } from "./issuer";
import { MISBEHAVIOURS, Misbehaviour } from "./sign";

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { kubeconfig: { type: "string" }, namespace: { type: "string" }, misbehave: { type: "string" } },
  });
  const misbehave = (values.misbehave ?? "none") as Misbehaviour;
  if (!MISBEHAVIOURS.includes(misbehave)) {
    process.stderr.write(`issuer: --misbehave must be one of ${MISBEHAVIOURS.join(", ")}\n`);
    return 2;
  }
  const kc = new KubeConfig();
  if (values.kubeconfig) kc.loadFromFile(values.kubeconfig);
  else kc.loadFromDefault();
  const log = createLogger("info");
  const issuer = new ReferenceIssuer({ kc, log, namespace: values.namespace, misbehave });
  await issuer.start();
  log.info("reference issuer started", { namespace: values.namespace ?? "(all)", misbehave });
  await new Promise<void>((resolve) => {
    process.once("SIGTERM", resolve);
    process.once("SIGINT", resolve);
  });
  await issuer.stop();
  return 0;
}

main().then((code) => process.exit(code), (err) => {
  process.stderr.write(`issuer: ${String(err)}\n`);
  process.exit(1);
});
