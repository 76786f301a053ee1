// How Envoy waits before it opens a failed xDS stream again (source/common/config/grpc_stream.h:
// RetryInitialDelayMs = 500, RetryMaxDelayMs = 30000, JitteredExponentialBackOffStrategy): a delay
// drawn uniformly from [0, interval), the interval doubling up to 30 s, reset once a response arrives.
export const RETRY_INITIAL_DELAY_MS = 500;
export const RETRY_MAX_DELAY_MS = 30_000;

export class EnvoyBackoff {
  private interval = RETRY_INITIAL_DELAY_MS;

  constructor(private readonly random: () => number = Math.random) {}

  /** The delay before the next attempt; each call doubles the interval the next one draws from. */
  next(): number {
    const delay = Math.floor(this.random() * this.interval);
    this.interval = Math.min(this.interval * 2, RETRY_MAX_DELAY_MS);
    return delay;
  }

  /** The stream got a response: the next failure starts from the initial interval again. */
  reset(): void {
    this.interval = RETRY_INITIAL_DELAY_MS;
  }
}
