// Gather: everything one decision about an IssuedCertificate needs, read (through the caches where
// they can vouch for an object: reconciler-cache.ts) and summarised (what the target holds, whether
// the staged key is usable, what the issuer answered, whether that answer verifies). Reads only;
// decide.ts turns the result into one action.
import { decodeBytes } from "../shared/api/builders";
import { CertificateRequest, IssuedCertificate, ObjectRef, PodBounceDirective } from "../shared/api/types";
import { BounceProgress, BounceRequest, readBounceProgress, readBounceRequest } from "./bouncer/cycle";
import { ObjectClient } from "../shared/kube/api";
import { statusOf } from "../shared/kube/errors";
import type { Secret } from "../shared/kube/secrets";
import {
  CertificateSummary,
  CertificateVerificationError,
  describeCertificate,
  describeKeySpec,
  ImportedPrivateKey,
  importPrivateKeyPem,
  publicKeyFingerprint,
  VerifiedCertificate,
  verifyCaCertificate,
  verifyCertChain,
  verifyIssuedCertificate,
} from "../shared/pki";
import { parseSingleCertificatePem } from "../shared/pki/certificate";
import { hostComparisonKey } from "../shared/pki/hosts";
import { BUNDLE_KEYS, privateKeyRef, secretData, stagedKeyConflict, targetConflict, writtenByOriginalAgent } from "./secrets";
import { CA_CERT, CA_KEY, PRIVATE_KEY_SECRET_KEY, ROOT_CERT } from "./constants";
import { Bookkeeping, IssuanceStamp, readBookkeeping, readStamp } from "./issuance";
import { CertificateIntent, InvalidSpecError, readIntent } from "./spec";
import type { ConfigMap } from "./bouncer/pod-bouncer-reconciler";
import { NOT_CACHED, ReconcilerCache } from "./reconciler-cache";
import { keepRoots, missingFrom, readRootRotation, RootRotation, rootFingerprints } from "./root-rotation";

export type TargetSummary =
  | { state: "missing" }
  | { state: "foreign"; message: string }
  /**
   * Written by Gloo Mesh's own agent for this IssuedCertificate (writtenByOriginalAgent): to be adopted
   * before anything else. `fingerprint` is that of the certified key, "" when ca-cert.pem does not parse.
   */
  | { state: "original"; fingerprint: string }
  /** Ours, but a key is missing, a PEM does not parse, or the key does not match the certificate. */
  | { state: "incomplete"; message: string; stamp: IssuanceStamp }
  /**
   * Ours and whole, but not a CA istiod can use: ca-cert.pem does not chain to root-cert.pem, is no CA,
   * is not valid yet, its root expired, or cert-chain.pem is not ca-cert.pem + root-cert.pem. (An expired
   * ca-cert.pem stays "valid": the renewal policy renews it at once, as CertificateExpired.)
   */
  | { state: "invalid"; message: string; stamp: IssuanceStamp }
  | {
      state: "valid";
      stamp: IssuanceStamp;
      caCertPem: string;
      /** describeKeySpec of the certified key, e.g. "RSA-4096". */
      keyDescription: string;
      /** Comparison keys of the SANs (type and canonical value). */
      sanKeys: string[];
      notBefore: Date;
      notAfter: Date;
      /** root-cert.pem as stored, and the SHA-256 of each root in it (root-rotation.ts). */
      rootCertPem: string;
      rootShas: string[];
      /** The root rotation the target records, if any. */
      rotation?: RootRotation;
      /** In a rotation's overlap: root-cert.pem with only the new roots, when ca-cert.pem verifies against
       * them (else undefined: dropping the old roots would break the CA). */
      rootsAfterOverlap?: string;
    };

export type StagedKeySummary =
  | { state: "missing" }
  | { state: "foreign"; message: string }
  | { state: "unreadable"; stamp: IssuanceStamp; message: string }
  | { state: "ready"; stamp: IssuanceStamp; pem: string; key: ImportedPrivateKey; fingerprint: string };

export type RequestSummary =
  | { state: "missing" }
  | {
      state: "present";
      stamp: IssuanceStamp;
      /** The issuer's answer to the CURRENT spec: a status older than the last spec write reads as "pending". */
      answer: "pending" | "failed" | "finished";
      error: string;
      certificatePem: string;
      rootPem: string;
    };

export type Verdict =
  | { ok: true; certificate: VerifiedCertificate }
  | { ok: false; error: CertificateVerificationError };

