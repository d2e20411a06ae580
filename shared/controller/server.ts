// The probe and metrics endpoints of a controller process (kubebuilder's layout): /healthz and
// /readyz on the health address (text: "ok", or 503 with one line per failing check), /statusz
// there too (JSON, for humans and scripts), /metrics (Prometheus text format) on the metrics address.
import { createServer, Server } from "node:http";
import { AddressInfo } from "node:net";
import { Registry } from "prom-client";

export type Check = () => { ok: boolean; detail?: string };

export interface HttpEndpoint {
  server: Server;
  port: number;
  close(): Promise<void>;
}

/** Parses "host:port" ("" or "0" disables, ":8081" means all interfaces). */
export function parseBindAddress(text: string): { host: string; port: number } | undefined {
  if (text === "" || text === "0") return undefined;
  const match = /^(.*):(\d{1,5})$/.exec(text);
  if (!match || Number(match[2]) > 65535) throw new Error(`invalid bind address "${text}": use host:port, e.g. 127.0.0.1:8081, or 0 to disable`);
  return { host: match[1] === "" ? "0.0.0.0" : match[1].replace(/^\[|\]$/g, ""), port: Number(match[2]) };
}

function listen(server: Server, host: string, port: number): Promise<HttpEndpoint> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve({
        server,
        port: (server.address() as AddressInfo).port,
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}

export interface HealthEndpoints {
  healthz: Check[];
  readyz: Check[];
  /** The /statusz document (served as JSON); without it /statusz is 404. */
  statusz?: () => unknown | Promise<unknown>;
}

export function startHealthServer(host: string, port: number, endpoints: HealthEndpoints): Promise<HttpEndpoint> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path === "/statusz" && endpoints.statusz) {
      const statusz = endpoints.statusz;
      Promise.resolve()
        .then(() => statusz())
        .then(
          (doc) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(doc, null, 2) + "\n"),
          (err) => res.writeHead(500, { "content-type": "text/plain" }).end(`statusz failed: ${String(err)}\n`),
        );
      return;
    }
    const list = path === "/healthz" || path === "/livez" ? endpoints.healthz : path === "/readyz" ? endpoints.readyz : undefined;
    if (!list) {
      res.writeHead(404).end("not found\n");
      return;
    }
    const failed = list.map((c) => c()).filter((r) => !r.ok);
    res.writeHead(failed.length ? 503 : 200, { "content-type": "text/plain" });
    res.end(failed.length ? failed.map((f) => f.detail ?? "check failed").join("\n") + "\n" : "ok\n");
  });
  return listen(server, host, port);
}

export function startMetricsServer(host: string, port: number, registry: Registry): Promise<HttpEndpoint> {
  const server = createServer((req, res) => {
    if ((req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404).end("not found\n");
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { "content-type": registry.contentType }).end(text),
      (err) => res.writeHead(500).end(String(err)),
    );
  });
  return listen(server, host, port);
}
