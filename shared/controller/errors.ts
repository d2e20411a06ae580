// Error text for logs, Events and status: one bounded, printable line, the API server's own message
// when there is one.
import { boundedText } from "../text/bounded";

/** A one-line message; client-node ApiExceptions carry the server's message in body. */
export function errorMessage(err: unknown): string {
  return boundedText(rawMessage(err));
}

function rawMessage(err: unknown): string {
  if (err && typeof err === "object") {
    const e = err as { code?: number; body?: unknown; message?: string };
    if (typeof e.code === "number" && e.body !== undefined) {
      const body = typeof e.body === "string" ? safeParse(e.body) : e.body;
      const message = (body as { message?: string } | undefined)?.message;
      if (message) return `${e.code}: ${message}`;
    }
    if (typeof e.message === "string") return e.message.split("\n")[0];
  }
  return String(err);
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return { message: text.slice(0, 200) };
  }
}
