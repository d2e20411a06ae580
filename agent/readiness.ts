// The agent's own readiness check (besides the manager's rules in shared/controller/health.ts): the
// agent is not ready while the API server forbids (403) a request it needs for an IssuedCertificate.
// Such an IssuedCertificate is FAILED with reason APIRequestForbidden (api-failures.ts) and its
// status.error names the refused request; this check reads the informer cache only, so it costs no
// request, says the same on every replica that works, and survives a restart (the FAILED is stored).
//
// Why readiness, and not only status: RBAC missing (a Role edited, the chart's rules out of date, an
// admission plugin such as OwnerReferencesPermissionEnforcement asking for more) does not heal by
// waiting, and it stops the agent's work for every certificate that needs the same request, not just
// one. An informer refused with 403 already makes /readyz fail (health.ts); a refused write now does
// too, so cert_agent_ready drops to 0 and CertAgentNotReady fires. It clears as soon as no
// IssuedCertificate is FAILED for that reason any more: the retry (--retry-base-delay doubling up to
// --retry-max-delay) got through after the RBAC was fixed, or the spec changed, or it was deleted.
// Liveness is untouched: a restart cannot cure RBAC.
import type { IssuedCertificate } from "../shared/api/types";
import type { Check } from "../shared/controller/server";
import { FAILURE_REASON_ANNOTATION, Reason } from "./constants";

/** How many refused IssuedCertificates the check names (the rest are counted). */
export const FORBIDDEN_NAMED = 3;
/** How much of each status.error the check quotes. */
export const FORBIDDEN_ERROR_CHARS = 300;

/** The IssuedCertificates whose latest pass, for their current generation, was refused with 403. */
export function forbiddenCertificates(certificates: readonly IssuedCertificate[]): IssuedCertificate[] {
  return certificates
    .filter((ic) => ic.status?.state === "FAILED"
      && ic.metadata.annotations?.[FAILURE_REASON_ANNOTATION] === Reason.APIRequestForbidden
      // A FAILED of an older generation is stale: the new spec is being worked on.
      && (ic.status.observedGeneration ?? 0) === (ic.metadata.generation ?? 0))
    .sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
}

const bounded = (text: string) => (text.length > FORBIDDEN_ERROR_CHARS ? `${text.slice(0, FORBIDDEN_ERROR_CHARS)}...` : text);

/** The readiness check over the IssuedCertificates in the cache (a function: it reads them each time). */
export function forbiddenCheck(certificates: () => readonly IssuedCertificate[]): Check {
  return () => {
    const refused = forbiddenCertificates(certificates());
    if (refused.length === 0) return { ok: true };
    const named = refused.slice(0, FORBIDDEN_NAMED).map((ic) => `${ic.metadata.namespace}/${ic.metadata.name}: ${bounded(ic.status?.error ?? "")}`);
    const more = refused.length > FORBIDDEN_NAMED ? `; and ${refused.length - FORBIDDEN_NAMED} more` : "";
    return {
      ok: false,
      detail: `${refused.length} IssuedCertificate${refused.length === 1 ? " is" : "s are"} FAILED ${Reason.APIRequestForbidden} ` +
        `(the API server refuses a request the agent needs: fix its RBAC; each clears when its retry gets through): ${named.join("; ")}${more}`,
    };
  };
}
