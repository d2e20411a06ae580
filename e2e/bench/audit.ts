// Counting and timing API requests from kube-apiserver's audit log. apiserver_request_total has no
// user or user-agent label (verb, group, version, resource, subresource, scope, component, code), so it
// cannot tell the agent's requests from the issuer's or the benchmark's; the audit log can: each
// benchmark client runs as its own user. One event per request at stage ResponseComplete (watches also
// log ResponseStarted when they open: a watch is counted once, when it is established), with the API
// server's microsecond timestamps, which also give the server's time per request.
import { closeSync, existsSync, openSync, readSync, statSync, writeFileSync } from "node:fs";

/** Users whose requests are machinery (the control plane itself), never logged. */
const SYSTEM_USERS = ["system:kube-controller-manager", "system:apiserver", "system:kube-scheduler", "system:kube-proxy"];

/** One request at Metadata level, RequestReceived omitted: ResponseStarted (watches) and ResponseComplete. */
export function auditPolicy(): string {
  return [
    "apiVersion: audit.k8s.io/v1",
    "kind: Policy",
    "omitStages: [RequestReceived]",
    "rules:",
    `  - level: None`,
    `    users: [${SYSTEM_USERS.map((u) => JSON.stringify(u)).join(", ")}]`,
    "  - level: None",
    "    userGroups: [\"system:nodes\"]",
    "  - level: None",
    "    nonResourceURLs: [\"/healthz*\", \"/readyz*\", \"/livez*\", \"/version\", \"/openapi*\", \"/api\", \"/apis\", \"/apis/*\"]",
    "  - level: Metadata",
    "",
  ].join("\n");
}

/** kube-apiserver flags that write the audit log to `logPath` with the policy written to `policyPath`. */
export function auditFlags(policyPath: string, logPath: string): string[] {
  writeFileSync(policyPath, auditPolicy());
  return [
    `--audit-policy-file=${policyPath}`,
    `--audit-log-path=${logPath}`,
    "--audit-log-format=json",
    // blocking: each event is written before the response (the default for the log backend); batch would
    // make the log lag behind the requests the benchmark has just seen answered.
    "--audit-log-mode=blocking",
    "--audit-log-maxage=0",
    "--audit-log-maxbackup=0",
    "--audit-log-maxsize=0",
  ];
}

/** What the benchmark keeps of one request. Times are ms since the epoch (µs precision). */
export interface ApiRequest {
  id: string;
  user: string;
  verb: string;
  /** resource, or resource/subresource; for non-resource requests the path. */
  resource: string;
  namespace: string;
  name: string;
  code: number;
  receivedMs: number;
  /** ResponseComplete (for a watch: when it was established, ResponseStarted). */
  completedMs: number;
  uri: string;
}

interface RawEvent {
  auditID: string;
  stage: string;
  verb: string;
  requestURI: string;
  user?: { username?: string };
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string };
  responseStatus?: { code?: number };
  requestReceivedTimestamp: string;
  stageTimestamp: string;
}

/** RFC 3339 with up to nanosecond fractions -> ms since the epoch, keeping the fraction (Date.parse drops µs). */
export function parseMicroTime(text: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(text);
  if (!m) return Date.parse(text);
  const whole = Date.parse(`${m[1]}${m[3]}`);
  const fraction = m[2] ? Number(`0.${m[2]}`) * 1000 : 0;
  return whole + fraction;
}

/** Parses audit log lines into requests (one per auditID: watches at ResponseStarted, the rest at ResponseComplete). */
export function parseAuditLines(lines: string[], seenWatches = new Set<string>()): ApiRequest[] {
  const out: ApiRequest[] = [];
  for (const line of lines) {
    if (!line.trim()) continue;
    let e: RawEvent;
    try {
      e = JSON.parse(line) as RawEvent;
    } catch {
      continue;
    }
    if (e.verb === "watch") {
      // Counted once, when established (ResponseStarted); its ResponseComplete when it ends is the same
      // request. A watch refused at once (an error status) has only ResponseComplete: counted then.
      if (seenWatches.has(e.auditID)) continue;
      seenWatches.add(e.auditID);
    } else if (e.stage !== "ResponseComplete") {
      continue;
    }
    const ref = e.objectRef;
    out.push({
      id: e.auditID,
      user: e.user?.username ?? "",
      verb: e.verb,
      resource: ref?.resource ? (ref.subresource ? `${ref.resource}/${ref.subresource}` : ref.resource) : new URL(e.requestURI, "http://x").pathname,
      namespace: ref?.namespace ?? "",
      name: ref?.name ?? "",
      code: e.responseStatus?.code ?? 0,
      receivedMs: parseMicroTime(e.requestReceivedTimestamp),
      completedMs: parseMicroTime(e.stageTimestamp),
      uri: e.requestURI,
    });
  }
  return out;
}

/** Reads an audit log file as it grows (complete lines only). */
export class AuditLog {
  private offset = 0;
  private rest = "";
  private readonly seenWatches = new Set<string>();
  readonly requests: ApiRequest[] = [];

  constructor(readonly path: string) {}

  /** Reads what was appended since the last call; returns the new requests. */
  poll(): ApiRequest[] {
    if (!existsSync(this.path)) return [];
    const size = statSync(this.path).size;
    if (size <= this.offset) return [];
    const fd = openSync(this.path, "r");
    try {
      const chunks: string[] = [];
      const buf = Buffer.alloc(1 << 20);
      while (this.offset < size) {
        const n = readSync(fd, buf, 0, Math.min(buf.length, size - this.offset), this.offset);
        if (n <= 0) break;
        chunks.push(buf.subarray(0, n).toString("utf8"));
        this.offset += n;
      }
      const text = this.rest + chunks.join("");
      const cut = text.lastIndexOf("\n");
      this.rest = text.slice(cut + 1);
      const fresh = parseAuditLines(text.slice(0, cut + 1).split("\n"), this.seenWatches);
      this.requests.push(...fresh);
      return fresh;
    } finally {
      closeSync(fd);
    }
  }

  /** Requests of `user` that completed in [fromMs, toMs). */
  between(user: string, fromMs: number, toMs = Infinity): ApiRequest[] {
    this.poll();
    return this.requests.filter((r) => r.user === user && r.completedMs >= fromMs && r.completedMs < toMs);
  }

  /** Lets go of what was read so far (memory, in long runs). */
  forget(): void {
    this.requests.length = 0;
  }
}

/** "verb resource" -> count, most frequent first. */
export function countByKind(requests: ApiRequest[]): { kind: string; count: number }[] {
  const counts = new Map<string, number>();
  for (const r of requests) counts.set(`${r.verb} ${r.resource}`, (counts.get(`${r.verb} ${r.resource}`) ?? 0) + 1);
  return [...counts.entries()].map(([kind, count]) => ({ kind, count })).sort((a, b) => b.count - a.count || a.kind.localeCompare(b.kind));
}

/** What an idle agent may do: keep its watches open and renew its Lease. */
export function isIdleAllowed(r: ApiRequest): boolean {
  return r.verb === "watch" || (r.resource === "leases" && (r.verb === "get" || r.verb === "update"));
}
