// What the IssuedCertificate reconciler reads from the informers' caches instead of the API server
// (issue 12: requests per certificate and while idle).
//   - IssuedCertificates: the informer holds them whole, so a pass reads its object from the cache
//     (every write to it is guarded by resourceVersion: a stale read costs a 409 and a requeue, never
//     a wrong write), and the target-collision check reads it there too.
//   - Our Secrets and CertificateRequests: the informers keep only their metadata (no private key and
//     no CSR stays in a cache), so the resourceVersion there says whether the object this agent last
//     read or wrote is still the current one (readThrough): then it is used again without a request.
//     A name missing from the cache is looked up once (someone else's object, which our informers do
//     not watch, may sit there) and its 404 is held. Anything else is a GET.
//   - QuietPasses: the resourceVersions of the objects a pass read; when none changed since a pass
//     that decided to wait, the next pass would read the same and decide the same, so it is skipped
//     without a request. That covers the resync of every FINISHED object, and the wake-ups that the
//     agent's own writes cause while it waits for the issuer.
import type { KubernetesObject } from "@kubernetes/client-node";
import type { IssuedCertificate } from "../shared/api/types";
import type { Source } from "../shared/controller/informer";
import type { KubeObject, ObjectClient } from "../shared/kube/api";
import type { Clock } from "../shared/controller/clock";

/** The cache does not cover that namespace (a narrower watch): ask the API server. */
export const NOT_CACHED = Symbol("not cached");

export interface ReconcilerCache {
  /** The IssuedCertificate as cached; undefined when there is none. */
  issuedCertificate(namespace: string, name: string): IssuedCertificate | undefined | typeof NOT_CACHED;
  /** The resourceVersion of one of our Secrets as cached (the informers watch only ours); undefined when there is none. */
  secretVersion(namespace: string, name: string): string | undefined | typeof NOT_CACHED;
  /** The resourceVersion of our CertificateRequest as cached; undefined when there is none. */
  requestVersion(namespace: string, name: string): string | undefined | typeof NOT_CACHED;
  /** Calls `handler` with every object the informers behind one kind deliver (readThrough needs to know what they have seen). */
  onDelivered?(kind: CachedKind, handler: (obj: KubeObject) => void): void;
}

export type CachedKind = "issuedCertificate" | "secret" | "request";

