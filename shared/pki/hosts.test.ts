import { classifyHost } from "./index";
import { hostComparisonKey, parseIp, sanComparisonKey } from "./hosts";

describe("classifyHost (Gloo Mesh's rule)", () => {
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
    ["SPIFFE://upper.case/prefix", "dns"], // Gloo Mesh's prefix check is case-sensitive
    ["https://example.com", "dns"],
  ])("%s -> %s", (host, kind) => {
    expect(classifyHost(host)).toBe(kind);
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
