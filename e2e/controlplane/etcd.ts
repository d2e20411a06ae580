// etcd for one control plane: a single member listening on loopback only, and compaction through its
// v3 HTTP/JSON gateway (served on the client URL), so tests need no etcdctl.
import { requestJson } from "./http";

export function etcdArgs(dataDir: string, clientPort: number, peerPort: number): string[] {
  const client = `http://127.0.0.1:${clientPort}`;
  const peer = `http://127.0.0.1:${peerPort}`;
  return [
    "--name=cert-agent-test",
    `--data-dir=${dataDir}`,
    `--listen-client-urls=${client}`,
    `--advertise-client-urls=${client}`,
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=cert-agent-test=${peer}`,
    "--initial-cluster-state=new",
    // Throw-away data: skipping fsync makes every write (and so every API call) much cheaper,
    // exactly as envtest does.
    "--unsafe-no-fsync",
    // A single member elects itself after the election timeout; short ticks make that ~100 ms
    // sooner. There are no peers whose heartbeats could be missed.
    "--heartbeat-interval=10",
    "--election-timeout=100",
    "--log-level=warn",
  ];
}

interface PutResponse {
  header: { revision: string };
}

const b64 = (s: string): string => Buffer.from(s).toString("base64");

/** Compacts etcd's history up to its current revision; returns the compaction revision. Afterwards
 * a watch from any resourceVersion older than the newest one fails with 410 Gone.
 *
 * It first writes a marker key outside the API server's /registry prefix, and compacts at that
 * write's revision. Compacting at the newest API object's own revision R instead would leave R
 * watchable while R-1, its predecessor, is gone: a watch from R-1 then gets R's event without its
 * previous value, which kube-apiserver reports as a 500, not as the 410 a client handles. */
export async function compactToCurrent(clientUrl: string): Promise<number> {
  const put = await requestJson<PutResponse>(`${clientUrl}/v3/kv/put`, {
    body: { key: b64("cert-agent-test/compaction-marker"), value: b64(new Date().toISOString()) },
  });
  const revision = Number(put.header.revision);
  await requestJson(`${clientUrl}/v3/kv/compaction`, { body: { revision: String(revision), physical: true } });
  return revision;
}

export async function etcdHealthy(clientUrl: string): Promise<boolean> {
  const res = await requestJson<{ health?: string }>(`${clientUrl}/health`);
  return res.health === "true";
}
