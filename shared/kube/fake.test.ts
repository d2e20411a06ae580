import type { CertificateRequest, IssuedCertificate, OwnerReference } from "../api/types";
import { FakeClock } from "../controller/clock";
import type { KubeObject } from "./api";
import { isConflict, isInvalid, isNotFound } from "./errors";
import { FakeApi, FakeApiError, type Verb, type WriteRecord } from "./fake";
import type { Secret } from "./secrets";

const NS = "ns1";
const CR = "certificaterequests.certificates.mesh.gloo.solo.io";
const T0 = new Date("2026-01-01T00:00:00Z");

function setup(opts: { garbageCollect?: boolean } = {}) {
  const clock = new FakeClock(T0);
  const fake = new FakeApi({ clock, ...opts });
  return {
    fake,
    clock,
    requests: fake.client<CertificateRequest>("CertificateRequest"),
    issued: fake.client<IssuedCertificate>("IssuedCertificate"),
    secrets: fake.client<Secret>("Secret"),
  };
}

const request = (name: string, extra: Partial<CertificateRequest> = {}): CertificateRequest => ({
  apiVersion: "certificates.mesh.gloo.solo.io/v1",
  kind: "CertificateRequest",
  metadata: { name },
  spec: { certificateSigningRequest: "csr-1" },
  ...extra,
});

const ownedBy = (owner: KubeObject): OwnerReference[] => [
  { apiVersion: "v1", kind: owner.kind ?? "", name: owner.metadata.name ?? "", uid: owner.metadata.uid ?? "" },
];

/** The rejection of p, which must reject. */
async function failure(p: Promise<unknown>): Promise<FakeApiError> {
  try {
    await p;
  } catch (err) {
    return err as FakeApiError;
  }
  throw new Error("expected the call to fail");
}

describe("FakeApi create", () => {
  it("sets the server-owned metadata and drops status (status subresource)", async () => {
    const { requests } = setup();
    const created = await requests.create(NS, request("a", {
      metadata: { name: "a", uid: "mine", generation: 7, creationTimestamp: "2000-01-01T00:00:00Z", labels: { app: "x" } },
      status: { state: "FINISHED" },
    }));
    expect(created.metadata).toEqual({
      name: "a", namespace: NS, labels: { app: "x" }, uid: expect.stringMatching(/^[0-9a-f-]{36}$/),
      creationTimestamp: "2026-01-01T00:00:00Z", resourceVersion: "1", generation: 1,
    });
    expect(created.metadata.uid).not.toBe("mine");
    expect(created.status).toBeUndefined();
    expect(created.spec).toEqual({ certificateSigningRequest: "csr-1" });
  });

  it("keeps status on create when the kind has no status subresource", async () => {
    const { fake } = setup();
    const plain = fake.client<CertificateRequest>("CertificateRequest", { statusSubresource: false });
    expect((await plain.create(NS, request("a", { status: { state: "FAILED" } }))).status).toEqual({ state: "FAILED" });
  });

  it("gives Secrets no generation, folds stringData into data and defaults the type", async () => {
    const { secrets } = setup();
    const s = await secrets.create(NS, { metadata: { name: "s" }, data: { a: "YQ==" }, stringData: { b: "hello" } });
    expect(s.metadata.generation).toBeUndefined();
    expect(s).toMatchObject({ data: { a: "YQ==", b: "aGVsbG8=" }, type: "Opaque" });
    expect(s.stringData).toBeUndefined();
  });

  it("fails with 409 AlreadyExists when the name is taken", async () => {
    const { requests } = setup();
    await requests.create(NS, request("a"));
    const err = await failure(requests.create(NS, request("a")));
    expect(isConflict(err)).toBe(true);
    expect(err.body).toMatchObject({ kind: "Status", reason: "AlreadyExists", message: `${CR} "a" already exists` });
    // The same name in another namespace is another object.
    await expect(requests.create("ns2", request("a"))).resolves.toBeDefined();
  });

  it.each([
    ["no name", "ns1", { name: "" }, 422],
    ["a namespace other than the request's", "ns1", { name: "a", namespace: "ns2" }, 400],
    ["a resourceVersion", "ns1", { name: "a", resourceVersion: "1" }, 500],
  ])("refuses %s", async (_what, ns, metadata, code) => {
    const { requests } = setup();
    expect((await failure(requests.create(ns, request("a", { metadata })))).code).toBe(code);
  });

  it("uses one resourceVersion counter for every write of every kind", async () => {
    const { requests, secrets } = setup();
    const rvs = [
      (await requests.create(NS, request("a"))).metadata.resourceVersion,
      (await secrets.create(NS, { metadata: { name: "s" } })).metadata.resourceVersion,
      (await requests.patchAnnotations(NS, "a", { k: "v" })).metadata.resourceVersion,
      (await secrets.replace({ metadata: { name: "s", namespace: NS }, data: { x: "eA==" } })).metadata.resourceVersion,
    ].map(Number);
    expect(rvs).toEqual([1, 2, 3, 4]);
    expect((await requests.list()).metadata?.resourceVersion).toBe("4");
  });
});

