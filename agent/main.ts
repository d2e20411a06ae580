#!/usr/bin/env node
// cert-agent: flags -> one validated config -> run until SIGTERM/SIGINT.
// `cert-agent status [flags]` is a read-only report for people and scripts (agent/status/).
import { createLogger } from "../shared/controller/logger";
import { startAgent } from "./agent";
import { ConfigError, parseConfig, usage } from "./config";
import { loadKubeConfig } from "./kubeconfig";
import { runStatus } from "./status/command";

const COMMANDS = "commands:\n  cert-agent status [flags]  the IssuedCertificates and their secrets, from the API server (cert-agent status --help)";

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  if (argv[0] === "status") return runStatus(argv.slice(1));
  let config;
  try {
    config = parseConfig(argv, process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`cert-agent: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (config === "help") {
    process.stdout.write(`${usage()}\n\n${COMMANDS}\n`);
    return 0;
  }
  const log = createLogger(config.logLevel);
  let kc;
  try {
    kc = loadKubeConfig(config.kubeconfig, { serviceAccountDir: config.serviceAccountDir });
  } catch (err) {
    process.stderr.write(`cert-agent: ${(err as Error).message}\n`);
    return 2;
  }
  const agent = await startAgent(config, kc, log);
  // Run until told to stop. The agent's own timers do not hold the process (tests run it in-process),
  // so without this, once every connection is closed (the API server refusing the token, or away for a
  // while) and only retry timers are left, Node would exit with code 0, in silence, mid-outage.
  const keepAlive = setInterval(() => undefined, 2 ** 30);
  await new Promise<void>((resolve) => {
    const shutdown = (signal: string) => {
      log.info("shutting down", { signal });
      resolve();
    };
    process.once("SIGTERM", () => shutdown("SIGTERM"));
    process.once("SIGINT", () => shutdown("SIGINT"));
  });
  clearInterval(keepAlive);
  await agent.stop();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`cert-agent: fatal: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
