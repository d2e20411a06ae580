// `cert-agent status`, the reads: the IssuedCertificates (one LIST), then the target secret and the
// PodBounceDirective each names (GETs, or one LIST where several targets share a namespace). Only
// reads, and only from the API server: the command works while the agent is down. A failed read of a
// secret or directive becomes part of its row; a failed LIST of IssuedCertificates ends the command.
import { CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import { API_VERSION, type IssuedCertificate, ISSUED_CERTIFICATE, type ObjectRef, type PodBounceDirective, POD_BOUNCE_DIRECTIVE } from "../../shared/api/types";
import type { ObjectClient } from "../../shared/kube/api";
import { CustomResourceClient } from "../../shared/kube/custom-objects";
import { isNotFound } from "../../shared/kube/errors";
import { SecretClient, type Secret } from "../../shared/kube/secrets";
import { ISSUED_SECRET_TYPE, MANAGED_SELECTOR } from "../constants";
import { directiveRef, type Fetched, type StatusInput, targetRef } from "./rows";

export interface StatusReaders {
  issued: Pick<ObjectClient<IssuedCertificate>, "list">;
  secrets: Pick<ObjectClient<Secret>, "get">;
  /** The target secrets of one namespace that carry our label and type (what the agent writes). */
  listTargets(namespace: string): Promise<Secret[]>;
  directives: Pick<ObjectClient<PodBounceDirective>, "get">;
}

export function apiReaders(kc: KubeConfig): StatusReaders {
  const core = kc.makeApiClient(CoreV1Api);
  return {
    issued: new CustomResourceClient<IssuedCertificate>(kc, ISSUED_CERTIFICATE),
    secrets: new SecretClient(kc),
    // The type as a field selector too: the label alone would also bring the staged private keys.
    listTargets: async (namespace) => (await core.listNamespacedSecret({ namespace, labelSelector: MANAGED_SELECTOR,
      fieldSelector: `type=${ISSUED_SECRET_TYPE}` })).items as Secret[],
    directives: new CustomResourceClient<PodBounceDirective>(kc, POD_BOUNCE_DIRECTIVE),
  };
}

/** The command cannot say anything: the IssuedCertificates themselves could not be listed. */
export class StatusReadError extends Error {
  override readonly name = "StatusReadError";
}

/** Requests in flight at once: a few round trips for 100 objects, without flooding the server. */
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
  const targets = targetReader(r, run, items.map(targetRef).filter((ref) => ref !== undefined));
  // One GET per distinct directive, however many IssuedCertificates name it.
  const directives = new Map<string, Promise<Fetched<PodBounceDirective>>>();
  const directive = (ref: ObjectRef) => cached(directives, ref, () => run(() => fetched(() => r.directives.get(ref.namespace, ref.name))));
  return Promise.all(items.map(async (ic): Promise<StatusInput> => {
    const t = targetRef(ic);
    const d = directiveRef(ic);
    const [target, bounce] = await Promise.all([t && targets(t), d && directive(d)]);
    return { ic, ...(target ? { target } : {}), ...(bounce ? { directive: bounce } : {}) };
  }));
}

/**
 * Each target secret read once. Where several live in one namespace, one LIST of ours (label and type)
 * replaces their GETs: 100 GETs cost ~1 s of client-side work where a LIST costs ~0.1 s. A target not
 * in the LIST (missing, or foreign: no label, another type) and every target of a namespace whose LIST
 * failed (a user allowed to get secrets but not to list them) is read with a GET, so the answer is the
 * same either way.
 */
function targetReader(r: StatusReaders, run: Limiter, refs: ObjectRef[]): (ref: ObjectRef) => Promise<Fetched<Secret>> {
  const names = new Map<string, Set<string>>();
  for (const ref of refs) names.set(ref.namespace, (names.get(ref.namespace) ?? new Set()).add(ref.name));
  const lists = new Map<string, Promise<Map<string, Secret> | undefined>>();
  const listed = (namespace: string) => {
    if (!lists.has(namespace)) {
      lists.set(namespace, run(() => r.listTargets(namespace))
        .then((items) => new Map(items.map((s) => [s.metadata.name ?? "", s])), () => undefined));
    }
    return lists.get(namespace)!;
  };
  const cache = new Map<string, Promise<Fetched<Secret>>>();
  return (ref) => cached(cache, ref, async () => {
    // Not inside run(): a GET waiting for a LIST must not hold a slot the LIST needs.
    const found = names.get(ref.namespace)!.size > 1 ? (await listed(ref.namespace))?.get(ref.name) : undefined;
    return found ? { state: "found", object: found } : run(() => fetched(() => r.secrets.get(ref.namespace, ref.name)));
  });
}

function cached<T>(cache: Map<string, Promise<T>>, ref: ObjectRef, read: () => Promise<T>): Promise<T> {
  const key = `${ref.namespace}/${ref.name}`;
  if (!cache.has(key)) cache.set(key, read());
  return cache.get(key)!;
}

async function fetched<T>(get: () => Promise<T | undefined>): Promise<Fetched<T>> {
  try {
    const object = await get();
    return object === undefined ? { state: "missing" } : { state: "found", object };
  } catch (err) {
    return { state: "error", message: describeApiError(err) };
  }
}

type Limiter = <T>(fn: () => Promise<T>) => Promise<T>;

/** Runs at most n of the given functions at a time, in the order they were handed in. */
function limiter(n: number): Limiter {
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
