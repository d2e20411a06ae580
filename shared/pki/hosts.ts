import { isIP } from "node:net";
import { AsnConvert } from "@peculiar/asn1-schema";
import { GeneralName, SubjectAlternativeName, id_ce_subjectAltName } from "@peculiar/asn1-x509";
import { x509 } from "./crypto-provider";
import { hasControlCharacters } from "../text/bounded";
import { PkiError } from "./errors";

export type HostKind = "ip" | "uri" | "dns";
export type SanEntry = { kind: HostKind; value: string } | { kind: "other"; value: string };

/**
 * An IP if it parses as one, a URI if it has a scheme ("spiffe://", "https://"), else a DNS name.
 * (Gloo Mesh took only spiffe:// as a URI and made "https://..." a dNSName; validateHost refuses what
 * fits none of the three.) Go's net.ParseIP (what Gloo Mesh uses) rejects IPv6 zones ("fe80::1%eth0")
 * that node:net accepts, and a SAN cannot carry a zone, so a zoned address is not an IP here either.
 */
export function classifyHost(host: string): HostKind {
  if (isIP(host) !== 0 && !host.includes("%")) return "ip";
  if (URI_SCHEME.test(host)) return "uri";
  return "dns";
}

const URI_SCHEME = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/i;
const SPIFFE_TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SPIFFE_SEGMENT = /^[a-zA-Z0-9._-]+$/;

/**
 * Why a host cannot be a SubjectAltName of ours, or undefined when it can. Exactly one of: a DNS name
 * (RFC 1123 labels, an optional leading "*."), an IPv4/IPv6 address without a zone, or a URI with a
 * scheme (spiffe:// checked against the SPIFFE ID rules). Text is ASCII without control characters:
 * an internationalised name must be given in its punycode form (xn--...), never guessed at.
 */
export function validateHost(host: string): string | undefined {
  if (hasControlCharacters(host)) return "contains control characters";
  if (/[^\x20-\x7e]/.test(host)) return "contains non-ASCII characters (write an internationalised name in punycode, xn--...)";
  if (/\s/.test(host)) return "contains spaces";
  switch (classifyHost(host)) {
    case "ip":
      return undefined;
    case "uri":
      return validateUri(host);
    case "dns":
      return validateDnsName(host);
  }
}

function validateDnsName(host: string): string | undefined {
  const name = host.startsWith("*.") ? host.slice(2) : host;
  if (host.length > 253) return "is longer than 253 characters";
  const labels = name.split(".");
  if (!labels.every((l) => DNS_LABEL.test(l))) return "is neither an IP address, a URI with a scheme, nor a DNS name (letters, digits and hyphens in dot-separated labels of at most 63)";
  // A numeric last label is no top-level domain: "999.1.1.1" is a mistyped IP, not a name.
  if (/^\d+$/.test(labels[labels.length - 1])) return "looks like an IP address but is not a valid one";
  return undefined;
}

function validateUri(host: string): string | undefined {
  if (host.length > 2048) return "is longer than 2048 characters";
  let url: URL;
  try {
    url = new URL(host);
  } catch {
    return "is not a valid URI";
  }
  if (url.protocol !== "spiffe:") return undefined;
  if (!host.startsWith("spiffe://")) return "is not a SPIFFE ID: the scheme must be lowercase spiffe";
  // The SPIFFE ID rules: a lowercase trust domain, no port, user, query or fragment; path segments of
  // letters, digits, ".", "-" and "_", none empty, "." or "..".
  const rest = host.slice("spiffe://".length);
  const slash = rest.indexOf("/");
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? "" : rest.slice(slash);
  if (!trustDomain || !SPIFFE_TRUST_DOMAIN.test(trustDomain)) return "is not a SPIFFE ID: the trust domain must be lowercase letters, digits, '.', '-' or '_'";
  if (path === "") return undefined;
  const segments = path.slice(1).split("/");
  if (segments.some((s) => !SPIFFE_SEGMENT.test(s) || s === "." || s === "..")) {
    return "is not a SPIFFE ID: path segments must be non-empty, not '.' or '..', of letters, digits, '.', '-' or '_'";
  }
  return undefined;
}

