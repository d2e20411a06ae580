// Leader election on a coordination.k8s.io/v1 Lease, after client-go's leaderelection package.
//
// Candidates read the Lease and take it when it is absent, released (no holder) or expired
// (renewTime + leaseDurationSeconds in the past), writing with the resourceVersion they read, so of
// several candidates exactly one wins and the others get a 409. The leader renews every retryPeriod;
// if it cannot renew for renewDeadline (< leaseDuration, so before anyone else may take the Lease),
// or it sees the Lease held by someone else, it calls onStoppedLeading and stops for good: the
// caller exits the process, as controller-runtime does, so a stale leader never keeps writing.
//
// Only get, create and update are used on the Lease (the verbs the Helm chart's Role grants).
// Waiting goes through the injected Clock; every request is aborted after requestTimeoutMs.
import {
  CoordinationV1Api,
  KubeConfig,
  Observable,
  V1MicroTime,
  type ConfigurationOptions,
  type RequestContext,
  type ResponseContext,
  type V1Lease,
  type V1LeaseSpec,
} from "@kubernetes/client-node";
import type { Logger } from "winston";
import { Cancel, Clock, systemClock } from "./clock";
import { errorMessage } from "./errors";
import { isConflict, isNotFound } from "../kube/errors";

/** The Lease calls the elector makes (a CoordinationV1Api; injectable for tests). */
export type LeaseClient = Pick<CoordinationV1Api, "readNamespacedLease" | "createNamespacedLease" | "replaceNamespacedLease">;

export interface LeaderElectorOptions {
  kc: KubeConfig;
  /** Namespace and name of the Lease. */
  namespace: string;
  name: string;
  /** This candidate's holderIdentity; unique per process (e.g. the pod name). */
  identity: string;
  /** How long a Lease is valid after its renewTime; written as whole seconds (rounded up). Default 15000. */
  leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before giving up. Default 10000; must be < leaseDurationMs. */
  renewDeadlineMs?: number;
  /** Time between attempts (acquire attempts add up to 20 % jitter). Default 2000. */
  retryPeriodMs?: number;
  /** Default systemClock. */
  clock?: Clock;
  log: Logger;
  /** Called (not awaited: renewing goes on meanwhile) once the Lease is acquired. A rejection is logged. */
  onStartedLeading: () => void | Promise<void>;
  /** Called once when leadership is lost involuntarily (renew deadline passed, Lease taken or
   * deleted); run() resolves after it settles. Not called by release() or stop(). */
  onStoppedLeading: () => void | Promise<void>;
  /** Per-request timeout. Default renewDeadlineMs / 2. */
  requestTimeoutMs?: number;
  /** Randomness in [0, 1) for the jitter. Default Math.random. */
  random?: () => number;
  /** Default kc.makeApiClient(CoordinationV1Api). */
  client?: LeaseClient;
}

export const DEFAULT_LEASE_DURATION_MS = 15_000;
export const DEFAULT_RENEW_DEADLINE_MS = 10_000;
export const DEFAULT_RETRY_PERIOD_MS = 2_000;
/** Acquire attempts wait retryPeriod * (1 + JITTER_FACTOR * random). */
export const JITTER_FACTOR = 0.2;

// ---- Pure logic (unit-tested) ----

/** Parses a MicroTime as client-node returns it: it deserializes MicroTime fields as the raw
 * string ("2026-01-01T00:00:00.123456Z"), but a locally built object may hold a Date. */
export function parseMicroTime(value: unknown): Date | undefined {
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? undefined : value;
  if (typeof value === "string" && value !== "") {
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? undefined : new Date(ms);
  }
  return undefined;
}

/** A Date that client-node serializes as a MicroTime (six fractional digits), as the API expects. */
export function toMicroTime(date: Date): V1MicroTime {
  return new V1MicroTime(date.getTime());
}

/** When the Lease stops being valid: renewTime + leaseDurationSeconds; undefined when either is
 * missing or invalid (such a Lease counts as expired, as in client-go). */
export function leaseExpiry(lease: V1Lease): Date | undefined {
  const renew = parseMicroTime(lease.spec?.renewTime);
  const seconds = lease.spec?.leaseDurationSeconds;
  if (!renew || typeof seconds !== "number" || !(seconds > 0)) return undefined;
  return new Date(renew.getTime() + seconds * 1000);
}

