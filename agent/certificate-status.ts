// The `certificates` section of /statusz: one row per IssuedCertificate in the agent's informer
// cache, with what the agent knows about it. Read-only: the rows are built from the cache, the
// PodBounceDirectives' progress annotations and the expiry and renewal times the reconciler already
// records in cert_agent_certificate_{expiration,renewal}_timestamp_seconds; nothing here calls the API server.
import type { Gauge } from "prom-client";
import type { IssuedCertificate, IssuedCertificateState, PodBounceDirective } from "../shared/api/types";
import { BounceProgress, ownerOfCycle, readBounceProgress } from "./bouncer/cycle";

export interface CertificateStatus {
  namespace: string;
  name: string;
  /** status.state; null before the agent first wrote one. */
  state: IssuedCertificateState | null;
  /** status.error ("" when none). */
  error: string;
  /** NotAfter of the certificate in the target secret, as the agent last saw it; null: not known yet. */
  notAfter: string | null;
  /** When the agent renews this certificate (agent/renewal.ts), as it last computed it; null: not known yet. */
  renewalTime: string | null;
  /** The pod bouncer's progress for this certificate's latest cycle (the directive's
   * cert-agent.io/bounce-progress); null when there is no directive or its progress is another's. */
  bounce: BounceProgress | null;
}

/** Times the reconciler recorded in a timestamp gauge, by "namespace/name" (a read-only view of it). */
export type Timestamps = ReadonlyMap<string, Date>;

/** Reads a timestamp gauge's current values (expiry, renewal); the reconciler sets them, this never writes. */
export async function readTimestamps(gauge: Pick<Gauge<"namespace" | "name">, "get">): Promise<Timestamps> {
  const { values } = await gauge.get();
  const expiries = new Map<string, Date>();
  for (const { labels, value } of values) {
    if (labels.namespace !== undefined && labels.name !== undefined) expiries.set(`${labels.namespace}/${labels.name}`, new Date(value * 1000));
  }
  return expiries;
}

export function certificateStatuses(
  certificates: readonly IssuedCertificate[],
  directives: readonly PodBounceDirective[],
  expiries: Timestamps,
  renewals: Timestamps,
): CertificateStatus[] {
  const directiveByKey = new Map(directives.map((d) => [`${d.metadata.namespace}/${d.metadata.name}`, d]));
  return certificates
    .map((ic) => {
      const namespace = ic.metadata.namespace ?? "";
      const name = ic.metadata.name ?? "";
      const key = `${namespace}/${name}`;
      const ref = ic.spec?.podBounceDirective;
      // As the reconciler reads it: a directive without a namespace is in the IssuedCertificate's.
      const directive = ref?.name ? directiveByKey.get(`${ref.namespace || namespace}/${ref.name}`) : undefined;
      const progress = readBounceProgress(directive);
      return {
        namespace,
        name,
        state: ic.status?.state ?? null,
        error: ic.status?.error ?? "",
        notAfter: expiries.get(key)?.toISOString() ?? null,
        renewalTime: renewals.get(key)?.toISOString() ?? null,
        // A directive may serve several IssuedCertificates: only this one's cycle is its progress.
        bounce: progress && ownerOfCycle(progress.cycle) === key ? progress : null,
      };
    })
    .sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}
