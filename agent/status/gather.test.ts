// The reads of `cert-agent status`, on the in-memory API: one LIST, a GET per distinct object, a few at
// a time; a failed GET becomes part of the row, a failed LIST ends the command.
import { issuedCertificate, podBounceDirective } from "../../shared/api/builders";
import { FakeApi } from "../../shared/kube/fake";
import type { Secret } from "../../shared/kube/secrets";
import { ISSUED_SECRET_TYPE, MANAGED_BY_LABEL, MANAGED_BY_VALUE } from "../constants";
import { describeApiError, gather, StatusReadError, type StatusReaders } from "./gather";
import { fakeStatusReaders } from "./testing";

function setUp() {
  const api = new FakeApi();
  const fake = fakeStatusReaders(api);
  /** Every read of a secret or directive, in order: "get <kind> ns/name" or "list ns". */
  const reads: string[] = [];
  const readers: StatusReaders = {
    issued: fake.issued,
    secrets: { get: (ns, name) => (reads.push(`get secret ${ns}/${name}`), fake.secrets.get(ns, name)) },
    listTargets: (ns) => (reads.push(`list ${ns}`), fake.listTargets(ns)),
    directives: { get: (ns, name) => (reads.push(`get directive ${ns}/${name}`), fake.directives.get(ns, name)) },
  };
  const ic = (namespace: string, name: string, target: string, directive?: string, targetNamespace = "istio-system") =>
    api.seed("IssuedCertificate", issuedCertificate({ name, namespace, target: { name: target, namespace: targetNamespace },
      ...(directive ? { podBounceDirective: { name: directive, namespace: "" } } : {}) }));
  /** A target secret as the agent writes it (label and type), or a foreign one. */
  const secret = (name: string, o: { namespace?: string; ours?: boolean } = {}) => api.seed<Secret>("Secret", {
    metadata: { name, namespace: o.namespace ?? "istio-system", ...(o.ours === false ? {} : { labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } }) },
    ...(o.ours === false ? {} : { type: ISSUED_SECRET_TYPE }),
    data: {},
  });
  return { api, readers, reads, ic, secret };
}

