// Text we copy from others (an issuer's error, an API server's message) into status, Events and logs:
// bounded and printable. An issuer answered with 500 KB of text holding NUL and ESC; copied whole,
// it made a 500 KB log line and an Event that broke `kubectl get events -o yaml` for its namespace.

/** What we keep of a foreign text, in characters (Event notes are limited to 1 KB too). */
export const MAX_FOREIGN_TEXT = 1024;

// C0 and C1 control characters, DEL and the Unicode line separators: matching them is the point.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/** Whether text holds a control character (a NUL, a newline, an ANSI escape...). */
export function hasControlCharacters(text: string): boolean {
  CONTROL.lastIndex = 0;
  return CONTROL.test(text);
}

/**
 * One printable line of at most `max` characters: control characters (newlines included) become
 * \uXXXX escapes, and a longer text is cut with a note of how much was left out.
 */
export function boundedText(text: string, max = MAX_FOREIGN_TEXT): string {
  const printable = text.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  if (printable.length <= max) return printable;
  const note = ` ... (${printable.length - max} more characters)`;
  return printable.slice(0, Math.max(0, max - note.length)) + note;
}
