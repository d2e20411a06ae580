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

interface RangeResponse {
  header: { revision: string };
}

const b64 = (s: string): string => Buffer.from(s).toString("base64");

/** Compacts etcd's history up to its current revision; returns that revision. Afterwards any watch
 * (that reaches etcd) from an older resourceVersion fails with 410 Gone. */
export async function compactToCurrent(clientUrl: string): Promise<number> {
  // Any range request returns the store's current revision in its header, even for a missing key.
  const range = await requestJson<RangeResponse>(`${clientUrl}/v3/kv/range`, {
    body: { key: b64("cert-agent-test/revision-probe") },
  });
  const revision = Number(range.header.revision);
  await requestJson(`${clientUrl}/v3/kv/compaction`, { body: { revision: String(revision), physical: true } });
  return revision;
}

export async function etcdHealthy(clientUrl: string): Promise<boolean> {
  const res = await requestJson<{ health?: string }>(`${clientUrl}/health`);
  return res.health === "true";
}
