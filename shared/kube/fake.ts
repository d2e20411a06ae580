// An in-memory Kubernetes API for reconciler unit tests. It keeps the rules of the real
// kube-apiserver that reconcilers depend on (resourceVersion preconditions, generation bumps,
// the status subresource, finalizers, optional owner-reference cascade) so a reconciler that passes
// here behaves the same against a server, and it can fail any call on demand.
import { GROUP } from "../api/types";
import { Clock, systemClock } from "../controller/clock";
import type { KubeObject, ObjectClient, ObjectList } from "./api";
import { isNotFound } from "./errors";

export type Verb = "get" | "create" | "replace" | "replaceStatus" | "patchAnnotations" | "delete" | "list";
export interface WriteRecord { kind: string; verb: Verb; namespace: string; name: string }
export interface Fault { kind?: string; verb?: Verb; namespace?: string; name?: string; times?: number; error: number | Error }
export interface FakeApiOptions {
  /** Source of creation and deletion timestamps; the system clock by default. */
  clock?: Clock;
  /** Stand-in for the garbage collector: removing an object removes its dependents at once. */
  garbageCollect?: boolean;
}

type Obj = KubeObject & { status?: unknown; [field: string]: unknown };

/** Core kinds the fake knows: no status subresource, no metadata.generation, no API group. */
const CORE_KINDS = new Set(["Secret", "ConfigMap"]);
const REASONS: Record<number, string> = { 400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 409: "Conflict",
  410: "Expired", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout" };

/** Shaped like client-node's ApiException (same .code, .body and message layout). */
export class FakeApiError extends Error {
  readonly code: number;
  readonly body: { kind: "Status"; apiVersion: "v1"; status: "Failure"; message: string; reason: string; code: number };
  readonly headers: Record<string, string> = {};

  constructor(code: number, message: string, reason = REASONS[code] ?? "Unknown") {
    const body = { kind: "Status" as const, apiVersion: "v1" as const, status: "Failure" as const, message, reason, code };
    super(`HTTP-Code: ${code}\nMessage: ${message}\nBody: ${JSON.stringify(body)}\nHeaders: {}`);
    this.code = code;
    this.body = body;
  }
}

const resource = (kind: string) => `${kind.toLowerCase()}s${CORE_KINDS.has(kind) ? "" : `.${GROUP}`}`;
const notFound = (kind: string, name: string) => new FakeApiError(404, `${resource(kind)} "${name}" not found`);
const conflict = (kind: string, name: string) => new FakeApiError(409,
  `Operation cannot be fulfilled on ${resource(kind)} "${name}": the object has been modified; please apply your changes to the latest version and try again`);

/** JSON round trip: what crosses the wire, so callers never share references with the store. */
const copy = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
/** JSON with sorted keys, so that key order never counts as a change (the server compares values). */
const canon = (value: unknown): string => JSON.stringify(value, (_k, v: unknown) => v && typeof v === "object" && !Array.isArray(v)
  ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1))) : v);
const key = (namespace: string, name: string) => `${namespace}/${name}`;
const where = (o: KubeObject) => [o.metadata.namespace ?? "", o.metadata.name ?? ""] as const;

/** Label selectors: `k=v`, `k==v`, `k!=v`, `k`, `!k`, ANDed with commas. Set-based forms are refused. */
function parseSelector(selector = ""): (labels: Record<string, string>) => boolean {
  const tests = selector.split(",").map((s) => s.trim()).filter(Boolean).map((term) => {
    const m = /^(!?)([\w./-]+)$/.exec(term) ?? /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(term);
    if (!m) throw new FakeApiError(400, `unable to parse requirement: ${term} (the fake supports =, ==, !=, k and !k)`);
    if (m.length === 3) return (l: Record<string, string>) => Object.hasOwn(l, m[2]) !== (m[1] === "!");
    return (l: Record<string, string>) => (l[m[1]] === m[3]) !== (m[2] === "!=");
  });
  return (labels) => tests.every((t) => t(labels));
}

