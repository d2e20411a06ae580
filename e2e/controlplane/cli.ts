// `npm run controlplane`: starts a local control plane for manual work, prints how to reach it, and
// keeps it running until SIGINT/SIGTERM, then stops every component and removes its data dir.
import { startControlPlane } from "./controlplane";

const USAGE = `usage: npm run controlplane
Starts etcd, kube-apiserver and kube-controller-manager on loopback ports with the cert-agent CRDs,
prints the kubeconfig to use, and runs until Ctrl-C (then stops everything and removes its data).
Environment: CERT_AGENT_NODES=3 adds kube-scheduler and KWOK with that many fake Nodes (Pods run);
CERT_AGENT_KEEP_DATA_DIR=1 keeps the data dir after stopping.`;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes("--help") || args.includes("-h")) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (args.length > 0) {
    process.stderr.write(`controlplane: unexpected argument ${JSON.stringify(args[0])}\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  const log = (m: string): void => void process.stderr.write(`[controlplane] ${m}\n`);
  // Our own handlers: the launcher's default signal handling kills components abruptly, while a
  // listener here makes it leave shutdown to us (a graceful stop() that also removes the data dir).
  let stopRequested: string | undefined;
  let wake: () => void = () => {};
  const onSignal = (sig: NodeJS.Signals): void => {
    stopRequested ??= sig;
    wake();
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);

  // CERT_AGENT_NODES=3: with fake Nodes (kube-scheduler + KWOK) where Pods run; see nodes.ts.
  const nodes = process.env.CERT_AGENT_NODES ? Number(process.env.CERT_AGENT_NODES) : undefined;
  const cp = await startControlPlane({ log, nodes, keepDataDir: process.env.CERT_AGENT_KEEP_DATA_DIR === "1" });
  // A component that exits on its own has been reported (with its log tail) through `log`; a control
  // plane missing a component is no use, so stop the rest and fail. Ctrl-C also reaches the components
  // directly (same process group): exits after a stop request are expected.
  cp.onComponentExit((failure) => {
    if (stopRequested !== undefined) return;
    stopRequested = `${failure.component} ${failure.status}`;
    process.exitCode = 1;
    wake();
  });
  process.stdout.write(
    `kubeconfig: ${cp.kubeconfigPath}\n` +
      `server: ${cp.server}\n` +
      `logs: ${cp.dataDir}/*.log\n` +
      `export KUBECONFIG=${cp.kubeconfigPath}\n`,
  );
  if (stopRequested === undefined) {
    log("running; press Ctrl-C to stop");
    await new Promise<void>((resolve) => (wake = resolve));
  }
  log(`${stopRequested}: stopping`);
  await cp.stop();
  log("stopped");
}

main().catch((e: unknown) => {
  process.stderr.write(`[controlplane] ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
