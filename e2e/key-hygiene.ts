// Key hygiene for the reliability suites: record every private key the run wrote to the API (staged
// keys and targets, through a Secret watch, so keys of issuances that were later replaced or killed
// count too), then prove that none of it, whole or in fragments, appears in the texts we publish:
// logs, Events, statuses, CertificateRequests and error messages.
import { KubeConfig, V1Secret, Watch } from "@kubernetes/client-node";

/** Fragments this long (base64 characters, or twice that in hex) are checked; shorter ones occur by chance. */
export const FRAGMENT_CHARS = 24;

export class KeyRecorder {
  /** Every private key PEM seen, deduplicated. */
  readonly keys = new Set<string>();
  private abort?: AbortController;

  constructor(private readonly kc: KubeConfig, private readonly namespace: string) {}

  /** Starts watching the namespace's Secrets; resolves once the watch is open. */
  async start(): Promise<void> {
    this.abort = await new Watch(this.kc).watch(`/api/v1/namespaces/${this.namespace}/secrets`, {},
      (_type: string, secret: V1Secret) => this.add(secret),
      () => undefined);
  }

  stop(): void {
    this.abort?.abort();
  }

  /** Records the private keys in a Secret (also usable with a final list, for keys still present). */
  add(secret: V1Secret): void {
    for (const value of Object.values(secret.data ?? {})) {
      const text = Buffer.from(value, "base64").toString("utf8");
      for (const block of text.match(/-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----/g) ?? []) this.keys.add(block);
    }
  }
}

/** Every fragment of a key that must never be published: its PEM body (base64 of the DER), the
 * base64 of the PEM text (how a Secret's data carries it) and the hex of the DER. */
function fragmentsOf(pem: string): string[] {
  const body = pem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
  const der = Buffer.from(body, "base64");
  const forms = [body, Buffer.from(pem).toString("base64"), der.toString("hex")];
  const out: string[] = [];
  for (const form of forms) {
    const size = form === forms[2] ? 2 * FRAGMENT_CHARS : FRAGMENT_CHARS;
    for (let i = 0; i + size <= form.length; i += 1) out.push(form.slice(i, i + size));
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
 * fragment of FRAGMENT_CHARS consecutive characters of a key in any of its encodings. Returns the
 * leaks found (empty when clean).
 */
export function findKeyMaterial(texts: Record<string, string>, keys: Iterable<string>): KeyLeak[] {
  const fragments = new Set<string>();
  const sizes = new Set<number>();
  for (const pem of keys) for (const f of fragmentsOf(pem)) {
    fragments.add(f);
    sizes.add(f.length);
  }
  const leaks: KeyLeak[] = [];
  for (const [where, text] of Object.entries(texts)) {
    if (/PRIVATE KEY/.test(text)) leaks.push({ where, what: "a PEM private-key marker" });
    let found = false;
    for (const size of sizes) {
      for (let i = 0; !found && i + size <= text.length; i += 1) {
        if (fragments.has(text.slice(i, i + size))) {
          leaks.push({ where, what: `a ${size}-character fragment of a private key at offset ${i}` });
          found = true;
        }
      }
    }
  }
  return leaks;
}