/** True when the Lease may be taken over: its expiry is at or before now. */
export function leaseExpired(lease: V1Lease, now: Date): boolean {
  const expiry = leaseExpiry(lease);
  return expiry === undefined || expiry.getTime() <= now.getTime();
}

export function leaseHolder(lease: V1Lease | undefined): string {
  return lease?.spec?.holderIdentity ?? "";
}

/**
 * What a candidate does with the Lease it just read (undefined: 404):
 * - create: there is no Lease; create it.
 * - acquire: released (no holder) or expired; take it (update with its resourceVersion).
 * - renew: we hold it; update renewTime. Also for a candidate that is not leading yet: the same
 *   identity held it before (a restarted container), like client-go.
 * - wait: someone else holds a valid Lease.
 * - lost: we are leading but the Lease is gone or has another holder (even an empty or expired
 *   one: someone else wrote it, so we cannot know that nobody else led meanwhile).
 */
export type LeaseAction = "create" | "acquire" | "renew" | "wait" | "lost";

export function decideLeaseAction(lease: V1Lease | undefined, identity: string, now: Date, leading: boolean): LeaseAction {
  const holder = leaseHolder(lease);
  if (leading) return lease && holder === identity ? "renew" : "lost";
  if (!lease) return "create";
  if (holder === identity) return "renew";
  if (holder === "" || leaseExpired(lease, now)) return "acquire";
  return "wait";
}

/** The spec to write to hold the Lease (create, acquire or renew), like client-go: a renewal keeps
 * acquireTime and leaseTransitions; a change of holder sets acquireTime and counts a transition. */
export function heldLeaseSpec(old: V1LeaseSpec | undefined, identity: string, now: Date, leaseDurationSeconds: number): V1LeaseSpec {
  const same = old !== undefined && (old.holderIdentity ?? "") === identity;
  const time = toMicroTime(now);
  return {
    ...old,
    holderIdentity: identity,
    leaseDurationSeconds,
    // Kept as read (client-node leaves it a string) so a renewal does not rewrite its precision.
    acquireTime: same && old.acquireTime ? old.acquireTime : time,
    renewTime: time,
    leaseTransitions: old === undefined ? 0 : same ? (old.leaseTransitions ?? 0) : (old.leaseTransitions ?? 0) + 1,
  };
}

/** The spec written on release: no holder and a 1 s duration, so any candidate takes it at once
 * (client-go's ReleaseOnCancel). */
export function releasedLeaseSpec(old: V1LeaseSpec | undefined, now: Date): V1LeaseSpec {
  const time = toMicroTime(now);
  return {
    ...old,
    holderIdentity: "",
    leaseDurationSeconds: 1,
    acquireTime: time,
    renewTime: time,
    leaseTransitions: old?.leaseTransitions ?? 0,
  };
}

/** Delay before the next acquire attempt: retryPeriod plus up to JITTER_FACTOR of it. */
export function acquireRetryDelay(retryPeriodMs: number, random: () => number = Math.random): number {
  return Math.round(retryPeriodMs * (1 + JITTER_FACTOR * random()));
}

/** leaseDurationSeconds for a duration in ms: whole seconds, rounded up (never shorter than asked). */
export function leaseDurationSeconds(leaseDurationMs: number): number {
  return Math.max(1, Math.ceil(leaseDurationMs / 1000));
}

export interface ElectionTiming {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  requestTimeoutMs: number;
}