export class FakeApi {
  /** Every successful write call made through a client, in order, no-op updates included (reads, seeds and GC deletions are not). */
  readonly writes: WriteRecord[] = [];
  /** Every call made through a client that reached the store, as a server counts requests: reads, 404s and 409s too (injected faults not). */
  readonly calls: WriteRecord[] = [];
  private readonly stores = new Map<string, Map<string, Obj>>();
  private readonly faults: (Fault & { times: number })[] = [];
  private readonly hooks = new Set<(write: WriteRecord) => void>();
  private readonly clock: Clock;
  private readonly garbageCollect: boolean;
  private version = 0;
  private uids = 0;

  constructor(opts: FakeApiOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.garbageCollect = opts.garbageCollect ?? false;
  }

  /** A client for one kind; clients of the same kind share its objects. */
  client<T extends KubeObject>(kind: string, opts: { statusSubresource?: boolean } = {}): ObjectClient<T> {
    const sub = opts.statusSubresource ?? !CORE_KINDS.has(kind);
    const out = (o: Obj) => copy(o) as unknown as T;
    const obj = (o: KubeObject) => o as Obj;
    return {
      // get and delete turn 404 into undefined/false like the real clients, injected 404s included.
      get: (ns, name) => this.call(kind, "get", ns, name, () => out(this.existing(kind, ns, name)))
        .catch((err: unknown) => { if (isNotFound(err)) return undefined; throw err; }),
      create: (ns, body) => this.call(kind, "create", ns, body.metadata.name ?? "", () => out(this.create(kind, sub, ns, obj(body)))),
      replace: (body) => this.call(kind, "replace", ...where(body), () => out(this.replace(kind, sub, obj(body)))),
      // Without a status subresource the status endpoint is the whole object, as in SecretClient.
      replaceStatus: (body) => this.call(kind, "replaceStatus", ...where(body),
        () => out(sub ? this.replaceStatus(kind, obj(body)) : this.replace(kind, sub, obj(body)))),
      patchAnnotations: (ns, name, annotations, rv) => this.call(kind, "patchAnnotations", ns, name,
        () => out(this.patchAnnotations(kind, ns, name, annotations, rv))),
      delete: (ns, name) => this.call(kind, "delete", ns, name, () => this.terminate(kind, this.existing(kind, ns, name)))
        .then(() => true, (err: unknown) => { if (isNotFound(err)) return false; throw err; }),
      list: (ns, selector, fields) => this.call(kind, "list", ns ?? "", "", () => this.list(kind, ns, selector, fields) as unknown as ObjectList<T>),
    };
  }

  /** Makes matching calls fail `times` times (default 1) before they touch the store. */
  failNext(fault: Fault): void {
    this.faults.push({ ...fault, times: fault.times ?? 1 });
  }

  /** Calls fn after every successful client write; returns the unsubscribe function. */
  onWrite(fn: (write: WriteRecord) => void): () => void {
    this.hooks.add(fn);
    return () => void this.hooks.delete(fn);
  }

  resetWrites(): void {
    this.writes.length = 0;
  }

  /** Stores obj as it is (status included), filling uid, creationTimestamp and generation when absent. */
  seed<T extends KubeObject>(kind: string, obj: T): T {
    const o = copy(obj) as unknown as Obj;
    const { namespace = "default", name = "" } = o.metadata;
    o.metadata = { uid: this.uid(), creationTimestamp: this.now(), generation: CORE_KINDS.has(kind) ? undefined : 1,
      ...o.metadata, namespace, resourceVersion: this.bump() };
    this.store(kind).set(key(namespace, name), copy(o));
    return copy(o) as unknown as T;
  }

  /** Reads an object without fault injection or bookkeeping. */
  peek<T extends KubeObject>(kind: string, namespace: string, name: string): T | undefined {
    const o = this.store(kind).get(key(namespace, name));
    return o && (copy(o) as unknown as T);
  }

