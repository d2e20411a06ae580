// The hand-off between the IssuedCertificate reconciler and the pod bouncer, through the API: the
// former writes a bounce request on the PodBounceDirective (which issuance, since when), the latter
// writes its progress for that same cycle. Both survive restarts and failovers.
import type { PodBounceDirective } from "../../shared/api/types";
import { BOUNCE_PROGRESS_ANNOTATION, BOUNCE_REQUEST_ANNOTATION } from "../constants";

export interface BounceRequest {
  /** "<namespace>/<name>#<revision>" of the issuance whose certificate the pods must load. */
  cycle: string;
  requestedAt: string;
}

export type BounceOutcome = "waiting" | "error" | "done";

export interface BounceProgress {
  cycle: string;
  outcome: BounceOutcome;
  message: string;
}

export const cycleOf = (namespace: string, name: string, revision: number) => `${namespace}/${name}#${revision}`;

/** The IssuedCertificate key ("namespace/name") of a cycle. */
export const ownerOfCycle = (cycle: string) => cycle.split("#")[0];

export function readBounceRequest(d: PodBounceDirective | undefined): BounceRequest | undefined {
  const parsed = parse(d?.metadata.annotations?.[BOUNCE_REQUEST_ANNOTATION]);
  return typeof parsed?.cycle === "string" && typeof parsed.requestedAt === "string" ? { cycle: parsed.cycle, requestedAt: parsed.requestedAt } : undefined;
}

export function readBounceProgress(d: PodBounceDirective | undefined): BounceProgress | undefined {
  const parsed = parse(d?.metadata.annotations?.[BOUNCE_PROGRESS_ANNOTATION]);
  const outcome = parsed?.outcome;
  if (typeof parsed?.cycle !== "string" || (outcome !== "waiting" && outcome !== "error" && outcome !== "done")) return undefined;
  return { cycle: parsed.cycle, outcome, message: typeof parsed.message === "string" ? parsed.message : "" };
}

function parse(text: string | undefined): Record<string, unknown> | undefined {
  if (!text) return undefined;
  try {
    const value = JSON.parse(text) as unknown;
    return value && typeof value === "object" ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