export type DirectiveSummary =
  | { state: "missing"; ref: ObjectRef }
  | { state: "present"; ref: ObjectRef; request?: BounceRequest; progress?: BounceProgress };

export interface Observed {
  ic: IssuedCertificate;
  /** The objects as read, for the writes that must carry their resourceVersion. */
  raw: { target?: Secret; staged?: Secret; request?: CertificateRequest };
  book: Bookkeeping;
  intent: CertificateIntent | InvalidSpecError;
  target: TargetSummary;
  staged?: StagedKeySummary;
  request?: RequestSummary;
  /** Set when the issuer answered FINISHED for our request and our staged key is ready. */
  verdict?: Verdict;
  /** A namespace where a Secret of this IssuedCertificate would live (its staged key's, its target's)
   * that is not one of --secret-namespaces. Nothing else is read then. */
  unwatchedNamespace?: string;
  /** In ISSUED, the PodBounceDirective the spec names (if any). */
  directive?: DirectiveSummary;
  /**
   * "namespace/name" of the IssuedCertificate named like the target: its staged key lives at the
   * target's name, so writing the target there would break it.
   */
  targetCollidesWith?: string;
  /** In a root rotation's first step: the istio-ca-root-cert ConfigMaps that do not yet hold every root of the target. */
  trustBundle?: TrustBundleView;
}

/** What the trust bundle ConfigMaps istiod publishes hold, against the roots the target holds. */
export interface TrustBundleView {
  /** How many ConfigMaps (or namespaces named by the directive) were looked at. */
  checked: number;
  /** "<namespace>: <why>" for each that does not hold every root yet (a missing ConfigMap included). */
  lacking: string[];
}

/** The ConfigMap istiod writes into every namespace with the mesh's trust bundle. */
export const ISTIO_ROOT_CONFIGMAP = "istio-ca-root-cert";

export interface Readers {
  issuedCertificates: ObjectClient<IssuedCertificate>;
  certificateRequests: ObjectClient<CertificateRequest>;
  secrets: ObjectClient<Secret>;
  directives?: ObjectClient<PodBounceDirective>;
  /** For a root rotation's propagation check (istio-ca-root-cert); without it nothing is waited for. */
  configMaps?: ObjectClient<ConfigMap>;
  /** The informers' caches (reconciler-cache.ts): the collision check reads them where they cover the namespace. */
  cache?: ReconcilerCache;
  /** Target summaries already made, by the target's resourceVersion (summarising parses and verifies: the costliest part of a pass). */
  summaries?: TargetSummaries;
}

/** How long a valid target's summary is reused for the same resourceVersion: the passes of one issuance. */
export const SUMMARY_REUSE_MS = 60_000;

/**
 * The valid summaries of targets, per IssuedCertificate, for the resourceVersion they were made from:
 * the pass that finishes an issuance and the FINISHED pass after it read the same target, and parsing
 * and verifying it is most of a pass's CPU. Only "valid" ones, for at most SUMMARY_REUSE_MS and never
 * past notAfter, since a summary depends on the time too. Holds no key material.
 */
export class TargetSummaries {
  private readonly byKey = new Map<string, { version: string; summary: TargetSummary; untilMs: number }>();

  get(icKey: string, version: string | undefined, nowMs: number): TargetSummary | undefined {
    const held = this.byKey.get(icKey);
    if (!held || version === undefined || held.version !== version || nowMs >= held.untilMs) return undefined;
    return held.summary;
  }

  remember(icKey: string, version: string | undefined, summary: TargetSummary, nowMs: number): void {
    if (version === undefined || summary.state !== "valid") return;
    this.byKey.set(icKey, { version, summary, untilMs: Math.min(nowMs + SUMMARY_REUSE_MS, summary.notAfter.getTime()) });
  }

  forget(icKey: string): void {
    this.byKey.delete(icKey);
  }
}

export interface ObserveOptions {
  now: Date;
  clockSkewToleranceMs: number;
  /** --secret-namespaces; undefined = every namespace. */
  secretNamespaces?: readonly string[];
  /** --pod-namespaces: where trust bundle ConfigMaps are looked at when no directive names namespaces; undefined = all. */
  podNamespaces?: readonly string[];
}