  private async call<R>(kind: string, verb: Verb, namespace: string, name: string, fn: () => R): Promise<R> {
    const i = this.faults.findIndex((f) => (f.kind ?? kind) === kind && (f.verb ?? verb) === verb
      && (f.namespace ?? namespace) === namespace && (f.name ?? name) === name);
    if (i >= 0) {
      const f = this.faults[i];
      if (--f.times <= 0) this.faults.splice(i, 1);
      if (f.error instanceof Error) throw f.error;
      throw f.error === 404 ? notFound(kind, name) : f.error === 409 ? conflict(kind, name)
        : new FakeApiError(f.error, `injected ${f.error} on ${verb} ${resource(kind)} "${name}"`);
    }
    this.calls.push({ kind, verb, namespace, name });
    const result = fn();
    if (verb !== "get" && verb !== "list") {
      const write = { kind, verb, namespace, name };
      this.writes.push(write);
      for (const hook of this.hooks) hook({ ...write });
    }
    return result;
  }

  private store = (kind: string) => this.stores.get(kind) ?? this.stores.set(kind, new Map()).get(kind)!;

  private bump = () => String(++this.version);
  private uid = () => `00000000-0000-4000-8000-${String(++this.uids).padStart(12, "0")}`;
  /** RFC 3339 to the second, as the server stores metav1.Time. */
  private now = () => this.clock.now().toISOString().replace(/\.\d+Z$/, "Z");

  /** The stored object; 404 when missing, 409 when a given resourceVersion is not the stored one. */
  private existing(kind: string, namespace: string, name: string, resourceVersion?: string): Obj {
    const o = this.store(kind).get(key(namespace, name));
    if (!o) throw notFound(kind, name);
    if (resourceVersion && resourceVersion !== o.metadata.resourceVersion) throw conflict(kind, name);
    return o;
  }

  /** The object a PUT updates. Custom resources refuse an update without resourceVersion; core kinds take it as unconditional. */
  private target(kind: string, body: Obj): Obj {
    const old = this.existing(kind, ...where(body), body.metadata.resourceVersion);
    if (body.metadata.resourceVersion || CORE_KINDS.has(kind)) return old;
    throw new FakeApiError(422, `${resource(kind)} "${where(body)[1]}" is invalid: metadata.resourceVersion: Invalid value: 0: must be specified for an update`);
  }

  private create(kind: string, sub: boolean, namespace: string, body: Obj): Obj {
    const name = body.metadata.name;
    if (!name) throw new FakeApiError(422, `${resource(kind)} is invalid: metadata.name: Required value: name or generateName is required`);
    const other = body.metadata.namespace && body.metadata.namespace !== namespace;
    if (other) throw new FakeApiError(400, "the namespace of the provided object does not match the namespace sent on the request");
    if (this.store(kind).has(key(namespace, name))) throw new FakeApiError(409, `${resource(kind)} "${name}" already exists`, "AlreadyExists");
    if (body.metadata.resourceVersion) throw new FakeApiError(500, "resourceVersion should not be set on objects to be created");
    const o = normalize(kind, copy(body));
    if (sub) delete o.status;
    // The server owns these fields: whatever else the caller sent is overwritten or dropped.
    o.metadata = { ...o.metadata, namespace, uid: this.uid(), creationTimestamp: this.now(), resourceVersion: this.bump(),
      generation: CORE_KINDS.has(kind) ? undefined : 1, deletionTimestamp: undefined };
    this.store(kind).set(key(namespace, name), copy(o));
    return o;
  }

  private replace(kind: string, sub: boolean, body: Obj): Obj {
    const old = this.target(kind, body);
    const next = normalize(kind, copy(body));
    if (sub) next.status = old.status; // PUT on the main resource ignores status
    const { uid, creationTimestamp, deletionTimestamp, generation } = old.metadata;
    next.metadata = { ...next.metadata, namespace: where(body)[0], uid, creationTimestamp, deletionTimestamp, generation };
    // generation counts changes to the desired state: anything outside metadata (and status, when it is a subresource).
    const desired = (o: Obj) => canon({ ...o, metadata: undefined, status: sub ? undefined : o.status });
    if (generation !== undefined && desired(next) !== desired(old)) next.metadata.generation = generation + 1;
    return this.commit(kind, old, next);
  }

