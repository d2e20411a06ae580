// Self-contained kubeconfig files (credentials embedded as *-data), so a test can copy or pass one
// around without also carrying the files it would otherwise point to.
import * as fs from "node:fs";
import { stringify } from "yaml";

export type KubeconfigUser = { clientCertPem: string; clientKeyPem: string } | { token: string };

const b64 = (s: string): string => Buffer.from(s, "utf8").toString("base64");

export function kubeconfigYaml(server: string, caPem: string, userName: string, user: KubeconfigUser): string {
  const cluster = "cert-agent-test";
  const context = `${userName}@${cluster}`;
  const credentials =
    "token" in user
      ? { token: user.token }
      : { "client-certificate-data": b64(user.clientCertPem), "client-key-data": b64(user.clientKeyPem) };
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: cluster, cluster: { server, "certificate-authority-data": b64(caPem) } }],
    users: [{ name: userName, user: credentials }],
    contexts: [{ name: context, context: { cluster, user: userName, namespace: "default" } }],
    "current-context": context,
  });
}

export function writeKubeconfig(file: string, ...args: Parameters<typeof kubeconfigYaml>): string {
  fs.writeFileSync(file, kubeconfigYaml(...args), { mode: 0o600 });
  return file;
}
