// `cert-agent status`, the reads: the IssuedCertificates (one LIST), then the target secret and the
// PodBounceDirective each names (GETs). Only reads, and only from the API server: the command works
// while the agent is down. A failed GET becomes part of the row; a failed LIST ends the command.
import type { KubeConfig } from "@kubernetes/client-node";
import { type IssuedCertificate, ISSUED_CERTIFICATE, type PodBounceDirective, POD_BOUNCE_DIRECTIVE, API_VERSION } from "../../shared/api/types";
import type { ObjectClient } from "../../shared/kube/api";
import { CustomResourceClient } from "../../shared/kube/custom-objects";
import { isNotFound } from "../../shared/kube/errors";
import { SecretClient, type Secret } from "../../shared/kube/secrets";
import { directiveRef, type Fetched, type StatusInput, targetRef } from "./rows";

export interface StatusReaders {
  issued: Pick<ObjectClient<IssuedCertificate>, "list">;
  secrets: Pick<ObjectClient<Secret>, "get">;
  directives: Pick<ObjectClient<PodBounceDirective>, "get">;
}

export function apiReaders(kc: KubeConfig): StatusReaders {
  return {
    issued: new CustomResourceClient<IssuedCertificate>(kc, ISSUED_CERTIFICATE),
    secrets: new SecretClient(kc),
    directives: new CustomResourceClient<PodBounceDirective>(kc, POD_BOUNCE_DIRECTIVE),
  };
}

/** The command cannot say anything: the IssuedCertificates themselves could not be listed. */
export class StatusReadError extends Error {
  override readonly name = "StatusReadError";
}

/** GETs in flight at once: enough to read 100 objects in a few round trips, few enough not to flood the server. */
export const GET_CONCURRENCY = 8;

/** namespace undefined = all namespaces. */
export async function gather(r: StatusReaders, namespace: string | undefined, concurrency = GET_CONCURRENCY): Promise<StatusInput[]> {
  let items: IssuedCertificate[];
  try {
    items = (await r.issued.list(namespace)).items;
  } catch (err) {
    const where = namespace === undefined ? "in all namespaces" : `in namespace ${namespace}`;
    const why = isNotFound(err)
      ? `the API ${API_VERSION} ${ISSUED_CERTIFICATE.plural} is not served (are the CRDs installed?)`
      : describeApiError(err);
    throw new StatusReadError(`cannot list IssuedCertificates ${where}: ${why}`);
  }
  const run = limiter(concurrency);
  // One GET per distinct object, however many IssuedCertificates name it.
  const secrets = new Map<string, Promise<Fetched<Secret>>>();
  const directives = new Map<string, Promise<Fetched<PodBounceDirective>>>();
  const once = <T>(cache: Map<string, Promise<Fetched<T>>>, ns: string, name: string, get: () => Promise<T | undefined>) => {
    const key = `${ns}/${name}`;
    if (!cache.has(key)) cache.set(key, run(() => fetched(get)));
    return cache.get(key)!;
  };
  return Promise.all(items.map(async (ic): Promise<StatusInput> => {
    const t = targetRef(ic);
    const d = directiveRef(ic);
    const [target, directive] = await Promise.all([
      t && once(secrets, t.namespace, t.name, () => r.secrets.get(t.namespace, t.name)),
      d && once(directives, d.namespace, d.name, () => r.directives.get(d.namespace, d.name)),
    ]);
    return { ic, ...(target ? { target } : {}), ...(directive ? { directive } : {}) };
  }));
}

async function fetched<T>(get: () => Promise<T | undefined>): Promise<Fetched<T>> {
  try {
    const object = await get();
    return object === undefined ? { state: "missing" } : { state: "found", object };
  } catch (err) {
    return { state: "error", message: describeApiError(err) };
  }
}

/** Runs at most n of the given functions at a time, in the order they were handed in. */
function limiter(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  return async (fn) => {
    if (active >= n) await new Promise<void>((resolve) => queue.push(resolve));
    active += 1;
    try {
      return await fn();
    } finally {
      active -= 1;
      queue.shift()?.();
    }
  };
}

/**
 * One line for a person: client-node's ApiException message is the status code, the whole response
 * body and the headers on several lines; the Status object's message is what kubectl would print.
 */
export function describeApiError(err: unknown): string {
  const e = err as { code?: unknown; body?: unknown; message?: unknown } | undefined;
  if (typeof e?.code === "number") {
    let body = e.body;
    if (typeof body === "string") {
      try {
        body = JSON.parse(body);
      } catch {
        // not a Status object: the code alone
      }
    }
    const status = body as { message?: unknown; reason?: unknown } | undefined;
    const reason = typeof status?.reason === "string" ? ` ${status.reason}` : e.code === 401 ? " Unauthorized" : "";
    const message = typeof status?.message === "string" && status.message ? `: ${status.message}` : "";
    return `HTTP ${e.code}${reason}${message}`;
  }
  // fetch's own message is just "fetch failed"; the reason (ECONNREFUSED, a TLS error) is its cause.
  const messages: string[] = [];
  for (let e: unknown = err; e !== undefined && messages.length < 4; e = (e as { cause?: unknown }).cause) {
    const message = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    if (message && !messages.includes(message)) messages.push(message);
    if (!(e instanceof Error)) break;
  }
  return messages.join(": ");
}
