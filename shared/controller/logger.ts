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

const redact = winston.format((info) => {
  for (const [k, v] of Object.entries(info)) {
    if (typeof v === "string") (info as Record<string, unknown>)[k] = redactSecrets(v);
  }
  return info;
});

export function createLogger(level: LogLevel = "info", stream?: NodeJS.WritableStream): winston.Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(redact(), winston.format.timestamp(), winston.format.json()),
    transports: [stream ? new winston.transports.Stream({ stream }) : new winston.transports.Console()],
  });
}
