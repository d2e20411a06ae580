// The seam for restarting pods after a new CA is written (PodBounceDirective). The real bouncer is
// its own piece of work; until then an IssuedCertificate naming a directive finishes with a note.
import { IssuedCertificate } from "../shared/api/types";

export interface BounceResult {
  /** True when every selector has been handled and nothing is waited for. */
  done: boolean;
  requeueAfterMs?: number;
  message?: string;
}

export interface PodBouncer {
  bounce(ic: IssuedCertificate): Promise<BounceResult>;
}

export class NoPodBouncer implements PodBouncer {
  async bounce(ic: IssuedCertificate): Promise<BounceResult> {
    const directive = ic.spec?.podBounceDirective;
    return {
      done: true,
      message: directive
        ? `certificate issued; PodBounceDirective ${directive.namespace}/${directive.name} not run: this agent has no pod bouncer yet, restart istiod to load the new CA`
        : "certificate issued",
    };
  }
}