interface Cached<T> {
  /** The namespace the source watches; undefined = all. */
  namespace?: string;
  source: Pick<Source<T & KubernetesObject>, "get" | "list" | "hasSynced"> & Partial<Pick<Source<T & KubernetesObject>, "addHandler">>;
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
    onDelivered(kind, handler) {
      const sources: Cached<KubernetesObject>[] = kind === "issuedCertificate" ? [issued as Cached<KubernetesObject>] : kind === "request" ? [requests] : secrets;
      for (const c of sources) c.source.addHandler?.((obj) => handler(obj as KubeObject));
    },
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

/** An ObjectClient whose reads go through the cache (readThrough), and which can drop what it holds. */
export interface CachedClient<T extends KubeObject> extends ObjectClient<T> {
  /** Drops the object held for that name: the next read asks the API server unless the cache can vouch for it. */
  forget(namespace: string, name: string): void;
  /** The object held for that name, if any. */
  held(namespace: string, name: string): T | undefined;
  /** To be called with every object the informer behind the cache delivers. */
  delivered(obj: KubeObject): void;
}

/** How long an object this agent wrote or read may be newer than the cache (a watch event on its way); past that, ask. */
export const CACHE_LAG_MAX_MS = 5_000;

interface Held<T> {
  /** undefined: absent (a GET answered 404, or this client deleted it). */
  obj?: T;
  /** The object's resourceVersion; for an absence after our delete, the version deleted. */
  version?: string;
  /** What the cache showed when this was held: while it still shows that, our write's event is on its way. */
  before?: string;
  /** The informer has delivered this very resourceVersion: when the cache shows another, the cache is newer. */
  delivered: boolean;
  atMs: number;
}

/**
 * Reads of one kind through an informer's cache. `cachedVersion` is the resourceVersion the cache holds
 * for a name (undefined: none; NOT_CACHED: not covered, ask the API server); `cachedObject`, when the
 * cache holds whole objects, is what a read returns when it has nothing newer.
 *
 * The client holds the last object it read or wrote per name, with the version the cache showed then.
 * While the cache still shows that version, our write's event is on its way: the held object is used,
 * for at most CACHE_LAG_MAX_MS (a watch that is down delivers nothing). Once the cache shows ours, the
 * held object is used while the versions agree. Any other version in the cache is newer than ours (a
 * watch delivers in order; a re-LIST after a broken watch may skip ours): the cached object or a GET.
 *
 * A name missing from the cache is not proof of absence: our informers watch only the objects labelled
 * ours, and someone else's Secret may sit at a target's name. So it is a GET, whose 404 is held until
 * the cache shows an object there or the reconciler forgets it (it does on a 409: were the name taken a
 * moment after the 404, our create fails, and the next pass asks again).
 */
export function readThrough<T extends KubeObject>(client: ObjectClient<T>, clock: Clock, cachedVersion: (namespace: string, name: string) => string | undefined | typeof NOT_CACHED,
  cachedObject?: (namespace: string, name: string) => T | undefined): CachedClient<T> {
  const held = new Map<string, Held<T>>();
  const keyOf = (namespace: string, name: string) => `${namespace}/${name}`;
  const nowMs = () => clock.now().getTime();
  const hold = (o: T): T => {
    const { namespace, name, resourceVersion } = o.metadata as { namespace: string; name: string; resourceVersion?: string };
    const shown = cachedVersion(namespace, name);
    const before = shown === NOT_CACHED ? undefined : shown;
    held.set(keyOf(namespace, name), { obj: o, version: resourceVersion, before, delivered: before === resourceVersion, atMs: nowMs() });
    return o;
  };
  const fresh = async (namespace: string, name: string): Promise<T | undefined> => {
    const o = await client.get(namespace, name);
    if (o) return hold(o);
    held.set(keyOf(namespace, name), { delivered: true, atMs: nowMs() });
    return undefined;
  };
  /** What this client holds that is at least as new as the cache: an object, null for absent, undefined for nothing. */
  const newestHeld = (key: string, version: string | undefined): T | null | undefined => {
    const mine = held.get(key);
    if (!mine) return undefined;
    if (mine.version === version) {
      mine.delivered = true;
      return mine.obj ?? null;
    }
    if (mine.obj === undefined && version === undefined) return null;
    // The cache still shows what it showed when we wrote (or read): our version's event is on its way.
    // Any other version is newer than ours (e.g. a re-LIST that skipped ours): read it.
    if (!mine.delivered && version === mine.before && nowMs() - mine.atMs < CACHE_LAG_MAX_MS) return mine.obj ?? null;
    held.delete(key);
    return undefined;
  };
  return {
    async get(namespace, name) {
      const version = cachedVersion(namespace, name);
      if (version === NOT_CACHED) return fresh(namespace, name);
      const mine = newestHeld(keyOf(namespace, name), version);
      if (mine !== undefined) return mine ?? undefined;
      if (version === undefined) return fresh(namespace, name);
      const cached = cachedObject?.(namespace, name);
      return cached?.metadata.resourceVersion === version ? cached : fresh(namespace, name);
    },
    create: async (namespace, body) => hold(await client.create(namespace, body)),
    replace: async (body) => hold(await client.replace(body)),
    replaceStatus: async (body) => hold(await client.replaceStatus(body)),
    patchAnnotations: async (namespace, name, annotations, resourceVersion) => hold(await client.patchAnnotations(namespace, name, annotations, resourceVersion)),
    async delete(namespace, name) {
      const key = keyOf(namespace, name);
      const deleted = await client.delete(namespace, name);
      // Absent from now on, also while the cache still shows the version it had (the deletion's event is
      // on its way); any other version there is newer than our delete, and read.
      const version = cachedVersion(namespace, name);
      held.set(key, { version: version === NOT_CACHED ? undefined : version, delivered: true, atMs: nowMs() });
      return deleted;
    },
    list: (namespace, labelSelector, fieldSelector) => client.list(namespace, labelSelector, fieldSelector),
    forget: (namespace, name) => void held.delete(keyOf(namespace, name)),
    held: (namespace, name) => held.get(keyOf(namespace, name))?.obj,
    delivered(obj) {
      const mine = held.get(keyOf(obj.metadata.namespace ?? "", obj.metadata.name ?? ""));
      if (mine && mine.version === obj.metadata.resourceVersion) mine.delivered = true;
    },
  };
}

/** The reconciler's clients for the three kinds the caches cover, reading through them (readThrough). */
export interface CachedClients<IC extends KubeObject, CR extends KubeObject, S extends KubeObject> {
  issuedCertificates: CachedClient<IC>;
  certificateRequests: CachedClient<CR>;
  secrets: CachedClient<S>;
}

export function cachedClients<IC extends KubeObject, CR extends KubeObject, S extends KubeObject>(cache: ReconcilerCache, clock: Clock,
  clients: { issuedCertificates: ObjectClient<IC>; certificateRequests: ObjectClient<CR>; secrets: ObjectClient<S> }): CachedClients<IC, CR, S> {
  const cachedIc = (namespace: string, name: string) => {
    const ic = cache.issuedCertificate(namespace, name);
    return ic === NOT_CACHED ? undefined : (ic as unknown as IC | undefined);
  };
  const c: CachedClients<IC, CR, S> = {
    issuedCertificates: readThrough(clients.issuedCertificates, clock, (ns, name) => versionOf(cache.issuedCertificate(ns, name) as KubernetesObject | undefined | typeof NOT_CACHED), cachedIc),
    certificateRequests: readThrough(clients.certificateRequests, clock, (ns, name) => cache.requestVersion(ns, name)),
    secrets: readThrough(clients.secrets, clock, (ns, name) => cache.secretVersion(ns, name)),
  };
  cache.onDelivered?.("issuedCertificate", (o) => c.issuedCertificates.delivered(o));
  cache.onDelivered?.("request", (o) => c.certificateRequests.delivered(o));
  cache.onDelivered?.("secret", (o) => c.secrets.delivered(o));
  return c;
}
