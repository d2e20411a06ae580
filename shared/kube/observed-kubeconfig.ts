// Every request the agent makes to the API server, seen in one place. client-node sends each one,
// typed calls and watches alike, through KubeConfig.applySecurityAuthentication, which picks the
// undici dispatcher it goes out on; a KubeConfig that wraps that dispatcher with an interceptor sees
// each request's verb, its HTTP status and Date header, or the error that kept it from getting one.
// The clients, informers, leader elector and Event recorder built on this KubeConfig need no change.
import { KubeConfig, type RequestContext } from "@kubernetes/client-node";
import { createHash } from "node:crypto";
import { currentSignal } from "../controller/request-signal";

/** What one request came to: a response (status, Date header) or an error before any response. */
export interface ApiCallOutcome {
  status?: number;
  /** The response's Date header (the API server's clock, whole seconds). */
  date?: string;
  error?: unknown;
}

/** Told when a request starts (with its Kubernetes verb); the function it returns, how it ended. */
export interface ApiObserver {
  begin(verb: string): (outcome: ApiCallOutcome) => void;
}

/**
 * The Kubernetes verb of a request, as the API server's audit log and apiserver_request_total name
 * it: watch, list, get, create, update, patch, delete, deletecollection (else the method, lower case).
 */
export function kubernetesVerb(method: string, url: string): string {
  const { pathname, searchParams } = new URL(url, "http://x");
  const m = method.toUpperCase();
  if (m === "POST") return "create";
  if (m === "PUT") return "update";
  if (m === "PATCH") return "patch";
  const segments = pathname.split("/").filter(Boolean);
  // /api/v1/... (core) or /apis/<group>/<version>/...
  const rest = segments[0] === "api" ? segments.slice(2) : segments[0] === "apis" ? segments.slice(3) : undefined;
  // /api/v1/namespaces/<ns>/<resource>[/<name>] or /api/v1/<resource>[/<name>]; /api/v1/namespaces/<name> is a get.
  const name = rest === undefined ? undefined : rest[0] === "namespaces" && rest.length >= 3 ? rest[3] : rest[1];
  const collection = rest !== undefined && rest.length > 0 && name === undefined;
  if (m === "GET") {
    const watch = searchParams.get("watch");
    if (watch === "true" || watch === "1") return "watch";
    return collection ? "list" : "get";
  }
  if (m === "DELETE") return collection ? "deletecollection" : "delete";
  return m.toLowerCase();
}

type Dispatcher = NonNullable<ReturnType<RequestContext["getDispatcher"]>>;
type Interceptor = Parameters<Dispatcher["compose"]>[0];
type Dispatch = Parameters<Interceptor>[0];
type Handler = Parameters<Dispatch>[1];

/**
 * The real handler, seen through a Proxy that reports the first response or error once and leaves
 * everything else (other callbacks, fields the handler sets on itself) exactly as it was.
 */
function observingHandler(inner: Handler, finish: (outcome: ApiCallOutcome) => void): Handler {
  let reported = false;
  const report = (outcome: ApiCallOutcome) => {
    if (reported) return;
    reported = true;
    finish(outcome);
  };
  const onResponseStart: Handler["onResponseStart"] = (controller, statusCode, headers, statusMessage) => {
    // 1xx are interim; the final status comes later.
    if (statusCode >= 200) {
      const date = headers["date"];
      report({ status: statusCode, date: Array.isArray(date) ? date[0] : date });
    }
    return inner.onResponseStart?.(controller, statusCode, headers, statusMessage);
  };
  const onResponseError: Handler["onResponseError"] = (controller, error) => {
    // After a response this is a broken stream (a watch cut by an API-server restart), not a failed call.
    report({ error });
    return inner.onResponseError?.(controller, error);
  };
  return new Proxy(inner, {
    get(target, prop) {
      if (prop === "onResponseStart") return onResponseStart;
      if (prop === "onResponseError") return onResponseError;
      const value: unknown = Reflect.get(target, prop, target);
      // Bound, so a handler with private fields still finds them on `this`.
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** A copy of a KubeConfig whose requests all report to observer. The source is left untouched. */
export class ObservedKubeConfig extends KubeConfig {
  /**
   * One dispatcher (an undici Agent: a pool of kept-alive connections) per cluster and TLS settings,
   * reused by every request. client-node builds a new Agent for each request: a new connection, a
   * TLS handshake and a secure context every time, the old ones left open until they time out. With
   * 100 certificates that was ~200 MiB of memory outside the V8 heap and a handshake's CPU per request.
   * The Agent it builds for a request is dropped unused (it opens nothing until used). The token is a
   * header, so a rotated token needs no new dispatcher.
   */
  private readonly dispatchers = new Map<string, Dispatcher>();

  constructor(source: KubeConfig, private readonly observer: ApiObserver) {
    super();
    this.loadFromOptions({
      clusters: source.clusters,
      contexts: source.contexts,
      users: source.users,
      currentContext: source.currentContext,
    });
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    const fresh = context.getDispatcher();
    if (fresh) {
      const key = this.tlsKey();
      if (!this.dispatchers.has(key)) this.dispatchers.set(key, fresh);
      context.setDispatcher(this.dispatchers.get(key)!);
    }
    // A request made for a reconcile ends with it (its deadline, stop()): see request-signal.ts.
    const signal = currentSignal();
    if (signal && !context.getSignal()) context.setSignal(signal);
    const dispatcher = context.getDispatcher();
    // Always set: a cluster with no TLS settings of its own gets a dispatcher too (below).
    if (!dispatcher) return;
    const finish = this.observer.begin(kubernetesVerb(context.getHttpMethod(), context.getUrl()));
    const interceptor: Interceptor = (dispatch) => (opts, handler) => dispatch(opts, observingHandler(handler, finish));
    context.setDispatcher(dispatcher.compose(interceptor));
  }

  /**
   * Without CA, client certificate or proxy settings client-node sends on undici's global dispatcher,
   * which no interceptor of ours can wrap; an agent with default TLS settings behaves the same.
   */
  override createDispatcherOptions(...args: Parameters<KubeConfig["createDispatcherOptions"]>): ReturnType<KubeConfig["createDispatcherOptions"]> {
    const options = super.createDispatcherOptions(...args);
    return options.type === "none" ? { type: "agent", connect: { keepAlive: true, keepAliveInitialDelay: 30_000 } } : options;
  }

  /** What the TLS settings of a request depend on: the cluster and the user's client certificate. */
  private tlsKey(): string {
    const c = this.getCurrentCluster();
    const u = this.getCurrentUser();
    return createHash("sha256").update(JSON.stringify([c?.server, c?.caData, c?.caFile, c?.skipTLSVerify, c?.proxyUrl, c?.tlsServerName,
      u?.certData, u?.certFile, u?.keyData, u?.keyFile])).digest("hex");
  }

  /** Closes the shared connections (at stop: nothing keeps a socket open afterwards). */
  async close(): Promise<void> {
    const dispatchers = [...this.dispatchers.values()];
    this.dispatchers.clear();
    await Promise.all(dispatchers.map((d) => d.close().catch(() => undefined)));
  }
}
