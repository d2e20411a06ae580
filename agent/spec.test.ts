// readIntent and hasTarget, table-driven: what an IssuedCertificate may ask for, and what is refused
// as InvalidSpecError before any key is made.
import { issuedCertificate, ISTIOD_SPIFFE_ID } from "../shared/api/builders";
import type { IssuedCertificate, ObjectRef } from "../shared/api/types";
import { KEY_ALGORITHM_ANNOTATION } from "./constants";
import { hasTarget, InvalidSpecError, readIntent } from "./spec";

const NS = "gloo-mesh";
const NAME = "istiod-ca";

/** A valid IssuedCertificate (builder defaults: target istio-system/cacerts, RSA 4096), then `edit`. */
function ic(edit: (ic: IssuedCertificate) => void = () => {}, options: Partial<Parameters<typeof issuedCertificate>[0]> = {}): IssuedCertificate {
  const obj = issuedCertificate({ name: NAME, namespace: NS, ...options });
  edit(obj);
  return obj;
}

function withKeyAlgorithm(value: string, rsaKeySizeBytes?: number): IssuedCertificate {
  return ic((o) => {
    o.metadata.annotations = { [KEY_ALGORITHM_ANNOTATION]: value };
    o.spec!.certOptions!.rsaKeySizeBytes = rsaKeySizeBytes;
  });
}

function refusal(obj: IssuedCertificate): InvalidSpecError {
  try {
    readIntent(obj);
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidSpecError);
    return err as InvalidSpecError;
  }
  throw new Error("readIntent accepted the spec");
}