/** Reads what the IssuedCertificate's current state needs (FINISHED and FAILED look at the target only). */
export async function observe(ic: IssuedCertificate, r: Readers, o: ObserveOptions): Promise<Observed> {
  const book = readBookkeeping(ic);
  let intent: CertificateIntent | InvalidSpecError;
  try {
    intent = readIntent(ic);
  } catch (err) {
    if (!(err instanceof InvalidSpecError)) throw err;
    intent = err;
  }
  if (intent instanceof InvalidSpecError) return { ic, raw: {}, book, intent, target: { state: "missing" } };
  // Only where the agent may read Secrets at all (with the chart's Roles, a GET elsewhere is a 403).
  const unwatchedNamespace = [ic.metadata.namespace!, intent.target.namespace].find((ns) => o.secretNamespaces && !o.secretNamespaces.includes(ns));
  if (unwatchedNamespace !== undefined) return { ic, raw: {}, book, intent, target: { state: "missing" }, unwatchedNamespace };

  const raw: Observed["raw"] = { target: await r.secrets.get(intent.target.namespace, intent.target.name) };
  const observed: Observed = { ic, raw, book, intent, target: await reusedSummary(r.summaries, raw.target, ic, intent, o) };
  // A spec change (or a new object) begins a new issuance whatever else is there; decide needs only the
  // target's revision for it. The next pass reads the rest.
  if (ic.status?.observedGeneration !== ic.metadata.generation) return observed;
  const collision = await issuedCertificateAt(r, intent.target);
  if (collision) observed.targetCollidesWith = collision;
  const state = ic.status?.state ?? "PENDING";
  const keyRef = privateKeyRef(ic);
  const directiveRef = ic.spec?.podBounceDirective;
  if (state === "ISSUED" && directiveRef?.name && r.directives) {
    const ref = { name: directiveRef.name, namespace: directiveRef.namespace || ic.metadata.namespace! };
    const directive = await r.directives.get(ref.namespace, ref.name);
    observed.directive = directive
      ? { state: "present", ref, request: readBounceRequest(directive), progress: readBounceProgress(directive) }
      : { state: "missing", ref };
  }
  // FAILED looks at the staged key too: a foreign Secret there may have gone away.
  if (state !== "PENDING" && state !== "REQUESTED" && state !== "FAILED") return observed;
  raw.staged = await r.secrets.get(keyRef.namespace, keyRef.name);
  const staged = (observed.staged = await summariseStagedKey(raw.staged));
  if (state === "FAILED") return observed;
  raw.request = await r.certificateRequests.get(keyRef.namespace, keyRef.name);
  const request = (observed.request = summariseRequest(raw.request));
  if (state === "REQUESTED" && staged.state === "ready" && request.state === "present" && request.answer === "finished") {
    observed.verdict = await verdictOn(request, staged.key, intent, o);
    const target = observed.target;
    // Root rotation, step 1 written and the answer's roots all trusted: has the bundle reached istiod's ConfigMaps?
    if (observed.verdict.ok && target.state === "valid" && target.rotation?.phase === "trust" &&
      missingFrom(target.rootShas, rootFingerprints(request.rootPem)).length === 0 && r.configMaps) {
      observed.trustBundle = await readTrustBundle(r, ic, target.rootShas, o);
    }
  }
  return observed;
}

/**
 * Which istio-ca-root-cert ConfigMaps lack one of `roots`: in the namespaces the IssuedCertificate's
 * PodBounceDirective names (a missing ConfigMap there counts: istiod has not written it yet), else every
 * one that exists (in --pod-namespaces, or the whole cluster: one list by name).
 */
async function readTrustBundle(r: Readers, ic: IssuedCertificate, roots: string[], o: ObserveOptions): Promise<TrustBundleView> {
  const configMaps = r.configMaps!;
  const lacks = (map: ConfigMap | undefined, namespace: string): string | undefined => {
    if (!map) return `${namespace}: no ${ISTIO_ROOT_CONFIGMAP} ConfigMap yet`;
    const missing = missingFrom(rootFingerprints(map.data?.[ROOT_CERT] ?? ""), roots).length;
    return missing === 0 ? undefined : `${namespace}: ${missing} of ${roots.length} roots missing`;
  };
  const ref = ic.spec?.podBounceDirective;
  const directive = ref?.name && r.directives ? await r.directives.get(ref.namespace || ic.metadata.namespace!, ref.name) : undefined;
  const named = [...new Set((directive?.spec?.podsToBounce ?? []).map((s) => s.namespace).filter((ns): ns is string => !!ns))];
  let found: Array<[string, ConfigMap | undefined]>;
  if (named.length > 0) {
    found = await Promise.all(named.map(async (ns) => [ns, await configMaps.get(ns, ISTIO_ROOT_CONFIGMAP)] as [string, ConfigMap | undefined]));
  } else {
    const lists = await Promise.all((o.podNamespaces ?? [undefined]).map((ns) => configMaps.list(ns, undefined, `metadata.name=${ISTIO_ROOT_CONFIGMAP}`)));
    found = lists.flatMap((l) => l.items).map((m) => [m.metadata.namespace!, m]);
  }
  return { checked: found.length, lacking: found.map(([ns, map]) => lacks(map, ns)).filter((x): x is string => x !== undefined).sort() };
}