  private replaceStatus(kind: string, body: Obj): Obj {
    const old = this.target(kind, body);
    return this.commit(kind, old, { ...old, status: body.status });
  }

  private patchAnnotations(kind: string, namespace: string, name: string, patch: Record<string, string | null>, rv?: string): Obj {
    const old = this.existing(kind, namespace, name, rv);
    const merged = Object.entries({ ...old.metadata.annotations, ...patch }).filter(([, v]) => v !== null);
    const next = copy(old);
    next.metadata.annotations = merged.length ? (Object.fromEntries(merged) as Record<string, string>) : undefined;
    return this.commit(kind, old, next);
  }

  /** Stores an update. Like the server: a no-op keeps its resourceVersion, and a deleting object is removed once its last finalizer goes. */
  private commit(kind: string, old: Obj, next: Obj): Obj {
    next = copy({ ...next, metadata: { ...next.metadata, resourceVersion: old.metadata.resourceVersion } });
    if (canon(next) === canon(old)) return old;
    next.metadata.resourceVersion = this.bump();
    if (next.metadata.deletionTimestamp && !next.metadata.finalizers?.length) this.remove(kind, next);
    else this.store(kind).set(key(...where(next)), copy(next));
    return next;
  }

  /** A delete: immediate without finalizers; with them the server only marks the object (bumping generation). */
  private terminate(kind: string, o: Obj): void {
    if (!o.metadata.finalizers?.length) return this.remove(kind, o);
    if (o.metadata.deletionTimestamp) return;
    const { generation } = o.metadata;
    this.commit(kind, o, { ...o, metadata: { ...o.metadata, deletionTimestamp: this.now(), generation: generation && generation + 1 } });
  }

  private remove(kind: string, o: Obj): void {
    this.store(kind).delete(key(...where(o)));
    if (this.garbageCollect && o.metadata.uid) this.collect(o.metadata.uid);
  }

  /** Deletes (background propagation) the dependents of a removed owner that have no owner left. */
  private collect(uid: string): void {
    const all = [...this.stores].flatMap(([kind, s]) => [...s.values()].map((o) => ({ kind, o })));
    const live = new Set(all.map(({ o }) => o.metadata.uid));
    for (const { kind, o } of all) {
      const refs = o.metadata.ownerReferences ?? [];
      if (this.store(kind).get(key(...where(o))) === o && refs.some((r) => r.uid === uid) && refs.every((r) => !live.has(r.uid))) this.terminate(kind, o);
    }
  }

  private list(kind: string, namespace: string | undefined, selector?: string, fieldSelector?: string): ObjectList<Obj> {
    const matches = parseSelector(selector);
    // The two fields every kind supports (the API server refuses others per kind; tests need no more).
    const fieldsMatch = parseSelector(fieldSelector);
    const items = [...this.store(kind)].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, o]) => o)
      .filter((o) => (!namespace || o.metadata.namespace === namespace) && matches(o.metadata.labels ?? {}) &&
        fieldsMatch({ "metadata.name": o.metadata.name ?? "", "metadata.namespace": o.metadata.namespace ?? "" }));
    return { items: copy(items), metadata: { resourceVersion: String(this.version) } };
  }
}

/** Secrets as the server stores them: stringData folded into data (base64), type defaulted to Opaque. */
function normalize(kind: string, o: Obj): Obj {
  if (kind !== "Secret") return o;
  const s = o as Obj & { data?: Record<string, string>; stringData?: Record<string, string>; type?: string };
  if (s.stringData) {
    s.data = { ...s.data };
    for (const [k, v] of Object.entries(s.stringData)) s.data[k] = Buffer.from(v, "utf8").toString("base64");
    delete s.stringData;
  }
  s.type ??= "Opaque";
  return s;
}