describe("FakeApi copies", () => {
  it("never shares references with the caller", async () => {
    const { fake, requests } = setup();
    const body = request("a");
    const created = await requests.create(NS, body);
    body.spec!.certificateSigningRequest = "changed";
    created.spec!.certificateSigningRequest = "changed";
    const got = await requests.get(NS, "a");
    got!.metadata.labels = { changed: "yes" };
    (await requests.list()).items[0].spec!.certificateSigningRequest = "changed";
    fake.peek<CertificateRequest>("CertificateRequest", NS, "a")!.spec!.certificateSigningRequest = "changed";
    expect(await requests.get(NS, "a")).toEqual({ ...created, spec: { certificateSigningRequest: "csr-1" } });
  });
});

describe("FakeApi missing objects", () => {
  it.each([
    ["replace", (c: Clients) => c.requests.replace(request("x", { metadata: { name: "x", namespace: NS } }))],
    ["replaceStatus", (c: Clients) => c.requests.replaceStatus(request("x", { metadata: { name: "x", namespace: NS } }))],
    ["patchAnnotations", (c: Clients) => c.requests.patchAnnotations(NS, "x", { a: "b" })],
  ])("%s fails with 404 NotFound", async (_verb, call) => {
    const err = await failure(call(setup()));
    expect(isNotFound(err)).toBe(true);
    expect(err.body).toMatchObject({ kind: "Status", reason: "NotFound", message: `${CR} "x" not found` });
    expect(err.message).toContain("HTTP-Code: 404");
    expect(err).toBeInstanceOf(Error);
  });

  it("get returns undefined and delete returns false, as the real clients do", async () => {
    const { requests, secrets } = setup();
    await requests.create(NS, request("x"));
    expect(await requests.get("other", "x")).toBeUndefined();
    expect(await secrets.get(NS, "x")).toBeUndefined(); // another kind's store
    expect(await requests.delete(NS, "y")).toBe(false);
  });
});
type Clients = ReturnType<typeof setup>;

describe("FakeApi resourceVersion preconditions", () => {
  const stale = "1";
  type Write = (c: Clients, rv?: string) => Promise<CertificateRequest>;
  // Without a resourceVersion a PUT on a custom resource is refused (422); a merge patch is unconditional.
  it.each<[string, Write, number | "ok"]>([
    ["replace", (c, rv) => c.requests.replace(request("a", { metadata: { name: "a", namespace: NS, resourceVersion: rv }, spec: {} })), 422],
    ["replaceStatus", (c, rv) => c.requests.replaceStatus(request("a", { metadata: { name: "a", namespace: NS, resourceVersion: rv }, status: { state: "FAILED" } })), 422],
    ["patchAnnotations", (c, rv) => c.requests.patchAnnotations(NS, "a", { k: rv ?? "none" }, rv), "ok"],
  ])("%s fails with 409 on a stale resourceVersion, works on the current one; without one: %p", async (_verb, write, withoutRv) => {
    const c = setup();
    await c.requests.create(NS, request("a"));
    const current = (await c.requests.patchAnnotations(NS, "a", { touched: "1" })).metadata.resourceVersion;
    const err = await failure(write(c, stale));
    expect(isConflict(err)).toBe(true);
    expect(err.body).toMatchObject({
      reason: "Conflict",
      message: `Operation cannot be fulfilled on ${CR} "a": the object has been modified; please apply your changes to the latest version and try again`,
    });
    expect(c.fake.peek<CertificateRequest>("CertificateRequest", NS, "a")?.metadata.resourceVersion).toBe(current);
    const written = await write(c, current);
    expect(Number(written.metadata.resourceVersion)).toBeGreaterThan(Number(current));
    if (withoutRv === "ok") await expect(write(c)).resolves.toBeDefined();
    else expect((await failure(write(c))).body.message).toBe(`${CR} "a" is invalid: metadata.resourceVersion: Invalid value: 0: must be specified for an update`);
  });

  it("a Secret takes a replace without resourceVersion as unconditional", async () => {
    const { secrets } = setup();
    await secrets.create(NS, { metadata: { name: "s" }, data: { a: "YQ==" } });
    expect((await secrets.replace({ metadata: { name: "s", namespace: NS }, data: { b: "Yg==" } })).data).toEqual({ b: "Yg==" });
  });
});