describe("gather", () => {
  it("reads one namespace, or all; each target and directive once, however many name it", async () => {
    const { readers, reads, ic, secret, api } = setUp();
    ic("a", "one", "cacerts", "bounce");
    ic("a", "two", "cacerts", "bounce");
    ic("b", "three", "other");
    secret("cacerts");
    api.seed("PodBounceDirective", podBounceDirective("bounce", "a", []));

    const inA = await gather(readers, "a");
    expect(inA.map((i) => i.ic.metadata.name).sort()).toEqual(["one", "two"]);
    expect(inA[0].target).toMatchObject({ state: "found", object: { metadata: { name: "cacerts" } } });
    expect(inA[0].directive).toMatchObject({ state: "found", object: { metadata: { name: "bounce", namespace: "a" } } });
    expect(reads.sort()).toEqual(["get directive a/bounce", "get secret istio-system/cacerts"]);

    reads.length = 0;
    const all = await gather(readers, undefined);
    expect(all.map((i) => i.ic.metadata.name).sort()).toEqual(["one", "three", "two"]);
    const three = all.find((i) => i.ic.metadata.name === "three")!;
    expect(three.target).toEqual({ state: "missing" });
    expect(three.directive).toBeUndefined();
    // Two targets in istio-system: one LIST of ours; "other" is not among them, so a GET tells missing from foreign.
    expect(reads.sort()).toEqual(["get directive a/bounce", "get secret istio-system/other", "list istio-system"]);
  });

  it("one LIST where several targets share a namespace; a GET for what it does not hold (missing, foreign)", async () => {
    const { readers, reads, ic, secret } = setUp();
    for (let i = 0; i < 5; i++) {
      ic("a", `ic${i}`, `ours${i}`);
      secret(`ours${i}`);
    }
    ic("a", "hand", "hand-plugged");
    secret("hand-plugged", { ours: false });
    ic("a", "gone", "nothing");
    ic("a", "alone", "cacerts", undefined, "elsewhere");
    secret("cacerts", { namespace: "elsewhere" });
    const inputs = await gather(readers, "a");
    const byName = new Map(inputs.map((i) => [i.ic.metadata.name, i.target]));
    for (let i = 0; i < 5; i++) expect(byName.get(`ic${i}`)).toMatchObject({ state: "found", object: { metadata: { name: `ours${i}` } } });
    expect(byName.get("hand")).toMatchObject({ state: "found", object: { metadata: { name: "hand-plugged" } } });
    expect(byName.get("gone")).toEqual({ state: "missing" });
    expect(byName.get("alone")).toMatchObject({ state: "found", object: { metadata: { name: "cacerts", namespace: "elsewhere" } } });
    // A single target in its namespace is one GET: a LIST would cost as much and return more.
    expect(reads.sort()).toEqual(["get secret elsewhere/cacerts", "get secret istio-system/hand-plugged", "get secret istio-system/nothing", "list istio-system"]);
  });

  it("a LIST that is refused (a user who may get secrets but not list them) falls back to GETs: the same answer", async () => {
    const { readers, reads, ic, secret, api } = setUp();
    ic("a", "x", "one");
    ic("a", "y", "two");
    secret("one");
    secret("two");
    api.failNext({ kind: "Secret", verb: "list", error: 403 });
    const inputs = await gather(readers, "a");
    expect(inputs.map((i) => i.target?.state)).toEqual(["found", "found"]);
    expect(reads.sort()).toEqual(["get secret istio-system/one", "get secret istio-system/two", "list istio-system"]);
  });

  it("makes no GET for a spec that names no target", async () => {
    const { readers, reads, api } = setUp();
    const obj = issuedCertificate({ name: "bare", namespace: "a" });
    delete obj.spec!.issuedCertificateSecret;
    api.seed("IssuedCertificate", obj);
    const [input] = await gather(readers, "a");
    expect(input.target).toBeUndefined();
    expect(reads).toEqual([]);
  });

  it("a failed GET is part of the row, as one line", async () => {
    const { readers, ic, api } = setUp();
    ic("a", "one", "cacerts", "bounce");
    api.failNext({ kind: "Secret", verb: "get", error: 403 });
    api.failNext({ kind: "PodBounceDirective", verb: "get", error: 500 });
    const [input] = await gather(readers, "a");
    expect(input.target).toEqual({ state: "error", message: 'HTTP 403 Forbidden: injected 403 on get secrets "cacerts"' });
    expect(input.directive).toEqual({ state: "error", message: 'HTTP 500 InternalError: injected 500 on get podbouncedirectives.certificates.mesh.gloo.solo.io "bounce"' });
  });

  it.each<[number | Error, string | undefined, string]>([
    [403, "a", 'cannot list IssuedCertificates in namespace a: HTTP 403 Forbidden: injected 403 on list issuedcertificates.certificates.mesh.gloo.solo.io ""'],
    [404, undefined, "cannot list IssuedCertificates in all namespaces: the API certificates.mesh.gloo.solo.io/v1 issuedcertificates is not served (are the CRDs installed?)"],
    [new Error("request to https://127.0.0.1:1/apis failed, reason: connect ECONNREFUSED 127.0.0.1:1\n    at somewhere"), "a",
      "cannot list IssuedCertificates in namespace a: request to https://127.0.0.1:1/apis failed, reason: connect ECONNREFUSED 127.0.0.1:1"],
  ])("a failed LIST (%s) ends the command with one line", async (error, namespace, message) => {
    const { readers, api } = setUp();
    api.failNext({ kind: "IssuedCertificate", verb: "list", error });
    const failure = gather(readers, namespace);
    await expect(failure).rejects.toBeInstanceOf(StatusReadError);
    await expect(failure).rejects.toThrow(message);
    await expect(failure).rejects.toHaveProperty("name", "StatusReadError");
  });

  it("has at most `concurrency` GETs in flight", async () => {
    const { api } = setUp();
    for (let i = 0; i < 20; i++) api.seed("IssuedCertificate", issuedCertificate({ name: `ic${i}`, namespace: "a", target: { name: `s${i}`, namespace: "a" } }));
    let inFlight = 0;
    let most = 0;
    const readers: StatusReaders = {
      ...fakeStatusReaders(api),
      secrets: {
        get: async () => {
          most = Math.max(most, ++inFlight);
          await new Promise((r) => setTimeout(r, 5));
          inFlight -= 1;
          return undefined;
        },
      },
    };
    const inputs = await gather(readers, "a", 3);
    expect(inputs).toHaveLength(20);
    expect(inputs.every((i) => i.target?.state === "missing")).toBe(true);
    expect(most).toBe(3);
  });
});

describe("describeApiError", () => {
  it.each<[unknown, string]>([
    [{ code: 403, body: JSON.stringify({ kind: "Status", reason: "Forbidden", message: 'secrets "cacerts" is forbidden: User "bob" cannot get resource "secrets"' }) },
      'HTTP 403 Forbidden: secrets "cacerts" is forbidden: User "bob" cannot get resource "secrets"'],
    [{ code: 401, body: undefined }, "HTTP 401 Unauthorized"],
    [{ code: 502, body: "<html>bad gateway</html>" }, "HTTP 502"],
    [new Error("first line\nsecond line"), "first line"],
    [new TypeError("fetch failed", { cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" }) }), "fetch failed: connect ECONNREFUSED 127.0.0.1:1"],
    ["a string", "a string"],
  ])("%j", (err, text) => {
    expect(describeApiError(err)).toBe(text);
  });
});