/** Fills defaults and checks the relations client-go checks; throws on a bad configuration. */
export function electionTiming(opts: Partial<ElectionTiming> & { identity?: string }): ElectionTiming {
  const leaseDurationMs = opts.leaseDurationMs ?? DEFAULT_LEASE_DURATION_MS;
  const renewDeadlineMs = opts.renewDeadlineMs ?? DEFAULT_RENEW_DEADLINE_MS;
  const retryPeriodMs = opts.retryPeriodMs ?? DEFAULT_RETRY_PERIOD_MS;
  const requestTimeoutMs = opts.requestTimeoutMs ?? Math.max(1, Math.floor(renewDeadlineMs / 2));
  const problems: string[] = [];
  if (opts.identity !== undefined && opts.identity === "") problems.push("identity must not be empty");
  for (const [k, v] of Object.entries({ leaseDurationMs, renewDeadlineMs, retryPeriodMs, requestTimeoutMs })) {
    if (!Number.isFinite(v) || v <= 0) problems.push(`${k} must be a positive number (got ${v})`);
  }
  if (!(leaseDurationMs > renewDeadlineMs)) {
    problems.push(`leaseDurationMs (${leaseDurationMs}) must be greater than renewDeadlineMs (${renewDeadlineMs})`);
  }
  if (!(renewDeadlineMs > retryPeriodMs * (1 + JITTER_FACTOR))) {
    problems.push(`renewDeadlineMs (${renewDeadlineMs}) must be greater than ${1 + JITTER_FACTOR} x retryPeriodMs (${retryPeriodMs})`);
  }
  if (problems.length) throw new Error(`invalid leader election settings: ${problems.join("; ")}`);
  return { leaseDurationMs, renewDeadlineMs, retryPeriodMs, requestTimeoutMs };
}

// ---- The elector ----

type Attempt =
  | { ok: true; action: "create" | "acquire" | "renew"; renewTime: Date; lease: V1Lease }
  | { ok: false; reason: "held"; holder: string }
  | { ok: false; reason: "lost"; detail: string }
  | { ok: false; reason: "conflict" }
  | { ok: false; reason: "error"; error: string };

/** Makes client-node pass an AbortSignal to fetch (the request-options hook it offers). */
function signalOptions(signal: AbortSignal): ConfigurationOptions {
  return {
    middleware: [
      {
        pre: (ctx: RequestContext) => {
          ctx.setSignal(signal);
          return new Observable(Promise.resolve(ctx));
        },
        post: (rsp: ResponseContext) => new Observable(Promise.resolve(rsp)),
      },
    ],
    middlewareMergeStrategy: "append",
  };
}

export class LeaderElector {
  private readonly client: LeaseClient;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly timing: ElectionTiming;
  private readonly durationSeconds: number;
  private readonly fields: { identity: string; lease: string; namespace: string };

  private leading = false;
  private stopRequested = false;
  private runPromise: Promise<void> | undefined;
  private releasePromise: Promise<void> | undefined;
  private lost: Promise<void> | undefined;
  /** The Lease as we last wrote it while holding it (resourceVersion for release). */
  private held: V1Lease | undefined;
  private cancelDeadline: Cancel | undefined;
  private wake: (() => void) | undefined;
  private inflight = new Set<AbortController>();
  private lastHolderSeen: string | undefined;
  private lastErrorLogged: string | undefined;

  constructor(private readonly opts: LeaderElectorOptions) {
    this.timing = electionTiming(opts);
    this.durationSeconds = leaseDurationSeconds(this.timing.leaseDurationMs);
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.client = opts.client ?? opts.kc.makeApiClient(CoordinationV1Api);
    this.fields = { identity: opts.identity, lease: opts.name, namespace: opts.namespace };
  }

  /** True from acquiring the Lease until it is lost, released or stop() is called. */
  isLeader(): boolean {
    return this.leading;
  }

  /**
   * Campaigns until the Lease is acquired, calls onStartedLeading, then renews every retryPeriod.
   * Resolves when leadership is lost (after onStoppedLeading settles), or when release() or stop()
   * is called. Never rejects; runs once per LeaderElector.
   */
  run(): Promise<void> {
    if (this.runPromise) return Promise.reject(new Error("LeaderElector.run() was already called"));
    this.runPromise = this.loop();
    return this.runPromise;
  }

  /**
   * Graceful shutdown: stops campaigning/renewing and, if leading, writes the Lease with no holder
   * and leaseDurationSeconds 1 so a successor takes over within one retry period. Stop your workers
   * before calling it. Does not call onStoppedLeading. Never rejects (a failed write is logged: the
   * successor then waits for the Lease to expire).
   */
  release(): Promise<void> {
    this.releasePromise ??= this.shutdown(true);
    return this.releasePromise;
  }

  /** Stops campaigning/renewing without touching the Lease (it expires after leaseDuration), like
   * cancelling client-go's context without ReleaseOnCancel. Does not call onStoppedLeading. */
  stop(): Promise<void> {
    this.releasePromise ??= this.shutdown(false);
    return this.releasePromise;
  }

