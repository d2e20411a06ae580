// Time as a dependency: controllers take a Clock so tests can drive time instead of sleeping.

export type Cancel = () => void;

export interface Clock {
  now(): Date;
  /** Calls fn after ms. Safe for any delay (Node fires timers over 2^31-1 ms after 1 ms). */
  setTimeout(fn: () => void, ms: number): Cancel;
}

/** Node's setTimeout takes at most 2^31-1 ms (~24.8 days); longer delays are chained in chunks. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export const systemClock: Clock = {
  now: () => new Date(),
  setTimeout(fn, ms) {
    let timer: NodeJS.Timeout;
    const deadline = Date.now() + Math.max(0, ms);
    const arm = () => {
      const remaining = deadline - Date.now();
      if (remaining > MAX_TIMER_MS) timer = setTimeout(arm, MAX_TIMER_MS);
      else timer = setTimeout(fn, Math.max(0, remaining));
      timer.unref?.();
    };
    arm();
    return () => clearTimeout(timer);
  },
};

/** A clock for tests: time moves only when advance() is called. */
export class FakeClock implements Clock {
  private current: number;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 0;

  constructor(start: Date = new Date("2026-01-01T00:00:00Z")) {
    this.current = start.getTime();
  }

  now(): Date {
    return new Date(this.current);
  }

  setTimeout(fn: () => void, ms: number): Cancel {
    const id = this.nextId++;
    this.timers.push({ at: this.current + Math.max(0, ms), fn, id });
    return () => {
      this.timers = this.timers.filter((t) => t.id !== id);
    };
  }

  /** Moves time forward, firing due timers in order. */
  advance(ms: number): void {
    const target = this.current + ms;
    for (;;) {
      const due = this.timers.filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.current = due.at;
      due.fn();
    }
    this.current = target;
  }

  pendingTimers(): number {
    return this.timers.length;
  }
}
