// Polling with a deadline: tests wait for the data plane to reflect a change, never a fixed sleep.
import { setTimeout as sleep } from 'node:timers/promises';
import { inspect } from 'node:util';

export interface WaitOptions {
  /** What is awaited, for the error message ("EMR's sidecar to see 2 HIS endpoints"). */
  what: string;
  timeoutMs?: number;
  intervalMs?: number;
}

const PENDING = Symbol('pending');

/** Settles with `promise`, or with PENDING once `ms` have passed (a hung poll must not outlive the deadline). */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | typeof PENDING> {
  const abort = new AbortController();
  try {
    return await Promise.race([promise, sleep(Math.max(ms, 0), PENDING, { signal: abort.signal })]);
  } finally {
    abort.abort();
  }
}

/**
 * Calls `fn` until it returns something other than `undefined` or `false`, and returns that. A throw
 * counts as "not yet". Fails after `timeoutMs` naming `what` and the last value or error seen.
 */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | false>,
  { what, timeoutMs = 10_000, intervalMs = 50 }: WaitOptions,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: string;
  for (let attempt = 1; ; attempt++) {
    try {
      const value = await within(fn(), deadline - Date.now());
      if (value === PENDING) last = 'a poll still pending at the deadline';
      else if (value !== undefined && value !== false) return value;
      else last = `value ${inspect(value)}`;
    } catch (err) {
      last = `error ${err instanceof Error ? err.message : inspect(err)}`;
    }
    if (Date.now() + intervalMs >= deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms (${attempt} polls) waiting for ${what}; last: ${last}`,
      );
    }
    await sleep(intervalMs);
  }
}
