import { AsnConvert } from "@peculiar/asn1-schema";
import {
  AttributeTypeAndValue,
  AttributeValue,
  GeneralName,
  Name,
  RelativeDistinguishedName,
  SubjectAlternativeName,
} from "@peculiar/asn1-x509";
import { PkiError, classifyHost } from "./index";
import {
  type SanEntry,
  hostComparisonKey,
  parseIp,
  readSubjectAltNames,
  sanComparisonKey,
  subjectAltNameExtension,
  validateHost,
} from "./hosts";

describe("classifyHost (Gloo Mesh's rule, with any URI scheme)", () => {
  it.each([
    ["10.0.0.1", "ip"],
    ["2001:db8::1", "ip"],
    ["::1", "ip"],
    ["::ffff:10.1.2.3", "ip"],
    ["spiffe://cluster.local/ns/istio-system/sa/istiod", "uri"],
    ["istiod.istio-system.svc", "dns"],
    ["*.mesh.example.com", "dns"],
    ["localhost", "dns"],
    ["01.2.3.4", "dns"], // not an IP for node:net (nor for Go)
    ["fe80::1%eth0", "dns"], // Go's ParseIP rejects zones, and a SAN cannot carry one
    ["SPIFFE://upper.case/prefix", "uri"], // Gloo Mesh made it a dNSName; validateHost refuses it
    ["https://example.com", "uri"], // Gloo Mesh made it a dNSName
  ])("%s -> %s", (host, kind) => {
    expect(classifyHost(host)).toBe(kind);
  });
});

describe("validateHost: a DNS name, an IP without a zone, or a URI with a scheme; nothing else", () => {
  it.each([
    "istiod.istio-system.svc",
    "*.mesh.example.com",
    "localhost",
    "xn--bcher-kva.example",
    "a-b.c0",
    `${"a".repeat(63)}.example`,
    "10.0.0.1",
    "2001:db8::1",
    "::ffff:10.1.2.3",
    "spiffe://cluster.local/ns/istio-system/sa/istiod",
    "spiffe://td",
    "spiffe://my_td.example-1/a.b/c-d/e_f",
    "https://example.com/path?q=1",
  ])("accepts %j", (host) => {
    expect(validateHost(host)).toBeUndefined();
  });

  const NOT_A_NAME = "is neither an IP address, a URI with a scheme, nor a DNS name (letters, digits and hyphens in dot-separated labels of at most 63)";
  const NOT_SPIFFE_PATH = "is not a SPIFFE ID: path segments must be non-empty, not '.' or '..', of letters, digits, '.', '-' or '_'";
  const NOT_SPIFFE_TD = "is not a SPIFFE ID: the trust domain must be lowercase letters, digits, '.', '-' or '_'";
  it.each([
    ["a\u0000b.example", "contains control characters"],
    ["evil.example\nX-Injected: 1", "contains control characters"],
    ["\u001b[31mred.example", "contains control characters"],
    ["bücher.example", "contains non-ASCII characters (write an internationalised name in punycode, xn--...)"],
    ["a b.example", "contains spaces"],
    ["999.1.1.1", "looks like an IP address but is not a valid one"],
    ["01.2.3.4", "looks like an IP address but is not a valid one"],
    ["[::1]", NOT_A_NAME],
    ["fe80::1%eth0", NOT_A_NAME],
    ["a@b.com", NOT_A_NAME],
    ["-lead.example", NOT_A_NAME],
    ["trail-.example", NOT_A_NAME],
    ["double..dot", NOT_A_NAME],
    ["*.*.example", NOT_A_NAME],
    ["mid.*.example", NOT_A_NAME],
    [`${"a".repeat(64)}.example`, NOT_A_NAME],
    [`${"a.".repeat(127)}ab`, "is longer than 253 characters"],
    ["https://", "is not a valid URI"],
    [`https://example.com/${"a".repeat(2048)}`, "is longer than 2048 characters"],
    ["SPIFFE://upper.case/prefix", "is not a SPIFFE ID: the scheme must be lowercase spiffe"],
    ["spiffe://Upper.case/x", NOT_SPIFFE_TD],
    ["spiffe:///ns/x", NOT_SPIFFE_TD],
    ["spiffe://td:8080/x", NOT_SPIFFE_TD],
    ["spiffe://user@td/x", NOT_SPIFFE_TD],
    ["spiffe://td/", NOT_SPIFFE_PATH],
    ["spiffe://td/a//b", NOT_SPIFFE_PATH],
    ["spiffe://td/a/../b", NOT_SPIFFE_PATH],
    ["spiffe://td/a/./b", NOT_SPIFFE_PATH],
    ["spiffe://td/a?x=1", NOT_SPIFFE_PATH],
    ["spiffe://td/a#frag", NOT_SPIFFE_PATH],
  ])("refuses %j: %s", (host, why) => {
    expect(validateHost(host)).toBe(why);
  });
});

