// The reads of `cert-agent status`, on the in-memory API: one LIST, a GET per distinct object, a few at
// a time; a failed GET becomes part of the row, a failed LIST ends the command.
import { issuedCertificate, podBounceDirective } from "../../shared/api/builders";
import type { IssuedCertificate, PodBounceDirective } from "../../shared/api/types";
import { FakeApi } from "../../shared/kube/fake";
import type { Secret } from "../../shared/kube/secrets";
import { describeApiError, gather, StatusReadError, type StatusReaders } from "./gather";

function setUp() {
  const api = new FakeApi();
  const readers: StatusReaders & { gets: string[] } = {
    issued: api.client<IssuedCertificate>("IssuedCertificate"),
    secrets: { get: (ns, name) => (readers.gets.push(`secret ${ns}/${name}`), api.client<Secret>("Secret").get(ns, name)) },
    directives: { get: (ns, name) => (readers.gets.push(`directive ${ns}/${name}`), api.client<PodBounceDirective>("PodBounceDirective").get(ns, name)) },
    gets: [],
  };
  const ic = (namespace: string, name: string, target: string, directive?: string) =>
    api.seed("IssuedCertificate", issuedCertificate({ name, namespace, target: { name: target, namespace: "istio-system" },
      ...(directive ? { podBounceDirective: { name: directive, namespace: "" } } : {}) }));
  const secret = (name: string) => api.seed<Secret>("Secret", { metadata: { name, namespace: "istio-system" }, data: {} });
  return { api, readers, ic, secret };
}

describe("gather", () => {
  it("reads one namespace, or all; each target and directive once, however many name it", async () => {
    const { readers, ic, secret, api } = setUp();
    ic("a", "one", "cacerts", "bounce");
    ic("a", "two", "cacerts", "bounce");
    ic("b", "three", "other");
    secret("cacerts");
    api.seed("PodBounceDirective", podBounceDirective("bounce", "a", []));

    const inA = await gather(readers, "a");
    expect(inA.map((i) => i.ic.metadata.name).sort()).toEqual(["one", "two"]);
    expect(inA[0].target).toMatchObject({ state: "found", object: { metadata: { name: "cacerts" } } });
    expect(inA[0].directive).toMatchObject({ state: "found", object: { metadata: { name: "bounce", namespace: "a" } } });
    expect(readers.gets.sort()).toEqual(["directive a/bounce", "secret istio-system/cacerts"]);

    readers.gets.length = 0;
    const all = await gather(readers, undefined);
    expect(all.map((i) => i.ic.metadata.name).sort()).toEqual(["one", "three", "two"]);
    const three = all.find((i) => i.ic.metadata.name === "three")!;
    expect(three.target).toEqual({ state: "missing" });
    expect(three.directive).toBeUndefined();
    expect(readers.gets.sort()).toEqual(["directive a/bounce", "secret istio-system/cacerts", "secret istio-system/other"]);
  });

  it("makes no GET for a spec that names no target", async () => {
    const { readers, api } = setUp();
    const obj = issuedCertificate({ name: "bare", namespace: "a" });
    delete obj.spec!.issuedCertificateSecret;
    api.seed("IssuedCertificate", obj);
    const [input] = await gather(readers, "a");
    expect(input.target).toBeUndefined();
    expect(readers.gets).toEqual([]);
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
  });

  it("has at most `concurrency` GETs in flight", async () => {
    const { api } = setUp();
    for (let i = 0; i < 20; i++) api.seed("IssuedCertificate", issuedCertificate({ name: `ic${i}`, namespace: "a", target: { name: `s${i}`, namespace: "a" } }));
    let inFlight = 0;
    let most = 0;
    const readers: StatusReaders = {
      issued: api.client<IssuedCertificate>("IssuedCertificate"),
      secrets: {
        get: async () => {
          most = Math.max(most, ++inFlight);
          await new Promise((r) => setTimeout(r, 5));
          inFlight -= 1;
          return undefined;
        },
      },
      directives: { get: async () => undefined },
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