describe("FakeApi generation and status", () => {
  type Write = (c: Clients, cur: CertificateRequest) => Promise<CertificateRequest>;
  it.each<[string, number, Write]>([
    ["spec change through replace", 2, (c, cur) => c.requests.replace({ ...cur, spec: { certificateSigningRequest: "csr-2" } })],
    ["label change through replace", 1, (c, cur) => c.requests.replace({ ...cur, metadata: { ...cur.metadata, labels: { a: "b" } } })],
    ["status change through replace (ignored)", 1, (c, cur) => c.requests.replace({ ...cur, status: { state: "FAILED" } })],
    ["status change through replaceStatus", 1, (c, cur) => c.requests.replaceStatus({ ...cur, status: { state: "FAILED" } })],
    ["annotation patch", 1, (c) => c.requests.patchAnnotations(NS, "a", { a: "b" })],
  ])("%s leaves generation at %i", async (_what, generation, write) => {
    const c = setup();
    const cur = await c.requests.create(NS, request("a"));
    expect((await write(c, cur)).metadata.generation).toBe(generation);
    expect(c.fake.peek<CertificateRequest>("CertificateRequest", NS, "a")?.metadata.generation).toBe(generation);
  });

  it("replace keeps the stored status, uid and creationTimestamp", async () => {
    const { fake, requests, clock } = setup();
    const seeded = fake.seed("CertificateRequest", request("a", { metadata: { name: "a", namespace: NS }, status: { state: "PENDING" } }));
    clock.advance(60_000);
    const replaced = await requests.replace({
      ...seeded, metadata: { ...seeded.metadata, uid: "other", creationTimestamp: "2000-01-01T00:00:00Z" },
      spec: { certificateSigningRequest: "csr-2" }, status: { state: "FAILED", error: "nope" },
    });
    expect(replaced.status).toEqual({ state: "PENDING" });
    expect(replaced.metadata).toMatchObject({ uid: seeded.metadata.uid, creationTimestamp: "2026-01-01T00:00:00Z", generation: 2 });
  });

  it("replaceStatus changes status only", async () => {
    const { requests } = setup();
    const cur = await requests.create(NS, request("a"));
    const updated = await requests.replaceStatus({
      ...cur, metadata: { ...cur.metadata, labels: { a: "b" } }, spec: { certificateSigningRequest: "csr-2" }, status: { state: "FINISHED" },
    });
    expect(updated).toEqual({ ...cur, metadata: { ...cur.metadata, resourceVersion: updated.metadata.resourceVersion }, status: { state: "FINISHED" } });
    // A body without status clears it.
    expect((await requests.replaceStatus({ ...updated, status: undefined })).status).toBeUndefined();
  });

  it("without a status subresource status is a plain field: replace writes it and bumps generation", async () => {
    const { fake } = setup();
    const plain = fake.client<CertificateRequest>("CertificateRequest", { statusSubresource: false });
    const cur = await plain.create(NS, request("a"));
    const updated = await plain.replace({ ...cur, status: { state: "FAILED" } });
    expect(updated).toMatchObject({ status: { state: "FAILED" }, metadata: { generation: 2 } });
    expect((await plain.replaceStatus({ ...updated, spec: {} })).spec).toEqual({}); // the status call is a replace
  });

  it("a write that changes nothing keeps the resourceVersion", async () => {
    const { requests } = setup();
    const cur = await requests.create(NS, request("a", { metadata: { name: "a", annotations: { k: "v" } } }));
    expect((await requests.replace(cur)).metadata.resourceVersion).toBe(cur.metadata.resourceVersion);
    expect((await requests.patchAnnotations(NS, "a", { k: "v" })).metadata.resourceVersion).toBe(cur.metadata.resourceVersion);
  });

  it("key order is no change: it neither bumps generation nor writes", async () => {
    const { issued } = setup();
    const cur = await issued.create(NS, { metadata: { name: "a" }, spec: { hosts: ["h"], org: "o", certOptions: { ttlDays: 1, orgName: "o" } } });
    const same = await issued.replace({ spec: { certOptions: { orgName: "o", ttlDays: 1 }, org: "o", hosts: ["h"] }, metadata: cur.metadata });
    expect(same.metadata).toEqual(cur.metadata);
  });
});

