// Key hygiene for the reliability suites: record every private key the run wrote to the API (staged
// keys and targets, through a Secret watch, so keys of issuances that were later replaced or killed
// count too), then prove that none of it, whole or in fragments, appears in the texts we publish:
// logs, Events, statuses, CertificateRequests and error messages.
import { KubeConfig, V1Secret } from "@kubernetes/client-node";
import { watchSecrets } from "./harness";
import { importPrivateKeyPem } from "../shared/pki";
import { exportSpki } from "../shared/pki/spki";

/** Fragments this long (base64 characters, or twice that in hex) are checked; shorter ones occur by chance. */
export const FRAGMENT_CHARS = 24;

export class KeyRecorder {
  /** Every private key PEM seen, deduplicated. */
  readonly keys = new Set<string>();
  private watch?: { stop(): void };

  constructor(private readonly kc: KubeConfig, private readonly namespace: string) {}

  /** Starts watching the namespace's Secrets (a watch that reconnects: runs last minutes and see
   * API-server restarts); resolves once the watch is open. */
  async start(): Promise<void> {
    this.watch = await watchSecrets(this.kc, this.namespace, (_type, secret) => this.add(secret));
  }

  stop(): void {
    this.watch?.stop();
  }

  /** Records the private keys in a Secret (also usable with a final list, for keys still present). */
  add(secret: V1Secret): void {
    for (const value of Object.values(secret.data ?? {})) {
      const text = Buffer.from(value, "base64").toString("utf8");
      for (const block of text.match(/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g) ?? []) this.keys.add(block);
    }
  }
}

/**
 * Every fragment of a key that must never be published, in the three encodings it travels in: its PEM
 * body (base64 of the DER), the base64 of the PEM text (how a Secret's data carries it) and the hex of
 * the DER. A fragment counts only when it covers a byte of the key that is not also in its public key:
 * a private key's encoding holds the public key too (an EC point, an RSA modulus), and that part is
 * rightly in the CSR and the certificate.
 */
async function secretFragmentsOf(pem: string): Promise<{ fragment: string; form: string }[]> {
  const body = pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
  const der = Buffer.from(body, "base64");
  const spki = Buffer.from(await exportSpki((await importPrivateKeyPem(pem)).publicKey));
  const isPublic = new Array<boolean>(der.length).fill(false);
  for (let j = 0; j + 8 <= der.length; j++) if (spki.includes(der.subarray(j, j + 8))) isPublic.fill(true, j, j + 8);
  /** Whether DER bytes [from, to) hold a byte that is not also in the public key. */
  const coversSecret = (from: number, to: number) => isPublic.slice(Math.max(0, from), Math.min(der.length, to)).includes(false);
  /** The DER bytes that base64 characters [from, to) of a DER's encoding determine whole (the edge
   * characters carry only some bits of a byte: an edge bit that matches by chance is no leak). */
  const bytesOfChars = (from: number, to: number): [number, number] => [Math.ceil((6 * from) / 8), Math.floor((6 * to) / 8)];

  // Which character of the PEM body each character of the PEM text is (-1: header, footer, newline).
  const bodyIndexOf: number[] = [];
  let next = 0;
  for (const line of pem.split(/(?<=\n)/)) {
    const isBody = !line.startsWith("-----");
    for (const ch of line) bodyIndexOf.push(isBody && !/\s/.test(ch) ? next++ : -1);
  }
  const pem64 = Buffer.from(pem).toString("base64");
  const hex = der.toString("hex");

  const out: { fragment: string; form: string }[] = [];
  for (let i = 0; i + FRAGMENT_CHARS <= body.length; i++) {
    if (coversSecret(...bytesOfChars(i, i + FRAGMENT_CHARS))) out.push({ fragment: body.slice(i, i + FRAGMENT_CHARS), form: "PEM body" });
  }
  for (let i = 0; i + FRAGMENT_CHARS <= pem64.length; i++) {
    // The PEM characters these base64 characters determine whole, then the DER bytes those determine.
    const [first, end] = bytesOfChars(i, i + FRAGMENT_CHARS);
    const bodyChars = bodyIndexOf.slice(first, end).filter((b) => b >= 0);
    if (bodyChars.length && coversSecret(...bytesOfChars(bodyChars[0], bodyChars[bodyChars.length - 1] + 1))) {
      out.push({ fragment: pem64.slice(i, i + FRAGMENT_CHARS), form: "base64 of the PEM" });
    }
  }
  for (let i = 0; i + 2 * FRAGMENT_CHARS <= hex.length; i += 2) {
    if (coversSecret(i / 2, (i + 2 * FRAGMENT_CHARS) / 2)) out.push({ fragment: hex.slice(i, i + 2 * FRAGMENT_CHARS), form: "hex of the DER" });
  }
  return out;
}

export interface KeyLeak {
  /** Which text (e.g. "agent log", "Event default/x.123"). */
  where: string;
  /** What was found, never the material itself. */
  what: string;
}

/**
 * Looks for private-key material of the given keys in the texts: a PEM private-key marker, or any
 * fragment of FRAGMENT_CHARS consecutive characters (twice that in hex) of a key's secret part in any
 * of its encodings. Returns the leaks found (empty when clean).
 */
export async function findKeyMaterial(texts: Record<string, string>, keys: Iterable<string>): Promise<KeyLeak[]> {
  const fragments = new Map<string, string>();
  for (const pem of keys) for (const { fragment, form } of await secretFragmentsOf(pem)) fragments.set(fragment, form);
  const sizes = new Set([...fragments.keys()].map((f) => f.length));
  const leaks: KeyLeak[] = [];
  for (const [where, text] of Object.entries(texts)) {
    if (/PRIVATE KEY/.test(text)) leaks.push({ where, what: "a PEM private-key marker" });
    let found = false;
    for (const size of sizes) {
      for (let i = 0; !found && i + size <= text.length; i += 1) {
        const form = fragments.get(text.slice(i, i + size));
        if (form !== undefined) {
          leaks.push({ where, what: `a ${size}-character fragment of a private key (${form}) at offset ${i}` });
          found = true;
        }
      }
    }
  }
  return leaks;
}
