// Root rotation without downtime: when the issuer starts signing with a root the target does not trust
// yet, writing the new intermediate with the new root at once breaks every workload that trusts only the
// old root until it restarts. Istio accepts several roots in root-cert.pem (ISTIO_MULTIROOT_MESH), so the
// agent changes the roots in three steps (docs/root-rotation.md):
//   1. trust:   root-cert.pem = old roots + new roots, the current intermediate and key unchanged; then wait
//               until every istio-ca-root-cert ConfigMap that matters holds all of them;
//   2. overlap: the new intermediate (signed by a new root) with the combined roots, until --root-overlap;
//   3. end:     root-cert.pem = the new roots only.
// The phase is an annotation on the target secret, written in the same request as the data it describes,
// so a crash between steps resumes from what is stored. Pure functions; the reconciler does the I/O.
import { createHash } from "node:crypto";
import { decodePem } from "../shared/pki/pem";
import { PkiError } from "../shared/pki/errors";

/** On the target secret: JSON RootRotation, the phase its root-cert.pem is in. Absent: no rotation. */
export const ROOT_ROTATION_ANNOTATION = "cert-agent.io/root-rotation";
/** On an IssuedCertificate, set by the operator: comma-separated hex SHA-256 of roots approved under
 * --root-change-policy=require-approval (of the root certificate's DER, as `openssl x509 -outform der | sha256sum`). */
export const APPROVED_ROOTS_ANNOTATION = "cert-agent.io/approved-root-sha256";

export const ROOT_CHANGE_POLICIES = ["accept", "require-approval"] as const;
export type RootChangePolicy = (typeof ROOT_CHANGE_POLICIES)[number];

export type RootRotation =
  /** Step 1 written: root-cert.pem holds the old and the new roots, ca-cert.pem is still the old one. */
  | { phase: "trust"; newRoots: string[]; since: string }
  /** Step 2 written: the new intermediate is in place; the old roots go at `until` (RFC 3339). */
  | { phase: "overlap"; newRoots: string[]; until: string };

interface RootBlock {
  /** The block's text as it appears in the PEM (BEGIN to END line), so that kept roots keep their bytes. */
  text: string;
  sha256: string;
}

const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The CERTIFICATE blocks of a PEM bundle with their DER's SHA-256, duplicates dropped; [] for text that is no PEM. */
export function rootBlocks(pem: string): RootBlock[] {
  const blocks: RootBlock[] = [];
  for (const [text] of pem.matchAll(CERTIFICATE_BLOCK)) {
    let der: Uint8Array;
    try {
      der = decodePem(text).blocks[0]!.der;
    } catch (error) {
      if (error instanceof PkiError) continue;
      throw error;
    }
    const sha256 = createHash("sha256").update(der).digest("hex");
    if (!blocks.some((b) => b.sha256 === sha256)) blocks.push({ text, sha256 });
  }
  return blocks;
}

export const rootFingerprints = (pem: string): string[] => rootBlocks(pem).map((b) => b.sha256);

/** The fingerprints in `wanted` that `have` lacks. */
export const missingFrom = (have: readonly string[], wanted: readonly string[]): string[] => wanted.filter((sha) => !have.includes(sha));

/** Step 1's root-cert.pem: the current bundle unchanged (its bytes kept), then the new roots it lacks. */
export function combineRoots(currentPem: string, newPem: string): string {
  const have = rootFingerprints(currentPem);
  const added = rootBlocks(newPem).filter((b) => !have.includes(b.sha256));
  if (added.length === 0) return currentPem;
  return `${currentPem.replace(/[\r\n]+$/, "")}\n${added.map((b) => `${b.text}\n`).join("")}`;
}

/** Step 3's root-cert.pem: only the roots named, each block as it was. */
export function keepRoots(pem: string, keep: readonly string[]): string {
  return rootBlocks(pem).filter((b) => keep.includes(b.sha256)).map((b) => `${b.text}\n`).join("");
}

/** The rotation recorded on a target secret; undefined when none is, or the annotation does not read. */
export function readRootRotation(annotations: Record<string, string> | undefined): RootRotation | undefined {
  const text = annotations?.[ROOT_ROTATION_ANNOTATION];
  if (!text) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const v = value as Partial<Record<"phase" | "newRoots" | "since" | "until", unknown>>;
  const roots = Array.isArray(v.newRoots) && v.newRoots.length > 0 && v.newRoots.every((r) => typeof r === "string" && /^[0-9a-f]{64}$/.test(r))
    ? (v.newRoots as string[]) : undefined;
  if (!roots) return undefined;
  if (v.phase === "trust" && typeof v.since === "string") return { phase: "trust", newRoots: roots, since: v.since };
  if (v.phase === "overlap" && typeof v.until === "string" && Number.isFinite(Date.parse(v.until))) return { phase: "overlap", newRoots: roots, until: v.until };
  return undefined;
}

/** The annotation patch that records `rotation` (null removes it: no rotation). */
export function rootRotationAnnotation(rotation: RootRotation | undefined): Record<string, string | null> {
  return { [ROOT_ROTATION_ANNOTATION]: rotation ? JSON.stringify(rotation) : null };
}

/** The approved fingerprints named on an IssuedCertificate (lower case, any separators of commas and spaces). */
export function approvedRoots(annotations: Record<string, string> | undefined): string[] {
  return (annotations?.[APPROVED_ROOTS_ANNOTATION] ?? "").toLowerCase().split(/[\s,]+/).filter((s) => /^[0-9a-f]{64}$/.test(s));
}

/** Short form of a fingerprint for messages (the full one is in the annotation and the metric label-free log). */
export const shortSha = (sha: string) => sha.slice(0, 16);