describe("FakeApi patchAnnotations", () => {
  it("merges: sets, overwrites, removes with null and drops an empty map", async () => {
    const { requests } = setup();
    await requests.create(NS, request("a", { metadata: { name: "a", annotations: { keep: "1", change: "1", drop: "1" } } }));
    const patched = await requests.patchAnnotations(NS, "a", { change: "2", drop: null, add: "3", absent: null });
    expect(patched.metadata.annotations).toEqual({ keep: "1", change: "2", add: "3" });
    const emptied = await requests.patchAnnotations(NS, "a", { keep: null, change: null, add: null });
    expect(emptied.metadata.annotations).toBeUndefined();
  });
});

describe("FakeApi list", () => {
  const objects: [string, string, Record<string, string> | undefined][] = [
    [NS, "b", { app: "agent", tier: "web" }],
    [NS, "a", { app: "agent" }],
    [NS, "c", { app: "other", tier: "web" }],
    [NS, "d", undefined],
    ["ns2", "e", { app: "agent" }],
  ];
  it.each([
    [NS, undefined, ["a", "b", "c", "d"]],
    [undefined, undefined, ["a", "b", "c", "d", "e"]],
    ["", undefined, ["a", "b", "c", "d", "e"]],
    [NS, "app=agent", ["a", "b"]],
    [NS, "app==agent", ["a", "b"]],
    [NS, "app!=agent", ["c", "d"]],
    [NS, "tier", ["b", "c"]],
    [NS, "!tier", ["a", "d"]],
    [NS, "app=agent,tier=web", ["b"]],
    [NS, " app = agent , !tier ", ["a"]],
    [undefined, "app=agent", ["a", "b", "e"]],
    ["ns3", undefined, []],
  ])("namespace %p selector %p lists %p", async (ns, selector, names) => {
    const { requests } = setup();
    for (const [namespace, name, labels] of objects) await requests.create(namespace, request(name, { metadata: { name, labels } }));
    expect((await requests.list(ns, selector)).items.map((o) => o.metadata.name)).toEqual(names);
  });

  it("refuses selectors it cannot evaluate instead of ignoring them", async () => {
    const { requests } = setup();
    expect((await failure(requests.list(NS, "app in (a,b)"))).code).toBe(400);
  });
});

describe("FakeApi delete", () => {
  it("removes an object without finalizers", async () => {
    const { requests } = setup();
    await requests.create(NS, request("a"));
    expect(await requests.delete(NS, "a")).toBe(true);
    expect(await requests.get(NS, "a")).toBeUndefined();
  });

  it("with finalizers only sets deletionTimestamp; removing the last finalizer removes the object", async () => {
    const { requests, clock } = setup();
    await requests.create(NS, request("a", { metadata: { name: "a", finalizers: ["x/one", "x/two"] } }));
    clock.advance(5000);
    expect(await requests.delete(NS, "a")).toBe(true);
    const deleting = (await requests.get(NS, "a"))!;
    expect(deleting.metadata).toMatchObject({ deletionTimestamp: "2026-01-01T00:00:05Z", generation: 2 });
    // Deleting again changes nothing.
    expect(await requests.delete(NS, "a")).toBe(true);
    expect((await requests.get(NS, "a"))!.metadata.resourceVersion).toBe(deleting.metadata.resourceVersion);
    const one = await requests.replace({ ...deleting, metadata: { ...deleting.metadata, finalizers: ["x/two"] } });
    expect(one.metadata.deletionTimestamp).toBe("2026-01-01T00:00:05Z");
    expect(await requests.get(NS, "a")).toBeDefined();
    await requests.replace({ ...one, metadata: { ...one.metadata, finalizers: [] } });
    expect(await requests.get(NS, "a")).toBeUndefined();
  });
});