async function reusedSummary(summaries: TargetSummaries | undefined, secret: Secret | undefined, ic: IssuedCertificate, intent: CertificateIntent, o: ObserveOptions): Promise<TargetSummary> {
  const key = `${ic.metadata.namespace}/${ic.metadata.name}`;
  const version = secret?.metadata.resourceVersion;
  const now = o.now.getTime();
  const reused = summaries?.get(key, version, now);
  if (reused) return reused;
  const summary = await summariseTarget(secret, ic, intent, o);
  summaries?.remember(key, version, summary, now);
  return summary;
}

async function summariseTarget(secret: Secret | undefined, ic: IssuedCertificate, intent: CertificateIntent, o: ObserveOptions): Promise<TargetSummary> {
  if (!secret) return { state: "missing" };
  if (writtenByOriginalAgent(secret, ic, intent.target)) return { state: "original", fingerprint: await certifiedKeyFingerprint(secretData(secret, CA_CERT)) };
  const conflict = targetConflict(secret, ic);
  if (conflict) return { state: "foreign", message: conflict };
  const stamp = readStamp(secret.metadata);
  const missing = BUNDLE_KEYS.filter((k) => !secretData(secret, k));
  const where = `target secret ${intent.target.namespace}/${intent.target.name}`;
  if (missing.length > 0) return { state: "incomplete", stamp, message: `${where} lacks ${missing.join(", ")}` };
  const [caCertPem, caKeyPem, certChainPem, rootCertPem] = BUNDLE_KEYS.map((k) => secretData(secret, k)!);
  let summary: CertificateSummary;
  let key: ImportedPrivateKey;
  try {
    [summary, key] = await Promise.all([describeCertificate(caCertPem), importPrivateKeyPem(caKeyPem)]);
  } catch {
    // The parsers' messages may quote their input; say which part is broken, nothing more.
    return { state: "incomplete", stamp, message: `${where}: ${CA_CERT} or ${CA_KEY} does not parse` };
  }
  const valid: Extract<TargetSummary, { state: "valid" }> = {
    state: "valid",
    stamp,
    caCertPem,
    keyDescription: summary.keyDescription,
    sanKeys: summary.sans.map(hostComparisonKey),
    notBefore: summary.notBefore,
    notAfter: summary.notAfter,
    rootCertPem,
    rootShas: rootFingerprints(rootCertPem),
  };
  const rotation = readRootRotation(secret.metadata.annotations);
  if (rotation) valid.rotation = rotation;
  // Expired: the renewal policy renews it at once and says so (CertificateExpired); nothing else to learn.
  if (o.now.getTime() >= summary.notAfter.getTime()) return valid;
  // What istiod checks of its plugged-in CA, with the verifier that checks the issuer's answers.
  try {
    await verifyCaCertificate({ certificatePem: caCertPem, rootPem: rootCertPem, publicKey: key.publicKey, now: o.now, clockSkewToleranceMs: o.clockSkewToleranceMs });
  } catch (err) {
    if (!(err instanceof CertificateVerificationError)) throw err;
    if (err.reason === "PublicKeyMismatch") return { state: "incomplete", stamp, message: `${where}: ${CA_KEY} does not match ${CA_CERT}` };
    return { state: "invalid", stamp, message: `${where} is not a CA istiod can use (${CA_CERT} checked against ${ROOT_CERT}): ${err.message}` };
  }
  try {
    verifyCertChain(certChainPem, caCertPem, rootCertPem);
  } catch (err) {
    if (!(err instanceof CertificateVerificationError)) throw err;
    return { state: "invalid", stamp, message: `${where}: ${err.detail}` };
  }
  if (rotation?.phase === "overlap") valid.rootsAfterOverlap = await rootsAfterOverlap(caCertPem, key, keepRoots(rootCertPem, rotation.newRoots), o);
  return valid;
}