describe("readIntent", () => {
  it("reads a valid IssuedCertificate", () => {
    expect(readIntent(ic(() => {}, { hosts: [ISTIOD_SPIFFE_ID, "istiod.istio-system.svc"] }))).toEqual({
      hosts: [ISTIOD_SPIFFE_ID, "istiod.istio-system.svc"],
      org: "cluster.local",
      keySpec: { algorithm: "RSA", bits: 4096 },
      target: { name: "cacerts", namespace: "istio-system" },
    });
  });

  it("refuses with an error named InvalidSpecError (the name the logger and stack traces show)", () => {
    const err = refusal(ic((o) => (o.spec!.hosts = [])));
    expect(err.name).toBe("InvalidSpecError");
    expect(String(err)).toBe("InvalidSpecError: spec.hosts is empty: at least one SAN is required");
  });

  describe("hosts", () => {
    it.each<[string, string[] | undefined, RegExp]>([
      ["empty hosts", [], /spec\.hosts is empty/],
      ["no hosts field", undefined, /spec\.hosts is empty/],
      ["an empty entry", [ISTIOD_SPIFFE_ID, ""], /empty or space-padded entry ""/],
      ["a blank entry", [" "], /empty or space-padded entry " "/],
      ["a leading space", [" istiod.istio-system.svc"], /empty or space-padded entry " istiod\.istio-system\.svc"/],
      ["a trailing space", [`${ISTIOD_SPIFFE_ID} `], /space-padded/],
      ["a trailing newline", ["istiod.istio-system.svc\n"], /space-padded/],
    ])("refuses %s", (_what, hosts, message) => {
      expect(refusal(ic((o) => (o.spec!.hosts = hosts))).message).toMatch(message);
    });

    // Hostile hosts are refused before any key is made, naming the entry (quoted, escaped, cut to 100).
    it.each<[string, string[], string]>([
      ["a NUL", [ISTIOD_SPIFFE_ID, "a\u0000b.example"], 'spec.hosts[1] "a\\u0000b.example" contains control characters'],
      ["an ANSI escape", ["\u001b[31mred"], 'spec.hosts[0] "\\u001b[31mred" contains control characters'],
      // JSON quoting leaves C1 controls and the line separators raw (found by spec.property.test.ts).
      ["a C1 control (NEL)", ["a\u0085b.example"], 'spec.hosts[0] "a\\u0085b.example" contains control characters'],
      ["a line separator", ["a\u2028b.example"], 'spec.hosts[0] "a\\u2028b.example" contains control characters'],
      ["a non-ASCII (IDN) name", ["bücher.example"], 'spec.hosts[0] "bücher.example" contains non-ASCII characters (write an internationalised name in punycode, xn--...)'],
      ["a mistyped IP", ["999.1.1.1"], 'spec.hosts[0] "999.1.1.1" looks like an IP address but is not a valid one'],
      ["an e-mail address", ["a@b.com"], 'spec.hosts[0] "a@b.com" is neither an IP address, a URI with a scheme, nor a DNS name (letters, digits and hyphens in dot-separated labels of at most 63)'],
      ["a 1 MB host, quoted short", [`${"a".repeat(1_000_000)}.example`], `spec.hosts[0] "${"a".repeat(100)}..." is longer than 253 characters`],
    ])("refuses %s", (_what, hosts, message) => {
      expect(refusal(ic((o) => (o.spec!.hosts = hosts))).message).toBe(message);
    });
  });

  describe("org and ttlDays", () => {
    it.each<[string, (o: IssuedCertificate) => void, string]>([
      ["a NUL in orgName", (o) => (o.spec!.certOptions!.orgName = "evil\u0000org"), 'spec.certOptions.orgName "evil\\u0000org" contains control characters'],
      ["a newline in the deprecated org", (o) => { o.spec!.certOptions!.orgName = ""; o.spec!.org = "a\nb"; }, 'spec.org "a\\nb" contains control characters'],
      ["an orgName over 64 characters", (o) => (o.spec!.certOptions!.orgName = "o".repeat(65)), "spec.certOptions.orgName is longer than 64 characters (X.520's bound)"],
      ["ttlDays over 100 years (an overflow, not a lifetime)", (o) => (o.spec!.certOptions!.ttlDays = 4294967295), "spec.certOptions.ttlDays 4294967295 is above 36500 (100 years)"],
    ])("refuses %s", (_what, edit, message) => {
      expect(refusal(ic(edit)).message).toBe(message);
    });

    it("accepts a 64-character org with non-ASCII letters and a 100-year lifetime", () => {
      const intent = readIntent(ic((o) => { o.spec!.certOptions!.orgName = "Ö".repeat(64); o.spec!.certOptions!.ttlDays = 36_500; }));
      expect(intent.org).toBe("Ö".repeat(64));
    });
  });

  describe("target secret", () => {
    const long = (n: number) => "a".repeat(n);
    it.each<[string, ObjectRef]>([
      ["a subdomain name", { name: "cacerts.v2", namespace: "istio-system" }],
      ["a one-character name and namespace", { name: "c", namespace: "i" }],
      ["a 253-character name", { name: `${long(63)}.${long(63)}.${long(63)}.${long(61)}`, namespace: "istio-system" }],
      ["a 63-character namespace", { name: "cacerts", namespace: long(63) }],
      ["the IssuedCertificate's name in another namespace", { name: NAME, namespace: "istio-system" }],
      ["another name in the IssuedCertificate's namespace", { name: "cacerts", namespace: NS }],
    ])("accepts %s", (_what, target) => {
      expect(readIntent(ic(() => {}, { target })).target).toEqual(target);
    });

    it.each<[string, Partial<ObjectRef>]>([
      ["no name", { namespace: "istio-system" }],
      ["no namespace", { name: "cacerts" }],
      ["an empty name", { name: "", namespace: "istio-system" }],
      ["an upper-case name", { name: "CACerts", namespace: "istio-system" }],
      ["an underscore", { name: "ca_certs", namespace: "istio-system" }],
      ["a leading dash", { name: "-cacerts", namespace: "istio-system" }],
      ["a trailing dot", { name: "cacerts.", namespace: "istio-system" }],
      ["a slash", { name: "istio-system/cacerts", namespace: "istio-system" }],
      ["a space", { name: "ca certs", namespace: "istio-system" }],
      ["a 254-character name", { name: long(254), namespace: "istio-system" }],
      ["an upper-case namespace", { name: "cacerts", namespace: "Istio-System" }],
      ["a namespace with a leading dash", { name: "cacerts", namespace: "-istio" }],
      // Names are DNS subdomains: every dot-separated label starts and ends with a letter or digit.
      ["an empty label in the name (was accepted)", { name: "ca..certs", namespace: "istio-system" }],
      ["a label ending in a dash (was accepted)", { name: "ca-.certs", namespace: "istio-system" }],
      // Namespaces are DNS labels: no dots, at most 63 characters.
      ["a dot in the namespace (was accepted)", { name: "cacerts", namespace: "istio.system" }],
      ["a 64-character namespace (was accepted)", { name: "cacerts", namespace: long(64) }],
    ])("refuses %s", (_what, target) => {
      expect(refusal(ic((o) => (o.spec!.issuedCertificateSecret = target as ObjectRef))).message).toMatch(
        /^spec\.issuedCertificateSecret .* needs a valid name and namespace$/,
      );
    });

    it("refuses a missing target as InvalidSpecError (was a TypeError; the reconciler skips these, other callers get a reason)", () => {
      expect(refusal(ic((o) => delete o.spec!.issuedCertificateSecret)).message).toBe(
        "spec.issuedCertificateSecret is missing: nothing says where to write the certificate");
    });

    it("quotes a 100 000-character target name cut, in one line of at most 1 KB (found by spec.property.test.ts)", () => {
      const { message } = refusal(ic((o) => (o.spec!.issuedCertificateSecret = { name: `\u0085${"x".repeat(100_000)}`, namespace: "istio-system" })));
      expect(message).toBe(`spec.issuedCertificateSecret (name "\\u0085${"x".repeat(99)}...", namespace "istio-system") needs a valid name and namespace`);
    });

    it.each<[number, string]>([
      [100, "A".repeat(100)],
      [101, `${"A".repeat(100)}...`],
    ])("quotes a %d-character name whole up to 100 characters, cut beyond", (length, quoted) => {
      const { message } = refusal(ic((o) => (o.spec!.issuedCertificateSecret = { name: "A".repeat(length), namespace: "istio-system" })));
      expect(message).toBe(`spec.issuedCertificateSecret (name "${quoted}", namespace "istio-system") needs a valid name and namespace`);
    });

    it("refuses the staged key's Secret (the IssuedCertificate's own namespace and name) as the target", () => {
      const err = refusal(ic(() => {}, { target: { name: NAME, namespace: NS } }));
      expect(err.message).toBe(
        `spec.issuedCertificateSecret ${NS}/${NAME} is where the private key is staged: name the IssuedCertificate or the target secret differently`,
      );
    });
  });

  describe("key algorithm", () => {
    it.each<[string, string | undefined, number | undefined, object]>([
      ["no annotation and no size: RSA 4096", undefined, undefined, { algorithm: "RSA", bits: 4096 }],
      ["no annotation and size 0: RSA 4096", undefined, 0, { algorithm: "RSA", bits: 4096 }],
      ["an empty annotation: RSA", "", 3072, { algorithm: "RSA", bits: 3072 }],
      ["RSA with rsaKeySizeBytes 2048 (read as bits)", "RSA", 2048, { algorithm: "RSA", bits: 2048 }],
      ["RSA with 3072", "RSA", 3072, { algorithm: "RSA", bits: 3072 }],
      ["RSA with 4096", "RSA", 4096, { algorithm: "RSA", bits: 4096 }],
      ["rsa in lower case, space-padded", " rsa ", 2048, { algorithm: "RSA", bits: 2048 }],
      ["ECDSA-P256", "ECDSA-P256", undefined, { algorithm: "ECDSA", curve: "P-256" }],
      ["ECDSA-P384", "ECDSA-P384", undefined, { algorithm: "ECDSA", curve: "P-384" }],
      ["ecdsa-p256 in lower case", "ecdsa-p256", undefined, { algorithm: "ECDSA", curve: "P-256" }],
      ["ECDSA-P256 ignoring rsaKeySizeBytes (the CRD defaults it)", "ECDSA-P256", 1024, { algorithm: "ECDSA", curve: "P-256" }],
    ])("accepts %s", (_what, annotation, size, keySpec) => {
      const obj = annotation === undefined ? ic((o) => (o.spec!.certOptions!.rsaKeySizeBytes = size)) : withKeyAlgorithm(annotation, size);
      expect(readIntent(obj).keySpec).toEqual(keySpec);
    });

    it.each<[string, string | undefined, number | undefined, RegExp]>([
      ["RSA 1024", undefined, 1024, /unsupported RSA key size 1024/],
      ["RSA 1024 named explicitly", "RSA", 1024, /unsupported RSA key size 1024/],
      ["RSA 4069 (a typo)", "RSA", 4069, /unsupported RSA key size 4069/],
      ["RSA 8192", "RSA", 8192, /unsupported RSA key size 8192/],
      ["a negative size", "RSA", -2048, /unsupported RSA key size -2048/],
      ["garbage", "garbage", undefined, /unsupported key algorithm "garbage"/],
      ["Ed25519", "Ed25519", undefined, /unsupported key algorithm "Ed25519"/],
      ["ECDSA-P521", "ECDSA-P521", undefined, /unsupported key algorithm "ECDSA-P521"/],
      ["RSA-4096 (describeKeySpec's words, not an algorithm)", "RSA-4096", undefined, /unsupported key algorithm "RSA-4096"/],
    ])("refuses %s", (_what, annotation, size, message) => {
      const obj = annotation === undefined ? ic((o) => (o.spec!.certOptions!.rsaKeySizeBytes = size)) : withKeyAlgorithm(annotation, size);
      expect(refusal(obj).message).toMatch(message);
    });

    it("truncates a long annotation value in the message", () => {
      expect(refusal(withKeyAlgorithm("x".repeat(500))).message.length).toBeLessThan(200);
    });
  });

  describe("organization", () => {
    it.each<[string, string | undefined, string | undefined, string]>([
      ["orgName wins over org", "mesh.example", "legacy-org", "mesh.example"],
      ["org when orgName is unset", undefined, "legacy-org", "legacy-org"],
      ["org when orgName is empty", "", "legacy-org", "legacy-org"],
      ["orgName alone", "mesh.example", undefined, "mesh.example"],
      ["empty when neither is set", undefined, undefined, ""],
    ])("%s", (_what, orgName, org, expected) => {
      const obj = ic((o) => {
        o.spec!.certOptions!.orgName = orgName;
        o.spec!.org = org;
      });
      expect(readIntent(obj).org).toBe(expected);
    });
  });
});

describe("hasTarget", () => {
  it.each<[string, boolean, (o: IssuedCertificate) => void]>([
    ["a named target", true, () => {}],
    ["a name without namespace (readIntent refuses it)", true, (o) => (o.spec!.issuedCertificateSecret = { name: "cacerts" } as ObjectRef)],
    ["no issuedCertificateSecret", false, (o) => delete o.spec!.issuedCertificateSecret],
    // A reference that is there but names nothing is a mistake to report (readIntent: InvalidSpec), not
    // a missing reference: the hostile e2e suite found such objects silently ignored, with no status.
    ["an empty name (readIntent refuses it)", true, (o) => (o.spec!.issuedCertificateSecret = { name: "", namespace: "istio-system" })],
    ["a namespace only (readIntent refuses it)", true, (o) => (o.spec!.issuedCertificateSecret = { namespace: "istio-system" } as ObjectRef)],
    ["null (as JSON can say it)", false, (o) => (o.spec!.issuedCertificateSecret = null as unknown as ObjectRef)],
    ["no spec", false, (o) => delete o.spec],
  ])("%s -> %p", (_what, expected, edit) => {
    expect(hasTarget(ic(edit))).toBe(expected);
  });
});
