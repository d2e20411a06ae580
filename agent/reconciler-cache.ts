// What the IssuedCertificate reconciler may read from the informers' caches instead of the API server
// (issue 12: requests per certificate and while idle). Only what is safe when a little stale:
//   - whether an IssuedCertificate exists at a name (the target-collision check): it reads as a 404 GET
//     on every pass otherwise;
//   - the resourceVersions of the objects a pass read (the IssuedCertificate, its target secret, its
//     staged key, its CertificateRequest; the caches never hold the Secrets' data): when none changed since
//     a pass that decided to wait, the next pass would read the same and decide the same, so it is skipped
//     without a request (QuietPasses). That covers the resync of every FINISHED object, and the wake-ups
//     that the agent's own writes cause while it waits for the issuer.
// Whatever decides a write is still read fresh from the API server.
import type { KubernetesObject } from "@kubernetes/client-node";
import type { IssuedCertificate } from "../shared/api/types";
import type { Source } from "../shared/controller/informer";

/** The cache does not cover that namespace (a narrower watch): ask the API server. */
export const NOT_CACHED = Symbol("not cached");

export interface ReconcilerCache {
  /** The IssuedCertificate as cached; undefined when there is none. */
  issuedCertificate(namespace: string, name: string): IssuedCertificate | undefined | typeof NOT_CACHED;
  /** The resourceVersion of one of our Secrets as cached (the informers watch only ours); undefined when there is none. */
  secretVersion(namespace: string, name: string): string | undefined | typeof NOT_CACHED;
  /** The resourceVersion of our CertificateRequest as cached; undefined when there is none. */
  requestVersion(namespace: string, name: string): string | undefined | typeof NOT_CACHED;
}

interface Cached<T> {
  /** The namespace the source watches; undefined = all. */
  namespace?: string;
  source: Pick<Source<T & KubernetesObject>, "get" | "list" | "hasSynced">;
}

function lookup<T extends { metadata?: { namespace?: string; name?: string } }>(sources: Cached<T>[], namespace: string, name: string): T | undefined | typeof NOT_CACHED {
  const c = sources.find((s) => s.namespace === undefined || s.namespace === namespace);
  if (!c || !c.source.hasSynced()) return NOT_CACHED;
  return c.source.get ? c.source.get(namespace, name) : c.source.list().find((o) => o.metadata?.namespace === namespace && o.metadata?.name === name);
}

const versionOf = (o: KubernetesObject | undefined | typeof NOT_CACHED) => (o === NOT_CACHED ? NOT_CACHED : o?.metadata?.resourceVersion);

/** A ReconcilerCache over the controller's informers: the IssuedCertificates', our CertificateRequests' and our Secrets' (per namespace or all). */
export function informerCache(issued: Cached<IssuedCertificate>, requests: Cached<KubernetesObject>, secrets: Cached<KubernetesObject>[]): ReconcilerCache {
  return {
    issuedCertificate: (namespace, name) => lookup([issued], namespace, name),
    secretVersion: (namespace, name) => versionOf(lookup(secrets, namespace, name)),
    requestVersion: (namespace, name) => versionOf(lookup([requests], namespace, name)),
  };
}

/** The objects a pass reads, by the resourceVersion it read ("" when absent); a pass that did not read one leaves it out. */
export interface ReadVersions {
  issuedCertificate: string;
  target?: string;
  staged?: string;
  request?: string;
  /** The IssuedCertificate at the target's name (the collision check). */
  collision?: string;
}

interface QuietPass {
  versions: ReadVersions;
  /** Until when nothing is due (a requeue the pass asked for), capped at a day. */
  untilMs: number;
}

/** A day: even when nothing changed a pass runs this often (e.g. a root that expires before the intermediate). */
export const QUIET_PASS_MAX_MS = 24 * 3_600_000;

/** The cached resourceVersions of the parts `wanted` names (where they live comes from the IssuedCertificate's spec); NOT_CACHED when one is not covered. */
function versionsNow(cache: ReconcilerCache, ic: IssuedCertificate, wanted: ReadVersions): ReadVersions | typeof NOT_CACHED {
  const { namespace, name } = ic.metadata as { namespace: string; name: string };
  const target = ic.spec?.issuedCertificateSecret;
  const now: ReadVersions = { issuedCertificate: ic.metadata.resourceVersion ?? "" };
  const read = (v: string | undefined | typeof NOT_CACHED) => (v === NOT_CACHED ? NOT_CACHED : v ?? "");
  const parts: [keyof ReadVersions, () => string | typeof NOT_CACHED][] = [
    ["target", () => (target?.name && target.namespace ? read(cache.secretVersion(target.namespace, target.name)) : NOT_CACHED)],
    ["staged", () => read(cache.secretVersion(namespace, name))],
    ["request", () => read(cache.requestVersion(namespace, name))],
    ["collision", () => {
      if (!target?.name || !target.namespace) return NOT_CACHED;
      const other = cache.issuedCertificate(target.namespace, target.name);
      return other === NOT_CACHED ? NOT_CACHED : other?.metadata.resourceVersion ?? "";
    }],
  ];
  for (const [part, lookup] of parts) {
    if (wanted[part] === undefined) continue;
    const v = lookup();
    if (v === NOT_CACHED) return NOT_CACHED;
    now[part] = v;
  }
  return now;
}

/** Per IssuedCertificate key: the last pass that decided to wait, and what it read. */
export class QuietPasses {
  private readonly passes = new Map<string, QuietPass>();

  remember(key: string, pass: QuietPass, nowMs: number): void {
    this.passes.set(key, { ...pass, untilMs: Math.min(pass.untilMs, nowMs + QUIET_PASS_MAX_MS) });
  }

  forget(key: string): void {
    this.passes.delete(key);
  }

  /** How long until the wait is due, when the caches show none of the objects read changed since; else undefined (a full pass). */
  stillQuiet(key: string, cache: ReconcilerCache, nowMs: number): number | undefined {
    const pass = this.passes.get(key);
    if (!pass || nowMs >= pass.untilMs) return undefined;
    const [namespace, name] = key.split("/") as [string, string];
    const ic = cache.issuedCertificate(namespace, name);
    if (ic === NOT_CACHED || ic === undefined) return undefined;
    const now = versionsNow(cache, ic, pass.versions);
    if (now === NOT_CACHED) return undefined;
    const same = (Object.keys(pass.versions) as (keyof ReadVersions)[]).every((part) => now[part] === pass.versions[part]);
    if (!same) return undefined;
    return pass.untilMs - nowMs;
  }
}