/** One critical SubjectAltName extension (critical because our subjects are empty or O= only, RFC 5280 4.2.1.6). */
export function subjectAltNameExtension(hosts: readonly string[]): x509.Extension {
  if (hosts.length === 0) throw new PkiError("a SubjectAltName extension needs at least one host");
  const names = hosts.map((host) => {
    try {
      switch (classifyHost(host)) {
        case "ip":
          return new GeneralName({ iPAddress: ipTextForEncoding(host) });
        case "uri":
          return new GeneralName({ uniformResourceIdentifier: host });
        case "dns":
          return new GeneralName({ dNSName: host });
      }
    } catch {
      throw new PkiError(`host ${JSON.stringify(host)} cannot be encoded in a SubjectAltName`);
    }
  });
  const value = AsnConvert.serialize(new SubjectAlternativeName(names));
  return new x509.Extension(id_ce_subjectAltName, true, value);
}

/** The entries of a DER SubjectAltName extension value, in order; unsupported name forms become "other". */
export function readSubjectAltNames(extensionValue: ArrayBuffer): SanEntry[] {
  const names = AsnConvert.parse(extensionValue, SubjectAlternativeName);
  return Array.from(names, (name): SanEntry => {
    if (name.dNSName !== undefined) return { kind: "dns", value: name.dNSName };
    if (name.uniformResourceIdentifier !== undefined) return { kind: "uri", value: name.uniformResourceIdentifier };
    if (name.iPAddress !== undefined) return { kind: "ip", value: name.iPAddress };
    if (name.rfc822Name !== undefined) return { kind: "other", value: `email:${name.rfc822Name}` };
    return { kind: "other", value: "unsupported GeneralName form" };
  });
}

/**
 * A comparison key so that equal names compare equal however they are written: DNS names are
 * case-insensitive, IPs compare by address (IPv4-mapped IPv6 equals the IPv4, as Go encodes it), URIs
 * compare exactly (SPIFFE IDs are case-sensitive in their path).
 */
export function sanComparisonKey(entry: SanEntry): string {
  switch (entry.kind) {
    case "dns":
      return `dns:${entry.value.toLowerCase()}`;
    case "uri":
      return `uri:${entry.value}`;
    case "ip": {
      const bytes = parseIp(entry.value);
      return bytes ? `ip:${Buffer.from(bytes).toString("hex")}` : `ip-unparseable:${entry.value}`;
    }
    case "other":
      return `other:${entry.value}`;
  }
}

export function hostComparisonKey(host: string): string {
  return sanComparisonKey({ kind: classifyHost(host), value: host });
}

/** Address bytes, 4 for IPv4 (including IPv4-mapped IPv6, like Go's To4), else 16; undefined if not an IP. */
export function parseIp(text: string): Uint8Array | undefined {
  if (classifyHost(text) !== "ip") return undefined;
  const bytes = isIP(text) === 4 ? Uint8Array.from(text.split(".").map(Number)) : parseIpv6(text);
  const isV4Mapped = bytes.length === 16 && bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  return isV4Mapped ? bytes.slice(12) : bytes;
}

// Input is already validated by node:net, so this only has to expand "::" and a trailing dotted quad.
function parseIpv6(text: string): Uint8Array {
  let normalized = text;
  const lastColon = text.lastIndexOf(":");
  const tail = text.slice(lastColon + 1);
  if (tail.includes(".")) {
    const [a, b, c, d] = tail.split(".").map(Number) as [number, number, number, number];
    normalized = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [left, right] = normalized.split("::") as [string, string | undefined];
  const leftGroups = left ? left.split(":") : [];
  const rightGroups = right ? right.split(":") : [];
  const groups =
    right === undefined ? leftGroups : [...leftGroups, ...Array<string>(8 - leftGroups.length - rightGroups.length).fill("0"), ...rightGroups];
  const bytes = new Uint8Array(16);
  groups.forEach((group, i) => {
    const value = parseInt(group, 16);
    bytes[2 * i] = value >> 8;
    bytes[2 * i + 1] = value & 0xff;
  });
  return bytes;
}

// asn1-x509 encodes iPAddress from text with its own parser, which handles neither embedded dotted quads
// nor zones; an unambiguous form (dotted IPv4 or eight full IPv6 groups) keeps it on safe ground.
function ipTextForEncoding(host: string): string {
  const bytes = parseIp(host);
  if (!bytes) throw new PkiError("not an IP address");
  if (bytes.length === 4) return Array.from(bytes).join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  return groups.join(":");
}
