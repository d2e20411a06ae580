// readIntent, the pure spec reader, on arbitrary IssuedCertificates (property-based, seeded): it never
// throws anything but InvalidSpecError, every host it accepts is one validateHost accepts, and every
// message it writes (into status, an Event and the log) is one printable line of at most 1 KB.
import fc from "fast-check";
import { issuedCertificate } from "../shared/api/builders";
import type { IssuedCertificate } from "../shared/api/types";
import { validateHost } from "../shared/pki";
import { propertyRuns, seeded } from "../shared/testing/property";
import { hasControlCharacters, MAX_FOREIGN_TEXT } from "../shared/text/bounded";
import { KEY_ALGORITHM_ANNOTATION } from "./constants";
import { InvalidSpecError, isNamespace, readIntent } from "./spec";

/** Any text: every code point (lone surrogates, NUL, C1 controls, U+2028 included), sometimes long. */
const anyText = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "binary-ascii", maxLength: 40 }),
  fc.string({ unit: "grapheme", minLength: 300, maxLength: 3_000 }),
  fc.constantFrom("", " ", "\u0085", "\u2028", "\u001b[2J", "\u0000", "a\nb"),
);
const host = fc.oneof(fc.domain(), fc.ipV4(), fc.ipV6(), fc.constantFrom("spiffe://cluster.local/ns/istio-system/sa/istiod", "*.mesh.internal"));
/** Text that is a host, or almost one (a character added somewhere), or anything. */
const hostish = fc.oneof(
  { arbitrary: host, weight: 4 },
  fc.webUrl(),
  fc.constantFrom("999.1.1.1", "fe80::1%eth0", "SPIFFE://x/y", "spiffe://X/y", "spiffe://td/a/../b", "-a.b", "a..b"),
  fc.tuple(fc.domain(), fc.nat(), anyText).map(([h, at, extra]) => h.slice(0, at % (h.length + 1)) + extra + h.slice(at % (h.length + 1))),
  anyText,
);
const name = fc.oneof({ arbitrary: fc.constantFrom("cacerts", "istio-system", "mesh", "ic"), weight: 4 }, fc.stringMatching(/^[a-z0-9]([-a-z0-9.]{0,20}[a-z0-9])?$/), anyText);
/** Mostly what the field means, sometimes any number (NaN, negative, huge). */
const number = (...usual: number[]) => fc.oneof({ arbitrary: fc.constantFrom(...usual), weight: 4 }, fc.integer(), fc.double());
/** Usually absent, as in most specs. */
const sometimes = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { freq: 2 });

const issuedCertificates: fc.Arbitrary<IssuedCertificate> = fc.record({
  hosts: fc.oneof({ arbitrary: fc.array(host, { minLength: 1, maxLength: 4 }), weight: 2 }, fc.array(hostish, { maxLength: 6 })),
  org: sometimes(anyText),
  orgName: sometimes(anyText),
  ttlDays: sometimes(number(0, 1, 365, 36_500, 36_501, 2 ** 32 - 1)),
  rsaKeySizeBytes: sometimes(number(0, 2048, 3072, 4096, 4097, 256)),
  keyAlgorithm: sometimes(fc.oneof({ arbitrary: fc.constantFrom("RSA", "ECDSA-P256", "ECDSA-P384"), weight: 4 }, fc.constantFrom("ecdsa-p256", "DSA", ""), anyText)),
  target: fc.option(fc.record({ name, namespace: name }), { freq: 20 }),
  targetIsStagedKey: fc.oneof({ arbitrary: fc.constant(false), weight: 9 }, fc.constant(true)),
}).map((g) => {
  const ic = issuedCertificate({ name: "ic", namespace: "mesh", hosts: g.hosts, target: g.targetIsStagedKey ? { name: "ic", namespace: "mesh" } : g.target ?? undefined,
    ...(g.keyAlgorithm === null ? {} : { annotations: { [KEY_ALGORITHM_ANNOTATION]: g.keyAlgorithm } }) });
  if (g.target === null && !g.targetIsStagedKey) delete ic.spec!.issuedCertificateSecret;
  ic.spec = { ...ic.spec, ...(g.org === null ? {} : { org: g.org }) };
  ic.spec.certOptions = { ...ic.spec.certOptions,
    ...(g.orgName === null ? {} : { orgName: g.orgName }),
    ...(g.ttlDays === null ? {} : { ttlDays: g.ttlDays }),
    ...(g.rsaKeySizeBytes === null ? {} : { rsaKeySizeBytes: g.rsaKeySizeBytes }) };
  return ic;
});

describe(seeded("readIntent on arbitrary IssuedCertificates"), () => {
  it("accepts only valid hosts and a valid target, and refuses with InvalidSpecError alone, in one printable line of at most 1 KB", () => {
    let accepted = 0;
    fc.assert(fc.property(issuedCertificates, (ic) => {
      let intent;
      try {
        intent = readIntent(ic);
      } catch (err) {
        expect(err).toBeInstanceOf(InvalidSpecError);
        const message = (err as Error).message;
        expect(hasControlCharacters(message)).toBe(false);
        expect(message.length).toBeLessThanOrEqual(MAX_FOREIGN_TEXT);
        return;
      }
      accepted++;
      expect(intent.hosts.length).toBeGreaterThan(0);
      for (const host of intent.hosts) expect(validateHost(host)).toBeUndefined();
      expect(isNamespace(intent.target.namespace)).toBe(true);
      expect(`${intent.target.namespace}/${intent.target.name}`).not.toBe("mesh/ic");
      expect(hasControlCharacters(intent.org)).toBe(false);
    }), propertyRuns(4_000));
    // The generators reach the accepting side too (else the host checks above would prove nothing).
    expect(accepted).toBeGreaterThan(400);
  });
});
