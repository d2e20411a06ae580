// Minimal JSON-over-HTTP(S) client for the launcher's own calls (readiness, CRDs, TokenRequest, etcd's
// gateway). The launcher deliberately does not depend on @kubernetes/client-node, so it stays cheap
// to load in Jest's global setup and in the CLI.
import * as http from "node:http";
import * as https from "node:https";

export interface TlsClient {
  ca: string;
  cert?: string;
  key?: string;
}

export interface HttpResult {
  status: number;
  body: string;
}

export function request(
  url: string,
  opts: {
    method?: string;
    body?: unknown;
    /** Default application/json; a PATCH names its patch type here (e.g. application/merge-patch+json). */
    contentType?: string;
    tls?: TlsClient;
    timeoutMs?: number;
  } = {},
): Promise<HttpResult> {
  const u = new URL(url);
  if (u.hostname !== "127.0.0.1" && u.hostname !== "localhost") {
    // Tests talk to loopback only, ever; refuse anything else outright.
    return Promise.reject(new Error(`refusing non-loopback URL ${url}`));
  }
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  const mod = u.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.request(
      u,
      {
        method: opts.method ?? (payload === undefined ? "GET" : "POST"),
        headers:
          payload === undefined
            ? {}
            : { "content-type": opts.contentType ?? "application/json", "content-length": Buffer.byteLength(payload) },
        agent: false, // no pooled sockets left behind to keep the event loop (or a stopped server) busy
        timeout: opts.timeoutMs ?? 10_000,
        ...(opts.tls ?? {}),
      },
      (res) => {
        let data = "";
        res.setEncoding("utf8");
        res.on("data", (d: string) => (data += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body: data }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`timeout: ${req.method} ${url}`)));
    req.on("error", reject);
    req.end(payload);
  });
}

/** Like request, but resolves only for 2xx and parses the JSON body. */
export async function requestJson<T>(url: string, opts: Parameters<typeof request>[1] = {}): Promise<T> {
  const res = await request(url, opts);
  if (res.status < 200 || res.status >= 300) {
    throw new HttpError(res.status, `${opts.method ?? (opts.body === undefined ? "GET" : "POST")} ${url}: HTTP ${res.status}: ${res.body}`, res.body);
  }
  return JSON.parse(res.body) as T;
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly body: string,
  ) {
    super(message);
  }
}

/** Thrown from a waitFor check to give up at once (e.g. the component being waited for died). */
export class StopWaiting extends Error {}

/** Polls check() until it returns true, or throws once the deadline passes. Errors thrown by check()
 * count as "not yet" (a server still starting refuses connections) unless they are StopWaiting. */
export async function waitFor(
  check: () => Promise<boolean>,
  opts: { timeoutMs: number; intervalMs?: number; describe: (lastError: string) => string },
): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let lastError = "";
  for (;;) {
    try {
      if (await check()) return;
    } catch (e) {
      if (e instanceof StopWaiting) throw e;
      lastError = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(opts.describe(lastError));
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
  }
}
