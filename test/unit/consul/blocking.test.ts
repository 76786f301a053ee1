import { describe, expect, it } from 'vitest';
import type { Clock } from '../../../src/consul/blocking.ts';
import { backoffDelay, goDuration, nextIndex, sleep, TokenBucket } from '../../../src/consul/blocking.ts';
import { TestClock } from './helpers.ts';

describe('the next blocking index (Consul docs, implementation details)', () => {
  it('follows X-Consul-Index as it grows', () => {
    expect(nextIndex(0n, 17n)).toBe(17n);
    expect(nextIndex(17n, 17n)).toBe(17n);
    expect(nextIndex(17n, 30n)).toBe(30n);
  });
  it('resets to 0 when the index goes backwards', () => {
    expect(nextIndex(30n, 12n)).toBe(0n);
  });
  it('never blocks on an index below 1', () => {
    expect(nextIndex(0n, 0n)).toBe(1n);
  });
});

describe('backoff', () => {
  const policy = { baseMs: 100, maxMs: 1_000 };
  it('doubles per failure up to the cap', () => {
    expect([1, 2, 3, 4, 5, 9, 60].map((n) => backoffDelay(n, policy, () => 1))).toEqual([
      100, 200, 400, 800, 1_000, 1_000, 1_000,
    ]);
  });
  it('jitters between half and all of the step', () => {
    expect(backoffDelay(3, policy, () => 0)).toBe(200);
    expect(backoffDelay(3, policy, () => 0.5)).toBe(300);
    for (let i = 0; i < 100; i++) expect(backoffDelay(1_000, policy, Math.random)).toBeLessThanOrEqual(1_000);
  });
});

const manualClock = (now: () => number): Clock => ({
  now,
  setTimeout: () => undefined,
  clearTimeout: () => undefined,
});

describe('the rate limit (token bucket, burst 2)', () => {
  it('lets a burst through, then spaces requests by the refill interval', () => {
    const clock = manualClock(() => 0);
    const bucket = new TokenBucket({ burst: 2, refillMs: 1_000 }, clock);
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([0, 0, 1_000, 2_000]);
  });
  it('refills with time, never beyond the burst', () => {
    let now = 0;
    const clock = manualClock(() => now);
    const bucket = new TokenBucket({ burst: 2, refillMs: 1_000 }, clock);
    bucket.take();
    bucket.take();
    now += 60_000;
    expect([bucket.take(), bucket.take(), bucket.take()]).toEqual([0, 0, 1_000]);
  });
});

describe('helpers', () => {
  it('writes wait as a Go duration', () => {
    expect(goDuration(30_000)).toBe('30s');
    expect(goDuration(250)).toBe('250ms');
    expect(goDuration(1_500)).toBe('1500ms');
  });
  it('sleep ends early on abort and clears its timer', async () => {
    const clock = new TestClock();
    const abort = new AbortController();
    const slept = sleep(clock, 60_000, abort.signal);
    expect(clock.pendingTimers).toBe(1);
    abort.abort();
    await slept;
    expect(clock.pendingTimers).toBe(0);
  });
});
