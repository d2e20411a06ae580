// What the IssuedCertificate reconciler may read from the informers' caches instead of the API server
// (issue 12: requests per certificate and while idle). Only two things, both safe when a little stale:
//   - whether an IssuedCertificate exists at a name (the target-collision check): it reads as a 404 GET
//     on every pass otherwise;
//   - the resourceVersions of the IssuedCertificate and of its target secret (whose data the cache never
//     holds): when neither changed since a FINISHED pass verified the target, nothing can have changed
//     that the pass looked at, so a resync costs no request (see QuietPasses).
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

/** A ReconcilerCache over the controller's informers: the IssuedCertificates' and our Secrets' (per namespace or all). */
export function informerCache(issued: Cached<IssuedCertificate>, secrets: Cached<KubernetesObject>[]): ReconcilerCache {
  return {
    issuedCertificate: (namespace, name) => lookup([issued], namespace, name),
    secretVersion: (namespace, name) => {
      const secret = lookup(secrets, namespace, name);
      return secret === NOT_CACHED ? NOT_CACHED : secret?.metadata?.resourceVersion;
    },
  };
}

/** What a FINISHED pass that found nothing to do saw, to skip the next passes until something changes. */
interface QuietPass {
  issuedCertificateVersion: string;
  targetVersion: string;
  /** Until when nothing is due (the renewal time, the end of a root overlap), capped at a day. */
  untilMs: number;
}

/** A day: even an unchanged target is verified again this often (e.g. a root that expires before the intermediate). */
export const QUIET_PASS_MAX_MS = 24 * 3_600_000;

/** Per IssuedCertificate key: the last quiet FINISHED pass. */
export class QuietPasses {
  private readonly passes = new Map<string, QuietPass>();

  remember(key: string, pass: QuietPass, nowMs: number): void {
    this.passes.set(key, { ...pass, untilMs: Math.min(pass.untilMs, nowMs + QUIET_PASS_MAX_MS) });
  }

  forget(key: string): void {
    this.passes.delete(key);
  }

  /** How long until something is due, when the cache shows neither object changed since the quiet pass; else undefined (a full pass). */
  stillQuiet(key: string, cache: ReconcilerCache, nowMs: number): number | undefined {
    const pass = this.passes.get(key);
    if (!pass || nowMs >= pass.untilMs) return undefined;
    const [namespace, name] = key.split("/") as [string, string];
    const ic = cache.issuedCertificate(namespace, name);
    if (ic === NOT_CACHED || ic === undefined || ic.metadata.resourceVersion !== pass.issuedCertificateVersion) return undefined;
    const target = ic.spec?.issuedCertificateSecret;
    if (!target?.name || !target.namespace) return undefined;
    const targetVersion = cache.secretVersion(target.namespace, target.name);
    if (targetVersion === NOT_CACHED || targetVersion !== pass.targetVersion) return undefined;
    return pass.untilMs - nowMs;
  }
}