describe("FakeApi garbage collection", () => {
  async function family(gc: boolean) {
    const c = setup({ garbageCollect: gc });
    const owner = await c.issued.create(NS, { kind: "IssuedCertificate", metadata: { name: "owner" } });
    const other = await c.issued.create(NS, { kind: "IssuedCertificate", metadata: { name: "other" } });
    const child = await c.requests.create(NS, request("child", { kind: "CertificateRequest", metadata: { name: "child", ownerReferences: ownedBy(owner) } }));
    await c.secrets.create(NS, { metadata: { name: "grandchild", ownerReferences: ownedBy(child) } });
    await c.secrets.create(NS, { metadata: { name: "shared", ownerReferences: [...ownedBy(owner), ...ownedBy(other)] } });
    await c.secrets.create(NS, { metadata: { name: "unrelated" } });
    const names = async () => [
      ...(await c.issued.list(NS)).items, ...(await c.requests.list(NS)).items, ...(await c.secrets.list(NS)).items,
    ].map((o) => o.metadata.name);
    return { ...c, owner, names };
  }

  it("is off by default", async () => {
    const { issued, names } = await family(false);
    await issued.delete(NS, "owner");
    expect(await names()).toEqual(["other", "child", "grandchild", "shared", "unrelated"]);
  });

  it("removes dependents transitively, but not those with another live owner", async () => {
    const { issued, names, fake } = await family(true);
    fake.resetWrites();
    await issued.delete(NS, "owner");
    expect(await names()).toEqual(["other", "shared", "unrelated"]);
    expect(fake.writes).toEqual([{ kind: "IssuedCertificate", verb: "delete", namespace: NS, name: "owner" }]);
  });

  it("waits for an owner's finalizers, and marks dependents that have finalizers", async () => {
    const { issued, requests, names } = await family(true);
    const owner = await issued.patchAnnotations(NS, "owner", {});
    await issued.replace({ ...owner, metadata: { ...owner.metadata, finalizers: ["x/f"] } });
    const child = (await requests.get(NS, "child"))!;
    await requests.replace({ ...child, metadata: { ...child.metadata, finalizers: ["x/f"] } });
    await issued.delete(NS, "owner");
    expect(await names()).toContain("child");
    const deleting = (await issued.get(NS, "owner"))!;
    await issued.replace({ ...deleting, metadata: { ...deleting.metadata, finalizers: [] } });
    expect((await requests.get(NS, "child"))?.metadata.deletionTimestamp).toBeDefined();
    expect(await names()).toEqual(["other", "child", "grandchild", "shared", "unrelated"]);
  });
});

