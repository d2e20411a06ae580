// Which API errors become FAILED (and with which reason), which stay a retry, and the wrapper that
// names the failed request.
import { FakeApi, FakeApiError } from "../shared/kube/fake";
import type { Secret } from "../shared/kube/secrets";
import type { ObjectRef } from "../shared/api/types";
import { API_FAILURES_BEFORE_FAILED, ApiRequest, ApiRequestError, classifyApiFailure, namingRequests } from "./api-failures";
import { hasControlCharacters } from "../shared/text/bounded";
import { Reason } from "./constants";

const TARGET = { namespace: "istio-system", name: "cacerts" };
const request = (verb: ApiRequest["verb"], kind = "Secret", namespace = TARGET.namespace, name = TARGET.name): ApiRequest => ({ verb, kind, namespace, name });
const error = (r: ApiRequest, cause: unknown) => new ApiRequestError(r, cause);
const NO_ANSWER = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:6443"), { code: "ECONNREFUSED" });

describe("classifyApiFailure", () => {
  /** The last column: the kind, or for a FAILED its reason. */
  const rows: [string, ApiRequest, unknown, number, "conflict" | "transient" | Reason][] = [
    ["409 is a conflict (requeue)", request("replace"), 409, 1, "conflict"],
    ["409 stays a conflict however often", request("replaceStatus", "IssuedCertificate", "mesh", "ic"), 409, 99, "conflict"],
    ["404 on creating the target: its namespace is missing", request("create"), 404, 1, Reason.TargetNamespaceMissing],
    ["404 on creating something else is no missing target namespace (transient)", request("create", "CertificateRequest", "mesh", "ic"), 404, 1, "transient"],
    ["404 on replacing the target (deleted meanwhile) is transient", request("replace"), 404, 1, "transient"],
    ["403 is forbidden", request("get"), 403, 1, Reason.APIRequestForbidden],
    ["400 is refused", request("replace"), 400, 1, Reason.APIRequestRefused],
    ["413 is refused", request("create"), 413, 1, Reason.APIRequestRefused],
    ["422 is refused", request("patchAnnotations", "IssuedCertificate", "mesh", "ic"), 422, 1, Reason.APIRequestRefused],
    ["500 is transient at first", request("create"), 500, 1, "transient"],
    [`503 is transient up to pass ${API_FAILURES_BEFORE_FAILED - 1} in a row`, request("create"), 503, API_FAILURES_BEFORE_FAILED - 1, "transient"],
    [`503 in ${API_FAILURES_BEFORE_FAILED} passes in a row fails`, request("create"), 503, API_FAILURES_BEFORE_FAILED, Reason.APIRequestFailed],
    ["429 is transient at first", request("get"), 429, 1, "transient"],
    ["no answer (connection refused) is transient at first", request("get"), NO_ANSWER, 1, "transient"],
    [`no answer in ${API_FAILURES_BEFORE_FAILED} passes in a row fails`, request("get"), NO_ANSWER, API_FAILURES_BEFORE_FAILED, Reason.APIRequestFailed],
  ];
  it.each(rows)("%s", (_name, r, cause, inARow, expected) => {
    const failure = classifyApiFailure(error(r, typeof cause === "number" ? new FakeApiError(cause, "the answer") : cause), TARGET, inARow);
    expect(failure.kind === "fail" ? failure.reason : failure.kind).toBe(expected);
  });

  it("says that a refused write of the target wrote nothing, and only for the target", () => {
    const refused = (r: ApiRequest) => classifyApiFailure(error(r, new FakeApiError(413, "etcdserver: request is too large")), TARGET, 1);
    expect(refused(request("replace"))).toEqual({ kind: "fail", reason: Reason.APIRequestRefused,
      message: "the API server refused replace Secret istio-system/cacerts (replace Secret istio-system/cacerts: 413: etcdserver: request is too large); " +
        "nothing was written: the target secret is written whole, in one request" });
    expect(refused(request("create", "Secret", "mesh", "ic"))).toEqual({ kind: "fail", reason: Reason.APIRequestRefused,
      message: "the API server refused create Secret mesh/ic (create Secret mesh/ic: 413: etcdserver: request is too large)" });
  });

  // Only a Secret with the target's namespace and name is the target: a 404 on creating anything else
  // is no missing target namespace, and a refused write of it says nothing about the bundle.
  it.each<[string, ApiRequest, ObjectRef | undefined]>([
    ["no target known", request("create"), undefined],
    ["another kind with the target's namespace and name", request("create", "ConfigMap"), TARGET],
    ["a Secret of that name in another namespace", request("create", "Secret", "mesh"), TARGET],
    ["a Secret of another name in that namespace", request("create", "Secret", TARGET.namespace, "istio-ca-secret"), TARGET],
  ])("not the target: %s", (_what, r, target) => {
    expect(classifyApiFailure(error(r, new FakeApiError(404, "not found")), target, 1)).toEqual({ kind: "transient" });
    const refused = classifyApiFailure(error(r, new FakeApiError(413, "too large")), target, 1);
    expect(refused.kind === "fail" && refused.message).toBe(`the API server refused create ${r.kind} ${r.namespace}/${r.name} (create ${r.kind} ${r.namespace}/${r.name}: 413: too large)`);
  });

  it("names the missing namespace and what to do", () => {
    expect(classifyApiFailure(error(request("create"), new FakeApiError(404, 'namespaces "istio-system" not found')), TARGET, 1)).toEqual({
      kind: "fail", reason: Reason.TargetNamespaceMissing,
      message: 'namespace istio-system of the target secret does not exist (create Secret istio-system/cacerts: 404: namespaces "istio-system" not found); ' +
        "nothing was written: the target secret is written whole, in one request; create it or change spec.issuedCertificateSecret",
    });
  });

  it("an API server's message is one bounded, printable line", () => {
    const failure = classifyApiFailure(error(request("create"), new FakeApiError(422, `bad\u0000\n${"x".repeat(100_000)}`)), TARGET, 1);
    expect(failure.kind === "fail" && failure.message.length).toBeLessThan(1_300);
    expect(failure.kind === "fail" && hasControlCharacters(failure.message)).toBe(false);
  });
});

describe("namingRequests", () => {
  it("wraps a failed request's error with the request, keeping the HTTP status as code; a get's 404 stays undefined", async () => {
    const api = new FakeApi();
    const secrets = namingRequests(api.client<Secret>("Secret"), "Secret");
    expect(await secrets.get("istio-system", "cacerts")).toBeUndefined();
    api.failNext({ verb: "create", error: 403 });
    const err = await secrets.create("istio-system", { metadata: { name: "cacerts" } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiRequestError);
    expect(err).toMatchObject({ code: 403, request: request("create"), message: expect.stringMatching(/^create Secret istio-system\/cacerts: 403: /) });
    api.failNext({ verb: "list", error: NO_ANSWER });
    expect(await secrets.list().catch((e: unknown) => e)).toMatchObject({ code: undefined, request: { verb: "list", kind: "Secret", namespace: "", name: "" } });
  });

  it("is an Error named ApiRequestError that keeps its cause, and names a cluster-scoped request without a namespace", () => {
    const cause = new FakeApiError(403, "forbidden");
    const err = error(request("get", "Namespace", "", "istio-system"), cause);
    expect(err).toBeInstanceOf(Error);
    expect(err.name).toBe("ApiRequestError");
    expect(err.cause).toBe(cause);
    expect(err.message).toBe("get Namespace istio-system: 403: forbidden");
    expect(String(err)).toBe("ApiRequestError: get Namespace istio-system: 403: forbidden");
  });
});
