// Coalesces endpoint changes without delaying isolated ones. A change that arrives when the batcher
// is idle (nothing flushed within the last `debounceMs`) is flushed on the next turn of the event
// loop, with whatever arrives in the same turn: it pays no debounce. A change that arrives sooner
// joins the pending batch (a service's latest set wins), which is flushed once changes pause for
// `debounceMs`, or at the latest `maxDelayMs` after its first change, so a burst becomes a few
// pushes and a steady stream of changes can never starve them. Istio debounces every change (a
// quiet period with a maximum); only the changes that follow another pay for coalescing here.
import type { EndpointSet, EndpointSink } from './endpoints.ts';

export interface BatcherOptions {
  /**
   * How long after a flush further changes are coalesced rather than sent at once, and the pause
   * in changes that flushes a batch (default 25 ms).
   */
  readonly debounceMs?: number;
  /** The longest a coalesced change waits (default 50 ms). */
  readonly maxDelayMs?: number;
}

export const DEFAULT_DEBOUNCE_MS = 25;
export const DEFAULT_MAX_DELAY_MS = 50;

export class EndpointBatcher implements EndpointSink {
  private pending = new Map<string, EndpointSet>();
  /** The leading-edge flush of an isolated change, due on the next event-loop turn. */
  private leading: NodeJS.Immediate | undefined;
  /** Running while changes are coalesced: since the last flush, for `debounceMs`. */
  private window: NodeJS.Timeout | undefined;
  private quiet: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly debounceMs: number;
  private readonly maxDelayMs: number;

  constructor(
    private readonly flushTo: (sets: readonly EndpointSet[]) => void,
    o: BatcherOptions = {},
  ) {
    this.debounceMs = o.debounceMs ?? DEFAULT_DEBOUNCE_MS;
    this.maxDelayMs = o.maxDelayMs ?? DEFAULT_MAX_DELAY_MS;
  }

  update(set: EndpointSet): void {
    // A Consul answer already in flight when discovery stopped must not reach a stopped plane.
    if (this.stopped) return;
    this.pending.set(set.service, set);
    if (this.leading) return; // goes with the isolated change flushed next turn
    if (!this.window && !this.deadline) {
      this.leading = setImmediate(() => this.flush());
      return;
    }
    clearTimeout(this.quiet);
    this.quiet = setTimeout(() => this.flush(), this.debounceMs);
    this.deadline ??= setTimeout(() => this.flush(), this.maxDelayMs);
  }

  /** Pushes what is pending now, and coalesces what follows for `debounceMs`. */
  flush(): void {
    this.clearTimers();
    if (this.pending.size === 0) return;
    const sets = [...this.pending.values()];
    this.pending = new Map();
    this.window = setTimeout(() => (this.window = undefined), this.debounceMs);
    this.flushTo(sets);
  }

  stop(): void {
    this.stopped = true;
    this.clearTimers();
    this.pending.clear();
  }

  private clearTimers(): void {
    clearImmediate(this.leading);
    clearTimeout(this.window);
    clearTimeout(this.quiet);
    clearTimeout(this.deadline);
    this.leading = this.window = this.quiet = this.deadline = undefined;
  }
}
