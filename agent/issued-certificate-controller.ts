// The IssuedCertificate controller: what wakes the reconciler, and how many run at once.
//   for      IssuedCertificates (one namespace with --namespace, else all)
//   owns     our CertificateRequests (the issuer's answer wakes the IssuedCertificate of the same name)
//   watches  our Secrets, staged keys and targets alike (label selector), mapped through the owner
//            annotation: one informer per namespace of --secret-namespaces (a Role in each is all
//            the agent needs), else one for all namespaces (target secrets live in other namespaces
//            than their IssuedCertificate, e.g. istio-system); and PodBounceDirectives, mapped through
//            the bounce request the reconciler wrote (the bouncer's progress wakes the IssuedCertificate).
import { KubernetesObject } from "@kubernetes/client-node";
import { CertificateRequest, ISSUED_CERTIFICATE, IssuedCertificate, PodBounceDirective } from "../shared/api/types";
import { Manager, SourceSpec } from "../shared/controller/manager";
import { CustomResourceClient } from "../shared/kube/custom-objects";
import { dropManagedFields, keepMetadataOnly } from "../shared/kube/generic";
import { dropSecretData, SecretClient } from "../shared/kube/secrets";
import { Config } from "./config";
import { MANAGED_SELECTOR, OWNER_ANNOTATION } from "./constants";
import { ownerOfCycle, readBounceRequest } from "./bouncer/cycle";
import { IssuedCertificateReconciler, ReconcilerOptions } from "./issued-certificate-reconciler";
import { informerCache } from "./reconciler-cache";

export interface ControllerClients extends Omit<ReconcilerOptions, "retryBackoff" | "resyncMs" | "clockSkewToleranceMs" | "conflictRecheckMs" | "bounceTimeoutMs" | "renewBefore" | "rootChangePolicy" | "rootOverlapMs" | "podNamespaces" | "cache" | "certificateRequests" | "secrets" | "directives"> {
  /** The unwrapped client, for the watch (tests may wrap the one the reconciler writes with). */
  issuedCertificateWatch: CustomResourceClient<IssuedCertificate>;
  certificateRequests: CustomResourceClient<CertificateRequest>;
  secrets: SecretClient;
  directives: CustomResourceClient<PodBounceDirective>;
}

export const CONTROLLER_NAME = "issuedcertificate";

export function registerIssuedCertificateController(manager: Manager, config: Config, c: ControllerClients): void {
  const ns = config.namespace;
  const inScope = (key: string) => !ns || key.startsWith(`${ns}/`);
  const issued: SourceSpec<IssuedCertificate & KubernetesObject> = {
    name: "issuedcertificates",
    path: c.issuedCertificateWatch.watchPath(ns),
    list: () => c.issuedCertificateWatch.list(ns) as never,
    // Held whole: passes read their IssuedCertificate from this cache (reconciler-cache.ts).
    trim: dropManagedFields,
  };
  const requests: SourceSpec = {
    name: "certificaterequests",
    path: c.certificateRequests.watchPath(ns),
    list: () => c.certificateRequests.list(ns, MANAGED_SELECTOR) as never,
    labelSelector: MANAGED_SELECTOR,
    // Mapped through the owner reference only (the reconciler GETs the request): no CSR or
    // certificate stays in the cache.
    trim: keepMetadataOnly,
  };
  const secrets = (config.secretNamespaces ?? [undefined]).map((secretNs) => ({
    namespace: secretNs,
    spec: {
      name: secretNs ? `secrets/${secretNs}` : "secrets",
      path: c.secrets.watchPath(secretNs),
      list: () => c.secrets.list(secretNs, MANAGED_SELECTOR) as never,
      labelSelector: MANAGED_SELECTOR,
      // Only the owner annotation is read from these events (the reconciler GETs what it uses):
      // no private key stays in the cache, and the cache stays small.
      trim: dropSecretData,
    } satisfies SourceSpec,
  }));
  // The same informers the controller is woken by (the manager shares one per path and selector).
  const cache = informerCache({ namespace: ns, source: manager.source(issued) }, { namespace: ns, source: manager.source(requests) },
    secrets.map((s) => ({ namespace: s.namespace, source: manager.source(s.spec) })));
  manager.addController<IssuedCertificate & KubernetesObject>({
    name: CONTROLLER_NAME,
    reconciler: new IssuedCertificateReconciler({
      ...c,
      retryBackoff: { baseMs: config.retryBaseDelayMs, maxMs: config.retryMaxDelayMs },
      resyncMs: config.resyncMs,
      clockSkewToleranceMs: config.clockSkewToleranceMs,
      conflictRecheckMs: config.conflictRecheckMs,
      bounceTimeoutMs: config.bounceTimeoutMs,
      renewBefore: config.renewBefore,
      secretNamespaces: config.secretNamespaces,
      podNamespaces: config.podNamespaces,
      rootChangePolicy: config.rootChangePolicy,
      rootOverlapMs: config.rootOverlapMs,
      cache,
    }),
    concurrency: config.concurrency,
    timeoutMs: config.reconcileTimeoutMs,
    // Transient API errors retry fast at first; the FAILED state has its own, slower backoff.
    backoff: { baseMs: 200, maxMs: 60_000 },
    accept: inScope,
    for: issued,
    owns: [{ ownerKind: ISSUED_CERTIFICATE.kind, source: requests }],
    watches: [...secrets.map(({ spec }) => ({
      source: spec,
      map: (secret: KubernetesObject) => {
        const owner = secret.metadata?.annotations?.[OWNER_ANNOTATION];
        return owner ? [owner] : [];
      },
    })), {
      // The same informer as the bouncer's (the manager shares it).
      source: { name: "podbouncedirectives", path: c.directives.watchPath(ns), list: () => c.directives.list(ns) as never },
      map: (directive) => {
        const request = readBounceRequest(directive as PodBounceDirective);
        return request ? [ownerOfCycle(request.cycle)] : [];
      },
    }],
  });
}

