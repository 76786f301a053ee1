// One Consul blocking-query loop, following the "Implementation Details" of Consul's blocking-query
// docs: reset the index when it goes backwards, never block on an index below 1, and rate-limit with
// a token bucket (burst 2) rather than a sleep. Failures back off exponentially with jitter and leave
// whatever the caller last derived from a good answer untouched (fail-static lives with the caller).
import type { ConsulResponse } from './http.ts';

/** Time as the loop sees it; injected so tests control staleness and backoff without real waiting. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

export interface BackoffPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
}

export interface RateLimit {
  /** Responses handled back to back before the limit starts to bite. */
  readonly burst: number;
  /** One more response allowed per this many ms. */
  readonly refillMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 250, maxMs: 30_000 };
// Consul's docs suggest degrading to ~15 s polling under churn; clinical endpoints favour freshness, so
// one request per second per service once the burst is spent.
export const DEFAULT_RATE_LIMIT: RateLimit = { burst: 2, refillMs: 1_000 };

/** The index for the next request, given the one used and the X-Consul-Index just returned. */
export function nextIndex(used: bigint, returned: bigint): bigint {
  if (returned < used) return 0n; // went backwards (snapshot restore, ...): restart the loop
  if (returned < 1n) return 1n; // an index of 0 would never block: a busy loop
  return returned;
}

/** Exponential backoff with "equal jitter": between half and all of min(max, base * 2^(n-1)). */
export function backoffDelay(failures: number, policy: BackoffPolicy, random: () => number): number {
  const exp = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, failures - 1));
  return Math.round(exp / 2 + (random() * exp) / 2);
}

export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly limit: RateLimit,
    private readonly clock: Clock,
  ) {
    this.tokens = limit.burst;
    this.last = clock.now();
  }

  /** Takes a token; returns how long to wait before using it (0 when one was available). */
  take(): number {
    const now = this.clock.now();
    this.tokens = Math.min(this.limit.burst, this.tokens + (now - this.last) / this.limit.refillMs);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil(-this.tokens * this.limit.refillMs);
  }
}

/** Resolves after `ms`, or early (without leaving a timer behind) when `signal` aborts. */
export function sleep(clock: Clock, ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const onAbort = (): void => {
      clock.clearTimeout(handle);
      resolve();
    };
    const handle = clock.setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** `30s`, `250ms`: a Go duration for the `wait` parameter. */
export function goDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${Math.round(ms)}ms`;
}

export interface BlockingQuery {
  /** Runs one request with `index` (0: don't block) and `wait`. */
  fetch(index: bigint, waitMs: number, signal: AbortSignal): Promise<ConsulResponse>;
  /** Takes a good answer; throws if the body is unusable (counted as a failure, index kept). */
  handle(body: unknown, response: ConsulResponse): void;
  /** The first failure after a good answer (or after the start): the outage begins. */
  failing?(status: LoopStatus): void;
  /** The first good answer after failures; `during` is the status the outage left. */
  recovered?(during: LoopStatus): void;
}

export interface LoopSettings {
  readonly clock: Clock;
  readonly random: () => number;
  readonly waitMs: number;
  readonly backoff: BackoffPolicy;
  readonly rateLimit: RateLimit;
}

export interface LoopStatus {
  readonly startedAt: number;
  readonly index: bigint;
  readonly lastSuccessAt?: number;
  /** The most recent failure, kept after recovery (with its time) for status pages. */
  readonly lastError?: string;
  readonly lastErrorAt?: number;
  readonly consecutiveFailures: number;
  /** Delay before the current retry, when failing. */
  readonly retryInMs?: number;
}

export class BlockingQueryLoop {
  private readonly abort = new AbortController();
  private readonly bucket: TokenBucket;
  private state: LoopStatus;
  private done: Promise<void> = Promise.resolve();

  constructor(
    private readonly query: BlockingQuery,
    private readonly settings: LoopSettings,
  ) {
    this.bucket = new TokenBucket(settings.rateLimit, settings.clock);
    this.state = { startedAt: settings.clock.now(), index: 0n, consecutiveFailures: 0 };
  }

  get status(): LoopStatus {
    return this.state;
  }

  start(): void {
    this.done = this.run();
  }

  /** Aborts the request in flight and any pending delay; resolves when the loop has exited. */
  stop(): Promise<void> {
    this.abort.abort();
    return this.done;
  }

  private async run(): Promise<void> {
    const { signal } = this.abort;
    while (!signal.aborted) {
      const delay = await this.once(signal);
      if (delay > 0) await sleep(this.settings.clock, delay, signal);
    }
  }

  /** One request; returns how long to wait before the next. */
  private async once(signal: AbortSignal): Promise<number> {
    const { clock, waitMs } = this.settings;
    try {
      const res = await this.query.fetch(this.state.index, waitMs, signal);
      if (res.index === undefined)
        throw new Error('response has no X-Consul-Index: blocking is not supported');
      this.query.handle(res.body, res);
      const during = this.state;
      this.state = {
        ...this.state,
        index: nextIndex(this.state.index, res.index),
        lastSuccessAt: clock.now(),
        consecutiveFailures: 0,
        retryInMs: undefined,
      };
      if (during.consecutiveFailures > 0) this.query.recovered?.(during);
      return this.bucket.take();
    } catch (err) {
      if (signal.aborted) return 0;
      const failures = this.state.consecutiveFailures + 1;
      const retryInMs = backoffDelay(failures, this.settings.backoff, this.settings.random);
      const lastError = err instanceof Error ? err.message : String(err);
      this.state = {
        ...this.state,
        lastError,
        lastErrorAt: clock.now(),
        consecutiveFailures: failures,
        retryInMs,
      };
      if (failures === 1) this.query.failing?.(this.state);
      return retryInMs;
    }
  }
}