  private async loop(): Promise<void> {
    // Acquire.
    while (!this.stopRequested) {
      const attempt = await this.tryAcquireOrRenew(false);
      if (attempt.ok) {
        this.held = attempt.lease;
        this.leading = true;
        if (this.stopRequested) return; // shutdown() releases it
        this.log("info", "acquired leadership", {
          leaseTransitions: attempt.lease.spec?.leaseTransitions,
          how: attempt.action,
        });
        this.armDeadline(attempt.renewTime);
        void Promise.resolve()
          .then(() => this.opts.onStartedLeading())
          .catch((err) => this.log("error", "onStartedLeading failed", { error: errorMessage(err) }));
        break;
      }
      if (this.stopRequested) return;
      this.noteFailure(attempt);
      await this.sleep(acquireRetryDelay(this.timing.retryPeriodMs, this.random));
    }
    // Renew.
    while (!this.stopRequested && this.leading) {
      await this.sleep(this.timing.retryPeriodMs);
      if (this.stopRequested || !this.leading) break;
      const attempt = await this.tryAcquireOrRenew(true);
      if (this.stopRequested || !this.leading) {
        if (attempt.ok) this.held = attempt.lease;
        break;
      }
      if (attempt.ok) {
        this.held = attempt.lease;
        this.armDeadline(attempt.renewTime);
      } else if (attempt.reason === "lost") {
        this.lose(attempt.detail);
      } else {
        this.log("warn", "failed to renew lease, will retry", {
          error: attempt.reason === "error" ? attempt.error : "conflict (409): the lease changed, reading it again",
        });
      }
    }
    if (this.lost) await this.lost;
  }

