// The certificate verifier on arbitrary and mutated input (property-based, seeded): whatever bytes or
// text arrive as a certificate, a root or a cert-chain.pem, it never crashes; it accepts or refuses with
// a CertificateVerificationError of a known reason, in one printable line of bounded length.
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate } from "@peculiar/asn1-x509";
import fc from "fast-check";
import { createRootCa, RootCa, signIntermediate } from "../../e2e/issuer/sign";
import { propertyRuns, seeded } from "../testing/property";
import { hasControlCharacters } from "../text/bounded";
import {
  buildCertChain,
  buildCsr,
  type CertificateVerificationReason,
  CertificateVerificationError,
  describeCertificate,
  generateKeyPair,
  verifyCertChain,
  verifyIssuedCertificate,
} from "./index";
import { decodePem, encodePem } from "./pem";

const REASONS: readonly CertificateVerificationReason[] = ["Malformed", "PublicKeyMismatch", "UntrustedChain", "NotACA", "NotYetValid", "Expired", "SANMismatch", "ChainMismatch"];
const HOSTS = ["spiffe://cluster.local/ns/istio-system/sa/istiod", "istiod.istio-system.svc"];
const NOW = new Date("2026-06-01T00:00:00Z");

let root: RootCa;
let keys: CryptoKeyPair;
let certificatePem: string;
let certificateDer: Uint8Array;
let rootDer: Uint8Array;

beforeAll(async () => {
  root = await createRootCa({ spec: { algorithm: "ECDSA", curve: "P-256" }, now: new Date("2025-01-01T00:00:00Z"), days: 3650 });
  keys = await generateKeyPair({ algorithm: "ECDSA", curve: "P-256" });
  const csrPem = await buildCsr({ keys, org: "istio", hosts: HOSTS });
  certificatePem = await signIntermediate({ csrPem, hosts: HOSTS, ttlDays: 365, root, now: new Date("2026-05-01T00:00:00Z") });
  certificateDer = decodePem(certificatePem).blocks[0].der;
  rootDer = decodePem(root.certPem).blocks[0].der;
});

/** How one DER (a real certificate) is damaged: bytes overwritten, cut, or inserted. */
type Mutation = { kind: "set"; at: number; byte: number }[] | { kind: "cut"; at: number } | { kind: "insert"; at: number; bytes: Uint8Array };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  // Mostly a few bytes overwritten, often near the start (lengths, tags, the issuer name, the dates).
  { arbitrary: fc.array(fc.record({ kind: fc.constant("set" as const), at: fc.oneof(fc.nat(300), fc.nat()), byte: fc.nat(255) }), { minLength: 1, maxLength: 4 }), weight: 6 },
  fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
);

function mutate(der: Uint8Array, m: Mutation): Uint8Array {
  const out = Uint8Array.from(der);
  if (Array.isArray(m)) {
    for (const { at, byte } of m) out[at % out.length] = byte;
    return out;
  }
  if (m.kind === "cut") return out.slice(0, m.at % out.length);
  const at = m.at % out.length;
  return Uint8Array.from([...out.slice(0, at), ...m.bytes, ...out.slice(at)]);
}

/** What arrives as a PEM: a damaged real one (as DER or as text), random bytes in a PEM block, or any text. */
const pemOf = (der: () => Uint8Array, pem: () => string): fc.Arbitrary<string> => fc.oneof(
  { arbitrary: mutation.map((m) => encodePem("CERTIFICATE", mutate(der(), m))), weight: 8 },
  fc.tuple(fc.nat(), fc.string({ unit: "binary", minLength: 1, maxLength: 4 })).map(([at, text]) => {
    const p = pem();
    return p.slice(0, at % p.length) + text + p.slice(at % p.length);
  }),
  fc.uint8Array({ maxLength: 600 }).map((bytes) => encodePem("CERTIFICATE", bytes)),
  fc.string({ unit: "binary", maxLength: 200 }),
  fc.constant("").map(() => pem()), // the real one: the property holds for acceptance too
);

/** Runs fn; its failure must be a typed refusal, printable and bounded. */
async function refusesCleanly(fn: () => Promise<unknown> | unknown): Promise<"accepted" | CertificateVerificationReason> {
  try {
    await fn();
    return "accepted";
  } catch (err) {
    expect(err).toBeInstanceOf(CertificateVerificationError);
    const e = err as CertificateVerificationError;
    expect(REASONS).toContain(e.reason);
    expect(hasControlCharacters(e.message)).toBe(false);
    expect(e.message.length).toBeLessThanOrEqual(1_100);
    return e.reason;
  }
}