describe("FakeApi fault injection", () => {
  type Call = (c: Clients) => Promise<unknown>;
  const calls: [Verb, Call][] = [
    ["get", (c) => c.requests.get(NS, "a")],
    ["create", (c) => c.requests.create(NS, request("b"))],
    ["replace", (c) => c.requests.replace({ ...c.fake.peek<CertificateRequest>("CertificateRequest", NS, "a")!, spec: {} })],
    ["replaceStatus", (c) => c.requests.replaceStatus({ ...c.fake.peek<CertificateRequest>("CertificateRequest", NS, "a")!, status: { state: "FAILED" } })],
    ["patchAnnotations", (c) => c.requests.patchAnnotations(NS, "a", { k: "v" })],
    ["delete", (c) => c.requests.delete(NS, "a")],
    ["list", (c) => c.requests.list(NS)],
  ];

  it.each(calls)("%s fails as told, before touching the store, then works", async (verb, call) => {
    const c = setup();
    await c.requests.create(NS, request("a"));
    const before = c.fake.peek("CertificateRequest", NS, "a");
    c.fake.resetWrites();
    c.fake.failNext({ verb, error: 500, times: 2 });
    for (let i = 0; i < 2; i++) {
      const err = await failure(call(c));
      expect(err.code).toBe(500);
      expect(err.body).toMatchObject({ kind: "Status", reason: "InternalError" });
    }
    expect(c.fake.peek("CertificateRequest", NS, "a")).toEqual(before);
    expect(c.fake.peek("CertificateRequest", NS, "b")).toBeUndefined();
    expect(c.fake.writes).toEqual([]);
    await expect(call(c)).resolves.not.toThrow();
  });

  it.each<[string, "fails" | "spares", Parameters<FakeApi["failNext"]>[0]]>([
    ["the call's kind, namespace and name", "fails", { kind: "CertificateRequest", namespace: NS, name: "a", error: 503 }],
    ["another kind", "spares", { kind: "Secret", error: 503 }],
    ["another verb", "spares", { verb: "delete", error: 503 }],
    ["another namespace", "spares", { namespace: "ns2", error: 503 }],
    ["another name", "spares", { name: "b", error: 503 }],
  ])("a fault naming %s %s the call", async (_what, outcome, fault) => {
    const c = setup();
    await c.requests.create(NS, request("a"));
    c.fake.failNext(fault);
    const result = c.requests.patchAnnotations(NS, "a", { k: "v" });
    if (outcome === "fails") expect((await failure(result)).code).toBe(503);
    else await expect(result).resolves.toBeDefined();
  });

  it("throws a given Error as it is and builds real 404/409 errors from codes", async () => {
    const c = setup();
    await c.requests.create(NS, request("a"));
    const boom = new Error("connection reset");
    c.fake.failNext({ verb: "create", error: boom });
    expect(await failure(c.requests.create(NS, request("b")))).toBe(boom);
    c.fake.failNext({ verb: "replace", error: 409 });
    const conflict = await failure(c.requests.replace(request("a", { metadata: { name: "a", namespace: NS } })));
    expect(isConflict(conflict) && conflict.body.message).toContain("the object has been modified");
    c.fake.failNext({ verb: "patchAnnotations", error: 422 });
    expect(isInvalid(await failure(c.requests.patchAnnotations(NS, "a", {})))).toBe(true);
  });

  it("an injected 404 makes get return undefined and delete return false", async () => {
    const c = setup();
    await c.requests.create(NS, request("a"));
    c.fake.failNext({ verb: "get", error: 404 });
    c.fake.failNext({ verb: "delete", error: 404 });
    expect(await c.requests.get(NS, "a")).toBeUndefined();
    expect(await c.requests.delete(NS, "a")).toBe(false);
    expect(await c.requests.get(NS, "a")).toBeDefined();
  });
});

describe("FakeApi write log", () => {
  it("records exactly the successful writes, in order", async () => {
    const { fake, requests, secrets } = setup();
    fake.seed("Secret", { metadata: { name: "seeded", namespace: NS } });
    const seen: WriteRecord[] = [];
    const unsubscribe = fake.onWrite((w) => seen.push(w));
    const cur = await requests.create(NS, request("a"));
    await requests.get(NS, "a");
    await requests.list();
    fake.peek("CertificateRequest", NS, "a");
    await failure(requests.create(NS, request("a"))); // 409: not a write
    await requests.replaceStatus({ ...cur, status: { state: "FINISHED" } });
    await secrets.patchAnnotations(NS, "seeded", { k: "v" });
    unsubscribe();
    await requests.delete(NS, "a");
    const expected: WriteRecord[] = [
      { kind: "CertificateRequest", verb: "create", namespace: NS, name: "a" },
      { kind: "CertificateRequest", verb: "replaceStatus", namespace: NS, name: "a" },
      { kind: "Secret", verb: "patchAnnotations", namespace: NS, name: "seeded" },
    ];
    expect(seen).toEqual(expected);
    expect(fake.writes).toEqual([...expected, { kind: "CertificateRequest", verb: "delete", namespace: NS, name: "a" }]);
    fake.resetWrites();
    expect(fake.writes).toEqual([]);
  });

  it("seed keeps status and given metadata and fills the rest like create", async () => {
    const { fake, requests } = setup();
    const seeded = fake.seed("CertificateRequest", request("a", {
      metadata: { name: "a", namespace: NS, generation: 3 }, status: { state: "FINISHED", observedGeneration: 2 },
    }));
    expect(seeded.metadata).toMatchObject({ generation: 3, resourceVersion: "1", creationTimestamp: "2026-01-01T00:00:00Z" });
    expect(await requests.get(NS, "a")).toEqual(seeded);
    const secret = fake.seed<Secret>("Secret", { metadata: { name: "s" } });
    expect(secret.metadata.namespace).toBe("default");
    expect(secret.metadata.generation).toBeUndefined();
  });
});
