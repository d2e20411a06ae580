// Names the agent writes onto the objects it owns, and the reasons of its Events and transitions.

export const COMPONENT = "cert-agent";

/** Every Secret and CertificateRequest the agent writes carries this label (and only those do). */
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY_VALUE = "cert-agent";
export const MANAGED_SELECTOR = `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE}`;

/**
 * The label Gloo Mesh's own certificate agent puts on everything it writes, `cacerts` included. Its
 * value is the namespace that agent runs in (its POD_NAMESPACE, default `gloo-mesh`), which is also
 * where Gloo Mesh's management plane writes the IssuedCertificates for it. A target secret of type
 * ISSUED_SECRET_TYPE labelled with the IssuedCertificate's own namespace is adopted (a migration).
 */
export const ORIGINAL_AGENT_LABEL = "agent.certificates.mesh.gloo.solo.io";

/** "namespace/name" of the IssuedCertificate an object was made for (target secrets live elsewhere). */
export const OWNER_ANNOTATION = "cert-agent.io/issued-certificate";
/**
 * The issuance revision: a counter incremented once per issuance (spec change, re-issue, retry,
 * renewal). Stamped on the staged key, the CertificateRequest and the target secret, and kept on the
 * IssuedCertificate, it tells two issuances of the same generation apart.
 */
export const REVISION_ANNOTATION = "cert-agent.io/revision";
/** Bookkeeping on the IssuedCertificate (its status schema is Gloo Mesh's, so it lives in annotations):
 * consecutive failures, the typed reason of the last one, and when the next retry is due. A restart or
 * a failover therefore keeps the same backoff. */
export const FAILURES_ANNOTATION = "cert-agent.io/failures";
export const FAILURE_REASON_ANNOTATION = "cert-agent.io/failure-reason";
export const RETRY_AFTER_ANNOTATION = "cert-agent.io/retry-after";
/** Hex SHA-256 of the public key (SPKI): identifies a key without revealing it. */
export const KEY_FINGERPRINT_ANNOTATION = "cert-agent.io/public-key-sha256";
/** Set by users on an IssuedCertificate to pick the key type: RSA (default), ECDSA-P256, ECDSA-P384. */
export const KEY_ALGORITHM_ANNOTATION = "cert-agent.io/key-algorithm";

/** On a PodBounceDirective, written by the IssuedCertificate reconciler in ISSUED: JSON
 * {"cycle":"<ns>/<name>#<revision>","requestedAt":"<RFC 3339>"}, the issuance whose pods must restart. */
export const BOUNCE_REQUEST_ANNOTATION = "cert-agent.io/bounce-request";
/** On a PodBounceDirective, written by the bouncer: JSON {"cycle","outcome":"waiting"|"error"|"done","message"};
 * status.podsBounced belongs to that cycle (a new cycle resets it). */
export const BOUNCE_PROGRESS_ANNOTATION = "cert-agent.io/bounce-progress";
/** On a PodBounceDirective, written by the bouncer with each record: JSON {"cycle","groups":[[uid...]...]},
 * the uids of status.podsBounced's pods, so a same-named replacement (StatefulSet) is told apart. */
export const BOUNCED_UIDS_ANNOTATION = "cert-agent.io/bounced-uids";
/** On a workload's pod template: the bounce cycle that restarted it (a rollout restart, like kubectl's). */
export const RESTARTED_FOR_ANNOTATION = "cert-agent.io/restarted-for";

export const PRIVATE_KEY_SECRET_TYPE = "certificates.mesh.gloo.solo.io/generated_private_key";
export const PRIVATE_KEY_SECRET_KEY = "private-key";
export const ISSUED_SECRET_TYPE = "certificates.mesh.gloo.solo.io/issued_certificate";

/** Keys of the Istio plugged-in CA secret. */
export const CA_CERT = "ca-cert.pem";
export const CA_KEY = "ca-key.pem";
export const CERT_CHAIN = "cert-chain.pem";
export const ROOT_CERT = "root-cert.pem";

/** Reasons: the `reason` of Events and of transition log lines. */
export const Reason = {
  SpecChanged: "SpecChanged",
  InvalidSpec: "InvalidSpec",
  KeyAlgorithmChanged: "KeyAlgorithmChanged",
  HostsChanged: "HostsChanged",
  TargetSecretIncomplete: "TargetSecretIncomplete",
  StagedKeySecretConflict: "StagedKeySecretConflict",
  StagedKeyUnreadable: "StagedKeyUnreadable",
  WaitingForValidity: "WaitingForValidity",
  CertificateRequested: "CertificateRequested",
  CertificateRequestMissing: "CertificateRequestMissing",
  PrivateKeyMissing: "PrivateKeyMissing",
  IssuerFailed: "IssuerFailed",
  CertificateRejected: "CertificateRejected",
  TargetSecretConflict: "TargetSecretConflict",
  /** The target is at another IssuedCertificate's staged-key name (<its namespace>/<its name>). */
  TargetSecretCollision: "TargetSecretCollision",
  /** Ours and parseable, but not a CA istiod can use: untrusted by root-cert.pem, cert-chain.pem wrong, no CA, not valid yet. */
  TargetSecretInvalid: "TargetSecretInvalid",
  /** The target's or the staged key's namespace is not one of --secret-namespaces: the agent may not touch Secrets there. */
  SecretNamespaceNotWatched: "SecretNamespaceNotWatched",
  /** API errors that a retry does not cure (api-failures.ts). */
  TargetNamespaceMissing: "TargetNamespaceMissing",
  APIRequestForbidden: "APIRequestForbidden",
  APIRequestRefused: "APIRequestRefused",
  APIRequestFailed: "APIRequestFailed",
  /** The target secret Gloo Mesh's own agent wrote for this IssuedCertificate was taken over (labels and stamp added, data kept). */
  AdoptedOriginalSecret: "AdoptedOriginalSecret",
  Issued: "Issued",
  Finished: "Finished",
  TargetSecretMissing: "TargetSecretMissing",
  Retrying: "Retrying",
  Renewing: "Renewing",
  RenewalOverdue: "RenewalOverdue",
  CertificateExpired: "CertificateExpired",
  BounceRequested: "BounceRequested",
  PodsRestarted: "PodsRestarted",
  NoPodsMatched: "NoPodsMatched",
  BounceWaiting: "BounceWaiting",
  BounceFailed: "BounceFailed",
  BounceTimedOut: "BounceTimedOut",
  PodBounceDirectiveMissing: "PodBounceDirectiveMissing",
  /** Root rotation (root-rotation.ts): step 1 written, the target trusts the old and the new roots (a Warning, always). */
  RootChanged: "RootChanged",
  /** A new root waits for its SHA-256 to be approved (--root-change-policy=require-approval). */
  RootChangeNotApproved: "RootChangeNotApproved",
  /** Step 1 written; the istio-ca-root-cert ConfigMaps do not all hold every root yet. */
  TrustBundlePropagating: "TrustBundlePropagating",
  /** Step 3: the overlap is over, root-cert.pem holds the new roots only. */
  RootOverlapEnded: "RootOverlapEnded",
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];