describe(seeded("the verifier on arbitrary and damaged certificates"), () => {
  // Parsing a certificate costs milliseconds (WebCrypto key import, signature check): the run counts keep
  // each test within a few seconds on a busy machine.
  it("verifyIssuedCertificate (so verifyCaCertificate, which it runs) and describeCertificate refuse a damaged certificate with a typed reason, never a crash", async () => {
    const seen = new Set<string>();
    await fc.assert(fc.asyncProperty(pemOf(() => certificateDer, () => certificatePem), async (pem) => {
      seen.add(await refusesCleanly(() => verifyIssuedCertificate({ certificatePem: pem, rootPem: root.certPem, publicKey: keys.publicKey, hosts: HOSTS, now: NOW })));
      // What it describes is usable as it is: the renewal time and every message are computed from these dates.
      await refusesCleanly(async () => {
        const { notBefore, notAfter } = await describeCertificate(pem);
        expect([notBefore.getTime(), notAfter.getTime()].every(Number.isFinite)).toBe(true);
      });
    }), propertyRuns(1_000));
    // The damage reaches past the parser (signatures, names, dates), not only "Malformed".
    expect([...seen]).toEqual(expect.arrayContaining(["accepted", "Malformed", "UntrustedChain"]));
  });

  it("a damaged root is refused as a typed reason, never a crash", async () => {
    await fc.assert(fc.asyncProperty(pemOf(() => rootDer, () => root.certPem), async (rootPem) => {
      await refusesCleanly(() => verifyIssuedCertificate({ certificatePem, rootPem, publicKey: keys.publicKey, hosts: HOSTS, now: NOW }));
    }), propertyRuns(500));
  });

  it("verifyCertChain refuses any other cert-chain.pem as ChainMismatch, never a crash", async () => {
    const chain = () => buildCertChain(certificatePem, root.certPem);
    const chainDer = () => Uint8Array.from([...certificateDer, ...rootDer]);
    await fc.assert(fc.asyncProperty(pemOf(chainDer, chain), async (chainPem) => {
      const reason = await refusesCleanly(() => verifyCertChain(chainPem, certificatePem, root.certPem));
      expect(["accepted", "ChainMismatch"]).toContain(reason);
    }), propertyRuns(3_000));
  });
});

describe("what the properties found, as examples", () => {
  it("a signature that does not even decode (a damaged ECDSA value) is UntrustedChain, not a crash (was a raw asn1 Error: a reconcile that threw forever)", async () => {
    const parsed = AsnConvert.parse(certificateDer, Certificate);
    const signature = new Uint8Array(parsed.signatureValue);
    signature[2] = 0x22; // the INTEGER r of the ECDSA-Sig-Value, marked constructed
    parsed.signatureValue = signature.buffer;
    const damaged = encodePem("CERTIFICATE", new Uint8Array(AsnConvert.serialize(parsed)));
    await expect(verifyIssuedCertificate({ certificatePem: damaged, rootPem: root.certPem, publicKey: keys.publicKey, hosts: HOSTS, now: NOW }))
      .rejects.toMatchObject({ reason: "UntrustedChain", message: expect.stringMatching(/signature does not verify/) });
  });

  it("an issuer name holding NUL, ESC and a newline is quoted escaped, in one line", async () => {
    const evil = await createRootCa({ commonName: "evil\u0000\u001b[2J\nroot", spec: { algorithm: "ECDSA", curve: "P-256" }, now: new Date("2025-01-01T00:00:00Z") });
    const csrPem = await buildCsr({ keys, org: "istio", hosts: HOSTS });
    const pem = await signIntermediate({ csrPem, hosts: HOSTS, ttlDays: 365, root: evil, now: new Date("2026-05-01T00:00:00Z") });
    const error = await verifyIssuedCertificate({ certificatePem: pem, rootPem: root.certPem, publicKey: keys.publicKey, hosts: HOSTS, now: NOW }).catch((e: unknown) => e);
    expect(error).toMatchObject({ reason: "UntrustedChain" });
    expect((error as Error).message).toContain("evil\\u0000\\u001b[2J\\0Aroot"); // (RFC 4514 escapes the newline itself)
    expect(hasControlCharacters((error as Error).message)).toBe(false);
  });
});
