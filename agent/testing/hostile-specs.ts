// Hostile IssuedCertificate specs for the property-based tests: the pure spec reader's unit test
// (agent/spec.property.test.ts) and the generated specs sent to the real API server
// (e2e/hostile-generated.e2e.test.ts) draw from the same generators.
import fc from "fast-check";
import { issuedCertificate } from "../../shared/api/builders";
import type { IssuedCertificate } from "../../shared/api/types";
import { KEY_ALGORITHM_ANNOTATION } from "../constants";

/** Any text: every code point (lone surrogates, NUL, C1 controls, U+2028 included), sometimes long. */
export const anyText = fc.oneof(
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "binary-ascii", maxLength: 40 }),
  fc.string({ unit: "grapheme", minLength: 300, maxLength: 3_000 }),
  fc.constantFrom("", " ", "\u0085", "\u2028", "\u001b[2J", "\u0000", "a\nb"),
);
export const host = fc.oneof(fc.domain(), fc.ipV4(), fc.ipV6(), fc.constantFrom("spiffe://cluster.local/ns/istio-system/sa/istiod", "*.mesh.internal"));
/** Text that is a host, or almost one (a character added somewhere), or anything. */
export const hostish = fc.oneof(
  { arbitrary: host, weight: 4 },
  fc.webUrl(),
  fc.constantFrom("999.1.1.1", "fe80::1%eth0", "SPIFFE://x/y", "spiffe://X/y", "spiffe://td/a/../b", "-a.b", "a..b"),
  fc.tuple(fc.domain(), fc.nat(), anyText).map(([h, at, extra]) => h.slice(0, at % (h.length + 1)) + extra + h.slice(at % (h.length + 1))),
  anyText,
);
export const objectName = fc.oneof({ arbitrary: fc.constantFrom("cacerts", "istio-system", "mesh", "ic"), weight: 4 },
  fc.stringMatching(/^[a-z0-9]([-a-z0-9.]{0,20}[a-z0-9])?$/), anyText);
/** Mostly what the field means, sometimes any number (NaN, negative, huge). */
export const number = (...usual: number[]) => fc.oneof({ arbitrary: fc.constantFrom(...usual), weight: 4 }, fc.integer(), fc.double());
/** Usually absent, as in most specs. */
export const sometimes = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { freq: 2 });

export interface HostileSpecOptions {
  name: string;
  namespace: string;
  /** The target when the generator keeps the default (most cases); default <namespace>/cacerts. */
  target?: { name: string; namespace: string };
  /** Key algorithms the valid cases use (the e2e test keeps key generation cheap). */
  keyAlgorithms?: readonly string[];
}

/** IssuedCertificates whose every spec field (and the key-algorithm annotation) is usually valid, often hostile. */
export function hostileIssuedCertificates(o: HostileSpecOptions): fc.Arbitrary<IssuedCertificate> {
  const { name, namespace } = o;
  const algorithms = o.keyAlgorithms ?? ["RSA", "ECDSA-P256", "ECDSA-P384"];
  return fc.record({
    hosts: fc.oneof({ arbitrary: fc.array(host, { minLength: 1, maxLength: 4 }), weight: 2 }, fc.array(hostish, { maxLength: 6 })),
    org: sometimes(anyText),
    orgName: sometimes(anyText),
    ttlDays: sometimes(number(0, 1, 365, 36_500, 36_501, 2 ** 32 - 1)),
    rsaKeySizeBytes: sometimes(number(0, 2048, 3072, 4096, 4097, 256)),
    keyAlgorithm: sometimes(fc.oneof({ arbitrary: fc.constantFrom(...algorithms), weight: 4 }, fc.constantFrom("ecdsa-p256", "DSA", ""), anyText)),
    target: fc.option(fc.record({ name: objectName, namespace: objectName }), { freq: 20 }),
    targetIsStagedKey: fc.oneof({ arbitrary: fc.constant(false), weight: 9 }, fc.constant(true)),
  }).map((g) => {
    const ic = issuedCertificate({ name, namespace, hosts: g.hosts,
      target: g.targetIsStagedKey ? { name, namespace } : g.target ?? o.target,
      ...(g.keyAlgorithm === null ? {} : { annotations: { [KEY_ALGORITHM_ANNOTATION]: g.keyAlgorithm } }) });
    if (g.target === null && !g.targetIsStagedKey && !o.target) delete ic.spec!.issuedCertificateSecret;
    ic.spec = { ...ic.spec, ...(g.org === null ? {} : { org: g.org }) };
    ic.spec.certOptions = { ...ic.spec.certOptions,
      ...(g.orgName === null ? {} : { orgName: g.orgName }),
      ...(g.ttlDays === null ? {} : { ttlDays: g.ttlDays }),
      ...(g.rsaKeySizeBytes === null ? {} : { rsaKeySizeBytes: g.rsaKeySizeBytes }) };
    return ic;
  });
}
