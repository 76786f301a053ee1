// The double's clock: real time plus whatever a test adds with `advance`. Timers (session TTLs,
// lock-delays, TTL checks, DeregisterCriticalServiceAfter) fire on real time, or at once when an
// advance passes their deadline, so a test can make "20 s later" happen without waiting. A manual
// clock stands still between advances (nothing fires on its own), for exact deadlines.

interface Timer {
  readonly at: number;
  readonly fn: () => void;
  handle: ReturnType<typeof setTimeout> | undefined;
}

export class DoubleClock {
  private offsetMs = 0;
  private readonly timers = new Set<Timer>();
  private readonly frozenAt: number | undefined;

  constructor(manual = false) {
    this.frozenAt = manual ? Date.now() : undefined;
  }

  now(): number {
    return (this.frozenAt ?? Date.now()) + this.offsetMs;
  }

  /** Moves time forward by `ms` and runs every timer now due, oldest deadline first. */
  advance(ms: number): void {
    if (ms < 0) throw new Error('the double clock never goes backwards');
    this.offsetMs += ms;
    const due = [...this.timers].filter((t) => t.at <= this.now()).sort((a, b) => a.at - b.at);
    for (const t of due) this.fire(t);
    for (const t of this.timers) this.arm(t);
  }

  /** Runs `fn` once at clock time `at`; returns a cancel function. */
  at(at: number, fn: () => void): () => void {
    const timer: Timer = { at, fn, handle: undefined };
    this.timers.add(timer);
    this.arm(timer);
    return () => {
      clearTimeout(timer.handle);
      this.timers.delete(timer);
    };
  }

  /** Drops every pending timer (the double is being thrown away). */
  clear(): void {
    for (const t of this.timers) clearTimeout(t.handle);
    this.timers.clear();
  }

  private arm(timer: Timer): void {
    clearTimeout(timer.handle);
    if (this.frozenAt !== undefined) return;
    // Node timers overflow past 2^31-1 ms; re-arm from there.
    const delay = Math.min(Math.max(0, timer.at - this.now()), 2 ** 31 - 1);
    timer.handle = setTimeout(() => {
      if (timer.at <= this.now()) this.fire(timer);
      else this.arm(timer);
    }, delay);
    timer.handle.unref();
  }

  private fire(timer: Timer): void {
    if (!this.timers.delete(timer)) return;
    clearTimeout(timer.handle);
    timer.fn();
  }
}