/** The new roots alone, when ca-cert.pem still verifies against them. */
async function rootsAfterOverlap(caCertPem: string, key: ImportedPrivateKey, kept: string, o: ObserveOptions): Promise<string | undefined> {
  if (kept === "") return undefined;
  try {
    await verifyCaCertificate({ certificatePem: caCertPem, rootPem: kept, publicKey: key.publicKey, now: o.now, clockSkewToleranceMs: o.clockSkewToleranceMs });
    return kept;
  } catch (err) {
    if (err instanceof CertificateVerificationError) return undefined;
    throw err;
  }
}

/** "namespace/name" of the IssuedCertificate at `ref` (whose staged key lives there), if there is one. */
async function issuedCertificateAt(r: Readers, ref: ObjectRef): Promise<string | undefined> {
  const cached = r.cache ? r.cache.issuedCertificate(ref.namespace, ref.name) : NOT_CACHED;
  if (cached !== NOT_CACHED) return cached ? `${ref.namespace}/${ref.name}` : undefined;
  try {
    return (await r.issuedCertificates.get(ref.namespace, ref.name)) ? `${ref.namespace}/${ref.name}` : undefined;
  } catch (err) {
    // An agent limited to one namespace (the chart's watchNamespace) may not read IssuedCertificates in
    // the target's: it manages none there, so it cannot know of a collision (a limitation, not an error).
    if (statusOf(err) === 403) return undefined;
    throw err;
  }
}

/** Hex SHA-256 of the key a PEM certificate certifies; "" when there is none or it does not parse. */
async function certifiedKeyFingerprint(pem: string | undefined): Promise<string> {
  if (!pem) return "";
  try {
    return await publicKeyFingerprint((await parseSingleCertificatePem(pem)).publicKey);
  } catch {
    return "";
  }
}

async function summariseStagedKey(secret: Secret | undefined): Promise<StagedKeySummary> {
  if (!secret) return { state: "missing" };
  const conflict = stagedKeyConflict(secret);
  if (conflict) return { state: "foreign", message: conflict };
  const stamp = readStamp(secret.metadata);
  const pem = secretData(secret, PRIVATE_KEY_SECRET_KEY);
  const unreadable = (message: string): StagedKeySummary => ({ state: "unreadable", stamp, message });
  if (!pem) return unreadable(`staged key ${secret.metadata.namespace}/${secret.metadata.name} is empty`);
  try {
    const key = await importPrivateKeyPem(pem);
    return { state: "ready", stamp, pem, key, fingerprint: await publicKeyFingerprint(key.publicKey) };
  } catch {
    return unreadable(`staged key ${secret.metadata.namespace}/${secret.metadata.name} cannot be imported`);
  }
}

function summariseRequest(cr: CertificateRequest | undefined): RequestSummary {
  if (!cr) return { state: "missing" };
  const status = cr.status;
  // A status from before our latest spec write describes an older CSR: it must never be paired with
  // our key (the original's stale-FINISHED defect).
  const current = status !== undefined && status.observedGeneration === cr.metadata.generation;
  const answer = !current || !status.state || status.state === "PENDING" ? "pending" : status.state === "FAILED" ? "failed" : "finished";
  return {
    state: "present",
    stamp: readStamp(cr.metadata),
    answer,
    error: status?.error ?? "",
    certificatePem: decodeBytes(status?.signedCertificate) ?? "",
    rootPem: decodeBytes(status?.signingRootCa) ?? "",
  };
}

async function verdictOn(request: Extract<RequestSummary, { state: "present" }>, key: ImportedPrivateKey,
  intent: CertificateIntent, o: ObserveOptions): Promise<Verdict> {
  try {
    const certificate = await verifyIssuedCertificate({
      certificatePem: request.certificatePem,
      rootPem: request.rootPem,
      publicKey: key.publicKey,
      hosts: intent.hosts,
      now: o.now,
      clockSkewToleranceMs: o.clockSkewToleranceMs,
    });
    return { ok: true, certificate };
  } catch (err) {
    if (err instanceof CertificateVerificationError) return { ok: false, error: err };
    throw err;
  }
}

/** describeKeySpec of what the intent asks for, to compare with a summary's keyDescription. */
export const intendedKeyDescription = (intent: CertificateIntent) => describeKeySpec(intent.keySpec);
