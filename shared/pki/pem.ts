import { PkiError } from "./errors";

export interface PemBlock {
  label: string;
  der: Uint8Array;
}

export interface PemDocument {
  blocks: PemBlock[];
  /** Non-whitespace text outside any block (openssl and Go ignore it; callers decide whether to). */
  hasStrayText: boolean;
}

// Labels are restricted to the RFC 7468 character set so that echoing one in an error is harmless.
const BLOCK = /-----BEGIN ([A-Z0-9 ]{1,40})-----([\s\S]*?)-----END ([A-Z0-9 ]{1,40})-----/g;
const BASE64_BODY = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Splits text into PEM blocks. A block with RFC 1421 headers (legacy encrypted keys), a bad base64 body
 * or mismatched BEGIN/END labels is a PkiError whose message names only the label, never the body.
 */
export function decodePem(text: string): PemDocument {
  const blocks: PemBlock[] = [];
  let outside = "";
  let consumedUpTo = 0;
  for (const match of text.matchAll(BLOCK)) {
    const [whole, label, body, endLabel] = match as unknown as [string, string, string, string];
    outside += text.slice(consumedUpTo, match.index);
    consumedUpTo = match.index + whole.length;
    if (label !== endLabel) throw new PkiError(`PEM block "${label}" ends with a different label`);
    if (body.includes(":")) {
      throw new PkiError(`PEM block "${label}" has headers (a legacy encrypted key?); only unencrypted PEM is supported`);
    }
    const compact = body.replace(/\s+/g, "");
    if (compact.length === 0 || compact.length % 4 !== 0 || !BASE64_BODY.test(compact)) {
      throw new PkiError(`PEM block "${label}" does not contain valid base64`);
    }
    blocks.push({ label, der: new Uint8Array(Buffer.from(compact, "base64")) });
  }
  outside += text.slice(consumedUpTo);
  return { blocks, hasStrayText: /\S/.test(outside) };
}

/** Standard PEM: 64-character lines, one trailing newline (what openssl and Go's pem.Encode write). */
export function encodePem(label: string, der: ArrayBuffer | Uint8Array): string {
  const base64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString("base64");
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** A fresh ArrayBuffer holding exactly these bytes (WebCrypto and asn1-schema want ArrayBuffers). */
export function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.slice().buffer as ArrayBuffer;
}
