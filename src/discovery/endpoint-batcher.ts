// Coalesces bursts of endpoint changes: a service's latest set wins, and a batch is flushed once
// changes pause for `debounceMs`, or at the latest `maxDelayMs` after the first pending change, so a
// steady stream of changes can never starve pushes.
import type { EndpointSet, EndpointSink } from './endpoints.ts';

export interface BatcherOptions {
  readonly debounceMs?: number;
  readonly maxDelayMs?: number;
}

export class EndpointBatcher implements EndpointSink {
  private pending = new Map<string, EndpointSet>();
  private debounce: NodeJS.Timeout | undefined;
  private deadline: NodeJS.Timeout | undefined;
  private readonly debounceMs: number;
  private readonly maxDelayMs: number;

  constructor(
    private readonly flushTo: (sets: readonly EndpointSet[]) => void,
    o: BatcherOptions = {},
  ) {
    this.debounceMs = o.debounceMs ?? 50;
    this.maxDelayMs = o.maxDelayMs ?? 250;
  }

  update(set: EndpointSet): void {
    this.pending.set(set.service, set);
    clearTimeout(this.debounce);
    this.debounce = setTimeout(() => this.flush(), this.debounceMs);
    this.deadline ??= setTimeout(() => this.flush(), this.maxDelayMs);
  }

  flush(): void {
    clearTimeout(this.debounce);
    clearTimeout(this.deadline);
    this.debounce = this.deadline = undefined;
    if (this.pending.size === 0) return;
    const sets = [...this.pending.values()];
    this.pending = new Map();
    this.flushTo(sets);
  }

  stop(): void {
    clearTimeout(this.debounce);
    clearTimeout(this.deadline);
    this.pending.clear();
  }
}
