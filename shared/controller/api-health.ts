// What the agent's requests to the API server say about it, fed by ObservedKubeConfig (every
// request passes there): failed calls by verb and code (cert_agent_api_errors_total), the last
// successful call, and the clock skew between us and the API server read from the Date header of
// its responses (cert_agent_clock_skew_seconds). Skew matters because Lease expiry, certificate
// validity and retry times are all compared across machines.
import { Counter, Gauge, Registry } from "prom-client";
import type { Logger } from "winston";
import type { ApiCallOutcome, ApiObserver } from "../kube/observed-kubeconfig";
import { Clock } from "./clock";
import { errorMessage } from "./errors";

export const DEFAULT_CLOCK_SKEW_WARNING_MS = 60_000;

/** The code label of a call that got no HTTP response at all (client-go's rest_client metrics use the same). */
export const NO_RESPONSE_CODE = "<error>";

/**
 * Whether a request failed. 404 and 409 are answers, not failures: the agent reads objects that may
 * not exist yet (a GET's 404 is "absent"), and writes with optimistic concurrency (a 409 means "read
 * again"); counting them would make the error rate of a healthy agent never zero.
 */
export function isFailure(outcome: ApiCallOutcome): boolean {
  if (outcome.status === undefined) return true;
  return outcome.status >= 400 && outcome.status !== 404 && outcome.status !== 409;
}

export interface ApiFacts {
  /** When a request last got an answer that is not a failure (below 400, or 404/409). */
  lastSuccessAt?: Date;
  /** When a request last failed (no response, or a status of 400 or more but 404 and 409), and how. */
  lastErrorAt?: Date;
  lastError?: string;
  /** Our clock minus the API server's (positive: ours is ahead), the smallest value the last measurement allows. */
  clockSkewMs?: number;
  clockSkewMeasuredAt?: Date;
  clockSkewWarningMs: number;
  /** |clockSkewMs| > clockSkewWarningMs. */
  clockSkewExceeded: boolean;
}

/**
 * The skew a response proves, in ms. The Date header has whole seconds, so when the server wrote it
 * its clock stood in [date, date + 1 s); our clock stood in [sentAt, receivedAt]. Any skew in
 * [sentAt - (date + 1 s), receivedAt - date] fits; this returns the one closest to zero (0 when
 * they may agree), so a slow answer or the truncation never raises a false warning.
 */
export function clockSkewMs(sentAt: Date, receivedAt: Date, date: Date): number {
  const least = sentAt.getTime() - (date.getTime() + 1000);
  const most = receivedAt.getTime() - date.getTime();
  if (least > 0) return least;
  if (most < 0) return most;
  return 0;
}

export interface ApiHealthOptions {
  clock: Clock;
  registry: Registry;
  log: Logger;
  clockSkewWarningMs?: number;
}

export class ApiHealth implements ApiObserver {
  private readonly errors: Counter<"verb" | "code">;
  private readonly skewGauge: Gauge;
  private readonly facts: ApiFacts;

  constructor(private readonly o: ApiHealthOptions) {
    this.facts = { clockSkewWarningMs: o.clockSkewWarningMs ?? DEFAULT_CLOCK_SKEW_WARNING_MS, clockSkewExceeded: false };
    this.errors = new Counter({
      name: "cert_agent_api_errors_total",
      help: `API server requests that failed, by Kubernetes verb and HTTP status code (${NO_RESPONSE_CODE}: no response, e.g. connection refused or timed out; 404 and 409 are answers, not counted)`,
      labelNames: ["verb", "code"],
      registers: [o.registry],
    });
    this.skewGauge = new Gauge({
      name: "cert_agent_clock_skew_seconds",
      help: "This agent's clock minus the API server's, from the Date header of its last response (positive: ours is ahead; 1 s resolution)",
      registers: [o.registry],
    });
  }

  begin(verb: string): (outcome: ApiCallOutcome) => void {
    const sentAt = this.o.clock.now();
    return (outcome) => this.finish(verb, sentAt, outcome);
  }

  private finish(verb: string, sentAt: Date, outcome: ApiCallOutcome): void {
    const receivedAt = this.o.clock.now();
    const date = outcome.date ? new Date(outcome.date) : undefined;
    if (date && !Number.isNaN(date.getTime())) this.measureSkew(clockSkewMs(sentAt, receivedAt, date), receivedAt);
    if (!isFailure(outcome)) {
      this.facts.lastSuccessAt = receivedAt;
      return;
    }
    const code = outcome.status === undefined ? NO_RESPONSE_CODE : String(outcome.status);
    this.errors.inc({ verb, code });
    this.facts.lastErrorAt = receivedAt;
    this.facts.lastError = outcome.status === undefined ? `${verb}: ${errorMessage(outcome.error)}` : `${verb}: HTTP ${outcome.status}`;
  }

  private measureSkew(ms: number, at: Date): void {
    const exceeded = Math.abs(ms) > this.facts.clockSkewWarningMs;
    // One line when the skew crosses the threshold and one when it is back, not one per response.
    if (exceeded && !this.facts.clockSkewExceeded) {
      this.o.log.warn("clock skew with the API server exceeds the warning threshold", { skewSeconds: ms / 1000, warningSeconds: this.facts.clockSkewWarningMs / 1000 });
    } else if (!exceeded && this.facts.clockSkewExceeded) {
      this.o.log.info("clock skew with the API server is back within the warning threshold", { skewSeconds: ms / 1000 });
    }
    this.facts.clockSkewMs = ms;
    this.facts.clockSkewMeasuredAt = at;
    this.facts.clockSkewExceeded = exceeded;
    this.skewGauge.set(ms / 1000);
  }

  snapshot(): ApiFacts {
    return { ...this.facts };
  }
}
