// API errors about one IssuedCertificate that a retry does not cure become FAILED with a typed reason,
// a Warning Event and a log line, and are retried with the FAILED backoff; before, the controller
// retried them forever while status said nothing (the cause was only in the log). A 409 stays a quick
// requeue; errors that usually pass (5xx, 429, no answer) stay the controller's rate-limited retry,
// until the same IssuedCertificate has met them API_FAILURES_BEFORE_FAILED times in a row.
import type { ObjectRef } from "../shared/api/types";
import { errorMessage } from "../shared/controller/errors";
import type { KubeObject, ObjectClient } from "../shared/kube/api";
import { statusOf } from "../shared/kube/errors";
import { Reason } from "./constants";

/** Consecutive passes of one IssuedCertificate ending in a transient API error before it goes FAILED. */
export const API_FAILURES_BEFORE_FAILED = 5;

export type ApiVerb = "get" | "create" | "replace" | "replaceStatus" | "patchAnnotations" | "delete" | "list";

export interface ApiRequest {
  verb: ApiVerb;
  kind: string;
  namespace: string;
  name: string;
}

/** A failed API request, saying which one it was: the FAILED message names it. */
export class ApiRequestError extends Error {
  override readonly name = "ApiRequestError";
  /** The HTTP status, undefined when there was no answer; `code` like client-node's, so isConflict() works. */
  readonly code: number | undefined;

  constructor(readonly request: ApiRequest, cause: unknown) {
    super(`${describeRequest(request)}: ${errorMessage(cause)}`, { cause });
    this.code = statusOf(cause);
  }
}

const describeRequest = (r: ApiRequest) => `${r.verb} ${r.kind} ${r.namespace ? `${r.namespace}/` : ""}${r.name}`;

/** The same client, its errors wrapped in ApiRequestError (a get's or delete's 404 stays an answer). */
export function namingRequests<T extends KubeObject>(client: ObjectClient<T>, kind: string): ObjectClient<T> {
  const rethrow = (verb: ApiVerb, namespace = "", name = "") => (err: unknown): never => {
    throw new ApiRequestError({ verb, kind, namespace, name }, err);
  };
  return {
    get: (ns, name) => client.get(ns, name).catch(rethrow("get", ns, name)),
    create: (ns, body) => client.create(ns, body).catch(rethrow("create", ns, body.metadata.name)),
    replace: (body) => client.replace(body).catch(rethrow("replace", body.metadata.namespace, body.metadata.name)),
    replaceStatus: (body) => client.replaceStatus(body).catch(rethrow("replaceStatus", body.metadata.namespace, body.metadata.name)),
    patchAnnotations: (ns, name, annotations, rv) => client.patchAnnotations(ns, name, annotations, rv).catch(rethrow("patchAnnotations", ns, name)),
    delete: (ns, name) => client.delete(ns, name).catch(rethrow("delete", ns, name)),
    list: (ns, selector, fields) => client.list(ns, selector, fields).catch(rethrow("list", ns)),
  };
}

export type ApiFailure =
  /** 409: someone else wrote first; read everything again soon. */
  | { kind: "conflict" }
  /** Likely to pass (5xx, 429, no answer): the controller's rate-limited retry. */
  | { kind: "transient" }
  /** The same request would get the same answer, or it kept failing: FAILED, retried with the FAILED backoff. */
  | { kind: "fail"; reason: Reason; message: string };

/**
 * What to do about a failed request of a pass over the IssuedCertificate whose target is `target`,
 * after `inARow` consecutive passes (this one included) that ended in a transient error.
 */
export function classifyApiFailure(err: ApiRequestError, target: ObjectRef | undefined, inARow: number): ApiFailure {
  const { request } = err;
  const code = err.code;
  const isTarget = target !== undefined && request.kind === "Secret" && request.namespace === target.namespace && request.name === target.name;
  // Every write of the target is one request of the whole bundle: a refused one changed nothing.
  const unchanged = isTarget && request.verb !== "get" ? "; nothing was written: the target secret is written whole, in one request" : "";
  if (code === 409) return { kind: "conflict" };
  // A create answers 404 only when the namespace does not exist.
  if (code === 404 && request.verb === "create" && isTarget) {
    return { kind: "fail", reason: Reason.TargetNamespaceMissing,
      message: `namespace ${request.namespace} of the target secret does not exist (${err.message})${unchanged}; create it or change spec.issuedCertificateSecret` };
  }
  if (code === 403) {
    return { kind: "fail", reason: Reason.APIRequestForbidden,
      message: `the API server forbids ${describeRequest(request)} (${err.message})${unchanged}; check the agent's RBAC, or whether the namespace is being deleted` };
  }
  // 400 Bad Request, 413 Request Entity Too Large ("etcdserver: request is too large"), 422 Invalid.
  if (code === 400 || code === 413 || code === 422) {
    return { kind: "fail", reason: Reason.APIRequestRefused, message: `the API server refused ${describeRequest(request)} (${err.message})${unchanged}` };
  }
  if (inARow < API_FAILURES_BEFORE_FAILED) return { kind: "transient" };
  return { kind: "fail", reason: Reason.APIRequestFailed,
    message: `${describeRequest(request)} failed in ${inARow} passes in a row, the last time with: ${err.message}${unchanged}` };
}