  /** One read-decide-write round. `leading` selects the renew rules (see decideLeaseAction). */
  private async tryAcquireOrRenew(leading: boolean): Promise<Attempt> {
    const now = this.clock.now();
    const { name, namespace } = this.opts;
    let lease: V1Lease | undefined;
    try {
      lease = await this.call((o) => this.client.readNamespacedLease({ name, namespace }, o));
    } catch (err) {
      if (!isNotFound(err)) return { ok: false, reason: "error", error: errorMessage(err) };
    }
    const action = decideLeaseAction(lease, this.opts.identity, now, leading);
    switch (action) {
      case "wait":
        return { ok: false, reason: "held", holder: leaseHolder(lease) };
      case "lost":
        return {
          ok: false,
          reason: "lost",
          detail: !lease
            ? "lease was deleted"
            : leaseHolder(lease) === ""
              ? "lease was released by someone else"
              : `lease is now held by "${leaseHolder(lease)}"`,
        };
      case "create": {
        const body: V1Lease = {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name, namespace },
          spec: heldLeaseSpec(undefined, this.opts.identity, now, this.durationSeconds),
        };
        try {
          const created = await this.call((o) => this.client.createNamespacedLease({ namespace, body }, o));
          return { ok: true, action, renewTime: now, lease: created };
        } catch (err) {
          if (isConflict(err)) return { ok: false, reason: "conflict" };
          return { ok: false, reason: "error", error: errorMessage(err) };
        }
      }
      case "acquire":
      case "renew": {
        // metadata.resourceVersion is the one read: a concurrent writer makes this a 409.
        const body: V1Lease = { ...lease!, spec: heldLeaseSpec(lease!.spec, this.opts.identity, now, this.durationSeconds) };
        try {
          const replaced = await this.call((o) => this.client.replaceNamespacedLease({ name, namespace, body }, o));
          return { ok: true, action, renewTime: now, lease: replaced };
        } catch (err) {
          if (isConflict(err)) return { ok: false, reason: "conflict" };
          if (leading && isNotFound(err)) return { ok: false, reason: "lost", detail: "lease was deleted" };
          return { ok: false, reason: "error", error: errorMessage(err) };
        }
      }
    }
  }

  /** Logs acquire-loop failures without repeating itself every retry period. */
  private noteFailure(attempt: Exclude<Attempt, { ok: true }>): void {
    if (attempt.reason === "held") {
      this.lastErrorLogged = undefined;
      if (attempt.holder !== this.lastHolderSeen) {
        this.lastHolderSeen = attempt.holder;
        this.log("info", "lease held by another candidate, waiting", { holder: attempt.holder });
      }
    } else if (attempt.reason === "error") {
      if (attempt.error !== this.lastErrorLogged) {
        this.lastErrorLogged = attempt.error;
        this.log("warn", "failed to acquire lease, will retry", { error: attempt.error });
      }
    } else {
      this.log("debug", "lost the race for the lease, will retry", { reason: attempt.reason });
    }
  }

  /** Leadership ends renewTime + renewDeadline after the last successful write, unless renewed. */
  private armDeadline(renewTime: Date): void {
    this.cancelDeadline?.();
    const ms = renewTime.getTime() + this.timing.renewDeadlineMs - this.clock.now().getTime();
    this.cancelDeadline = this.clock.setTimeout(() => {
      this.cancelDeadline = undefined;
      this.lose(`could not renew the lease for ${this.timing.renewDeadlineMs} ms (renew deadline)`);
    }, ms);
  }

  private lose(reason: string): void {
    if (!this.leading || this.stopRequested || this.lost) return;
    this.leading = false;
    this.cancelDeadline?.();
    this.cancelDeadline = undefined;
    for (const ac of this.inflight) ac.abort(new Error("leadership lost"));
    this.wake?.();
    this.log("error", "leadership lost", { reason });
    this.lost = Promise.resolve()
      .then(() => this.opts.onStoppedLeading())
      .catch((err) => this.log("error", "onStoppedLeading failed", { error: errorMessage(err) }));
  }

  private async shutdown(release: boolean): Promise<void> {
    this.stopRequested = true;
    this.cancelDeadline?.();
    this.cancelDeadline = undefined;
    this.wake?.();
    // Let the loop finish its current round (bounded by requestTimeoutMs), so the Lease we hold
    // and its resourceVersion are final.
    if (this.runPromise) await this.runPromise;
    if (!this.leading) return;
    this.leading = false;
    if (!release) {
      this.log("info", "stopped renewing the lease without releasing it", {});
      return;
    }
    try {
      await this.writeRelease();
      this.log("info", "released leadership", {});
    } catch (err) {
      this.log("warn", "failed to release the lease; a successor waits for it to expire", { error: errorMessage(err) });
    }
  }

  /** Writes the released spec over the Lease we hold. On a conflict, reads it again: release only
   * while it still names us. */
  private async writeRelease(): Promise<void> {
    const { name, namespace, identity } = this.opts;
    let lease = this.held;
    for (let attempt = 0; ; attempt++) {
      if (!lease || leaseHolder(lease) !== identity) throw new Error(`lease is no longer held by "${identity}"`);
      const body: V1Lease = { ...lease, spec: releasedLeaseSpec(lease.spec, this.clock.now()) };
      try {
        this.held = await this.call((o) => this.client.replaceNamespacedLease({ name, namespace, body }, o));
        return;
      } catch (err) {
        if (!isConflict(err) || attempt >= 2) throw err;
        lease = await this.call((o) => this.client.readNamespacedLease({ name, namespace }, o));
      }
    }
  }

  /** Runs one API call, aborted after requestTimeoutMs (by the clock) or when leadership is lost. */
  private async call<T>(fn: (options: ConfigurationOptions) => Promise<T>): Promise<T> {
    const ac = new AbortController();
    this.inflight.add(ac);
    const cancel = this.clock.setTimeout(
      () => ac.abort(new Error(`request timed out after ${this.timing.requestTimeoutMs} ms`)),
      this.timing.requestTimeoutMs,
    );
    try {
      return await fn(signalOptions(ac.signal));
    } finally {
      cancel();
      this.inflight.delete(ac);
    }
  }

  /** Waits ms on the clock; shutdown() and lose() cut it short. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.wake = undefined;
        resolve();
      };
      const cancel = this.clock.setTimeout(done, ms);
      this.wake = () => {
        cancel();
        done();
      };
    });
  }

  private log(level: "debug" | "info" | "warn" | "error", message: string, extra: Record<string, unknown>): void {
    this.opts.log.log(level, message, { ...this.fields, ...extra });
  }
}
