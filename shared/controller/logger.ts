// One JSON line per log record (winston), to stdout. Callers pass structured fields, never key
// material: redactSecrets() is a last line of defence for error text that came from elsewhere.
import winston from "winston";

export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const PEM_BLOCK = /-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(-----END [A-Z0-9 ]+-----|$)/g;

/** Replaces any PEM block in text: error messages from parsers may echo their input. */
export function redactSecrets(text: string): string {
  return text.replace(PEM_BLOCK, "[redacted PEM]");
}

/** Deeper than this, a field is replaced rather than walked (and never written unredacted). */
const MAX_DEPTH = 12;

/**
 * A copy of a field value as JSON would write it, with PEM blocks redacted at any depth. Errors
 * become { name, message, cause, ...their own fields } (JSON.stringify would write `{}` and drop the
 * message, yet keep enumerable fields such as an ApiException's body). Callers' objects are never
 * modified.
 */
function redactValue(value: unknown, depth: number, seen: WeakSet<object>): unknown {
  if (typeof value === "string") return redactSecrets(value);
  if (value === null || typeof value !== "object") return value;
  if (seen.has(value)) return "[Circular]";
  if (depth >= MAX_DEPTH) return "[too deep]";
  seen.add(value);
  try {
    if (value instanceof Error) {
      const fields: Record<string, unknown> = { name: value.name, message: value.message };
      if (value.cause !== undefined) fields.cause = value.cause;
      for (const [k, v] of Object.entries(value)) if (k !== "stack") fields[k] = v;
      return redactValue(fields, depth + 1, seen);
    }
    const json = (value as { toJSON?: unknown }).toJSON;
    if (typeof json === "function") return redactValue(json.call(value), depth + 1, seen);
    if (Array.isArray(value)) return value.map((v) => redactValue(v, depth + 1, seen));
    const copy: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) copy[k] = redactValue(v, depth + 1, seen);
    return copy;
  } finally {
    seen.delete(value);
  }
}

// `info` is winston's copy of the record for log.<level>(message, fields) (and errors() copies a
// logged Error), so its top-level fields are replaced in place, keeping its symbol keys (level,
// splat); nested values are replaced by redacted copies.
const redact = winston.format((info) => {
  for (const [k, v] of Object.entries(info)) {
    (info as Record<string, unknown>)[k] = redactValue(v, 0, new WeakSet());
  }
  return info;
});

export function createLogger(level: LogLevel = "info", stream?: NodeJS.WritableStream): winston.Logger {
  return winston.createLogger({
    level,
    // errors(): `log.error(err)` would otherwise write no message at all (an Error's message is not
    // enumerable), and redact() would modify the caller's Error in place.
    format: winston.format.combine(winston.format.errors(), redact(), winston.format.timestamp(), winston.format.json()),
    transports: [stream ? new winston.transports.Stream({ stream }) : new winston.transports.Console()],
  });
}