describe("parseIp", () => {
  it.each([
    ["10.0.0.1", "0a000001"],
    ["::1", "00000000000000000000000000000001"],
    ["2001:db8::1", "20010db8000000000000000000000001"],
    ["2001:DB8:0:0:0:0:0:1", "20010db8000000000000000000000001"],
    ["::", "00000000000000000000000000000000"],
    ["1::", "00010000000000000000000000000000"],
    ["::ffff:10.1.2.3", "0a010203"], // IPv4-mapped collapses to IPv4, as Go encodes it
    ["64:ff9b::192.0.2.33", "0064ff9b0000000000000000c0000221"],
  ])("%s -> %s", (text, hex) => {
    expect(Buffer.from(parseIp(text) as Uint8Array).toString("hex")).toBe(hex);
  });

  it("is undefined for non-IPs", () => {
    expect(parseIp("example.com")).toBeUndefined();
    expect(parseIp("fe80::1%eth0")).toBeUndefined();
  });
});

describe("SAN comparison keys", () => {
  it("compare DNS names case-insensitively, IPs by address, URIs exactly, and types apart", () => {
    expect(hostComparisonKey("Istiod.Istio-System.svc")).toBe(sanComparisonKey({ kind: "dns", value: "istiod.istio-system.svc" }));
    expect(hostComparisonKey("2001:db8::1")).toBe(sanComparisonKey({ kind: "ip", value: "2001:DB8:0:0:0:0:0:1" }));
    expect(hostComparisonKey("spiffe://td/ns/a/sa/B")).not.toBe(sanComparisonKey({ kind: "uri", value: "spiffe://td/ns/a/sa/b" }));
    expect(hostComparisonKey("10.0.0.1")).not.toBe(sanComparisonKey({ kind: "dns", value: "10.0.0.1" }));
  });
});

describe("subjectAltNameExtension", () => {
  it.each<[string, unknown[], string]>([
    ["no hosts (an empty GeneralNames is invalid DER)", [], "a SubjectAltName extension needs at least one host"],
    // Hosts come from a custom resource: a JSON array passes node:net's isIP (it stringifies) but is no host.
    ["a host that is not text", [["10.0.0.1"]], 'host ["10.0.0.1"] cannot be encoded in a SubjectAltName'],
  ])("refuses %s with a PkiError saying so", (_name, hosts, message) => {
    expect(() => subjectAltNameExtension(hosts as string[])).toThrow(PkiError);
    expect(() => subjectAltNameExtension(hosts as string[])).toThrow(new PkiError(message));
  });
});

describe("readSubjectAltNames", () => {
  it("reads every GeneralName form in order; those we do not issue become 'other'", () => {
    const names = [
      new GeneralName({ dNSName: "a.example.com" }),
      new GeneralName({ rfc822Name: "ops@example.com" }),
      new GeneralName({ registeredID: "1.2.3.4" }),
      new GeneralName({ directoryName: new Name([new RelativeDistinguishedName([new AttributeTypeAndValue({ type: "2.5.4.3", value: new AttributeValue({ printableString: "x" }) })])]) }),
      new GeneralName({ uniformResourceIdentifier: "spiffe://td/ns/a/sa/b" }),
      new GeneralName({ iPAddress: "10.0.0.1" }),
    ];
    expect(readSubjectAltNames(AsnConvert.serialize(new SubjectAlternativeName(names)))).toEqual([
      { kind: "dns", value: "a.example.com" },
      { kind: "other", value: "email:ops@example.com" },
      { kind: "other", value: "unsupported GeneralName form" },
      { kind: "other", value: "unsupported GeneralName form" },
      { kind: "uri", value: "spiffe://td/ns/a/sa/b" },
      { kind: "ip", value: "10.0.0.1" },
    ]);
  });
});

describe("sanComparisonKey", () => {
  it.each<[SanEntry, string]>([
    [{ kind: "dns", value: "A.Example.com" }, "dns:a.example.com"],
    [{ kind: "uri", value: "spiffe://td/ns/A" }, "uri:spiffe://td/ns/A"],
    [{ kind: "ip", value: "::ffff:10.1.2.3" }, "ip:0a010203"],
    // An iPAddress of odd length reads back as text that is no IP; it still compares, only to itself.
    [{ kind: "ip", value: "not-an-ip" }, "ip-unparseable:not-an-ip"],
    [{ kind: "other", value: "email:ops@example.com" }, "other:email:ops@example.com"],
  ])("%j -> %s", (entry, key) => {
    expect(sanComparisonKey(entry)).toBe(key);
  });
});
