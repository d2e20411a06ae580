// Classifies errors from @kubernetes/client-node (ApiException carries the HTTP status in .code).

/** The HTTP status of an API error; undefined when there was no answer (connection refused, a timeout). */
export function statusOf(err: unknown): number | undefined {
  if (err && typeof err === "object") {
    const e = err as { code?: unknown; statusCode?: unknown };
    if (typeof e.code === "number") return e.code;
    if (typeof e.statusCode === "number") return e.statusCode;
  }
  return undefined;
}

export const isNotFound = (err: unknown) => statusOf(err) === 404;
/** 409: a resourceVersion conflict on update, or AlreadyExists on create. */
export const isConflict = (err: unknown) => statusOf(err) === 409;
export const isGone = (err: unknown) => statusOf(err) === 410;
export const isInvalid = (err: unknown) => statusOf(err) === 422;
