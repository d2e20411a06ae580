#!/usr/bin/env node
// The reference issuer as a process: npm run issuer -- [--kubeconfig F] [--namespace NS] [--misbehave MODE] [--answer-delay D]
import { KubeConfig } from "@kubernetes/client-node";
import { parseArgs } from "node:util";
import { parseDuration } from "../../shared/controller/backoff";
import { createLogger } from "../../shared/controller/logger";
import { FAIL_ANNOTATION, MISBEHAVE_ANNOTATION, ReferenceIssuer } from "./issuer";
import { MISBEHAVIOURS, Misbehaviour } from "./sign";

const USAGE = `usage: npm run issuer -- [--kubeconfig FILE] [--namespace NS] [--misbehave MODE] [--answer-delay DURATION]

The reference issuer (the management-plane side, as Gloo Mesh's): signs each CertificateRequest with
the CA in its IssuedCertificate's signing secret and runs until SIGTERM/SIGINT. For tests and the demo.

  --kubeconfig FILE   the cluster to work on (default: KUBECONFIG, then ~/.kube/config, then in-cluster)
  --namespace NS      watch one namespace (default all)
  --misbehave MODE    answer every request wrongly on purpose: ${MISBEHAVIOURS.join(", ")} (default none)
  --answer-delay D    a slow issuer: answer each request only D (e.g. 90s, 10m, 1h) after marking it PENDING (default 0)
  -h, --help          this text

Per IssuedCertificate, the annotation ${MISBEHAVE_ANNOTATION}: MODE does the same, and
${FAIL_ANNOTATION}: MESSAGE makes it answer FAILED with MESSAGE.`;

class UsageError extends Error {}

interface IssuerArgs {
  kubeconfig?: string;
  namespace?: string;
  misbehave: Misbehaviour;
  answerDelayMs: number;
}

function parseIssuerArgs(argv: string[]): IssuerArgs | "help" {
  let values;
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        kubeconfig: { type: "string" },
        namespace: { type: "string" },
        misbehave: { type: "string" },
        "answer-delay": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
    }).values;
  } catch (err) {
    // node:util's messages are one clear sentence; drop its hint lines.
    throw new UsageError((err as Error).message.split("\n")[0]!);
  }
  if (values.help) return "help";
  const misbehave = (values.misbehave ?? "none") as Misbehaviour;
  if (!MISBEHAVIOURS.includes(misbehave)) throw new UsageError(`--misbehave must be one of ${MISBEHAVIOURS.join(", ")}`);
  let answerDelayMs: number;
  try {
    answerDelayMs = parseDuration(values["answer-delay"] ?? "0");
  } catch (err) {
    throw new UsageError(`--answer-delay: ${(err as Error).message}`);
  }
  return { kubeconfig: values.kubeconfig, namespace: values.namespace, misbehave, answerDelayMs };
}

async function main(): Promise<number> {
  let args: IssuerArgs | "help";
  try {
    args = parseIssuerArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`issuer: ${err.message}\n`);
    return 2;
  }
  if (args === "help") {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { kubeconfig, namespace, misbehave, answerDelayMs } = args;
  const kc = new KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else kc.loadFromDefault();
  const log = createLogger("info");
  const issuer = new ReferenceIssuer({ kc, log, namespace, misbehave, answerDelayMs });
  await issuer.start();
  log.info("reference issuer started", { namespace: namespace ?? "(all)", misbehave, answerDelayMs });
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
