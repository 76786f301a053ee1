// The endpoint batcher, on a fake clock: an isolated change goes out on the next event-loop turn
// (no debounce), changes that follow a flush are coalesced into one batch with each service's
// latest set, and a change stream that never pauses is still pushed within the maximum delay.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { EndpointBatcher } from '../../../src/discovery/endpoint-batcher.ts';
import type { EndpointSet } from '../../../src/discovery/endpoints.ts';

const set = (service: string, instance: string): EndpointSet => ({
  service,
  source: 'consul',
  endpoints: [
    {
      instance,
      address: '10.0.0.1',
      ports: { http: 1 },
      health: 'HEALTHY',
      locality: {},
      weight: 1,
      tags: [],
      meta: {},
    },
  ],
});

/** Each flush: when (fake clock, ms since the test began) and what, as `service:instance`. */
interface Flush {
  readonly at: number;
  readonly sets: string[];
}

function recording(o = { debounceMs: 25, maxDelayMs: 50 }) {
  const start = Date.now();
  const flushes: Flush[] = [];
  const batcher = new EndpointBatcher(
    (sets) =>
      flushes.push({
        at: Date.now() - start,
        sets: sets.map((s) => `${s.service}:${s.endpoints[0]!.instance}`).sort(),
      }),
    o,
  );
  return { batcher, flushes };
}

describe('EndpointBatcher', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('pushes an isolated change on the next event-loop turn, without waiting for the debounce', () => {
    const { batcher, flushes } = recording();
    batcher.update(set('his.clinical', 'his-1'));
    expect(flushes).toEqual([]); // not inside the caller's own call
    vi.advanceTimersByTime(0);
    expect(flushes).toEqual([{ at: 0, sets: ['his.clinical:his-1'] }]);
  });

  it('sends changes made in the same turn as the isolated one with it', () => {
    const { batcher, flushes } = recording();
    batcher.update(set('his.clinical', 'his-1'));
    batcher.update(set('lab.clinical', 'lab-1'));
    batcher.update(set('his.clinical', 'his-2'));
    vi.advanceTimersByTime(0);
    expect(flushes).toEqual([{ at: 0, sets: ['his.clinical:his-2', 'lab.clinical:lab-1'] }]);
  });

  it('coalesces changes that follow a flush into one batch, sent once they pause', () => {
    const { batcher, flushes } = recording();
    batcher.update(set('his.clinical', 'his-1'));
    vi.advanceTimersByTime(5);
    batcher.update(set('lab.clinical', 'lab-1'));
    vi.advanceTimersByTime(5);
    batcher.update(set('lab.clinical', 'lab-2'));
    batcher.update(set('pacs.imaging', 'pacs-1'));
    vi.advanceTimersByTime(24);
    expect(flushes).toHaveLength(1); // the pause is not over yet
    vi.advanceTimersByTime(1);
    expect(flushes).toEqual([
      { at: 0, sets: ['his.clinical:his-1'] },
      { at: 35, sets: ['lab.clinical:lab-2', 'pacs.imaging:pacs-1'] },
    ]);
  });

  it('turns a burst into two pushes: the first change at once, the rest together', () => {
    const { batcher, flushes } = recording();
    batcher.update(set('svc-0.clinical', 'i'));
    vi.advanceTimersByTime(0);
    for (let i = 1; i < 200; i++) batcher.update(set(`svc-${i}.clinical`, 'i'));
    vi.advanceTimersByTime(1000);
    expect(flushes.map((f) => [f.at, f.sets.length])).toEqual([
      [0, 1],
      [25, 199],
    ]);
  });

  it('never starves: a change every 10 ms waits at most the 50 ms maximum delay', () => {
    const { batcher, flushes } = recording();
    const madeAt: number[] = [];
    for (let t = 0; t < 1000; t += 10) {
      madeAt.push(t);
      batcher.update(set('his.clinical', `his-${t}`));
      vi.advanceTimersByTime(10);
    }
    vi.advanceTimersByTime(100);
    // Every change is in the first flush at or after it (the latest set of the service wins).
    const waits = madeAt.map((t) => flushes.find((f) => f.at >= t)!.at - t);
    expect(Math.max(...waits)).toBeLessThanOrEqual(50);
    // Coalesced: about one push per maximum delay, not one per change.
    expect(flushes.length).toBeGreaterThanOrEqual(1000 / 60);
    expect(flushes.length).toBeLessThanOrEqual(1000 / 50 + 2);
    expect(flushes.at(-1)!.sets).toEqual(['his.clinical:his-990']);
  });

  it('is idle again once a debounce window passes without changes: the next change goes at once', () => {
    const { batcher, flushes } = recording();
    batcher.update(set('his.clinical', 'his-1'));
    vi.advanceTimersByTime(25);
    batcher.update(set('his.clinical', 'his-2'));
    vi.advanceTimersByTime(0);
    expect(flushes.map((f) => f.at)).toEqual([0, 25]);
    vi.advanceTimersByTime(10);
    batcher.update(set('his.clinical', 'his-3')); // inside the window the last push opened
    vi.advanceTimersByTime(0);
    expect(flushes).toHaveLength(2);
    vi.advanceTimersByTime(25);
    expect(flushes.map((f) => f.at)).toEqual([0, 25, 60]);
  });

  it('flush() sends what is pending at once', () => {
    const { batcher, flushes } = recording();
    batcher.update(set('his.clinical', 'his-1'));
    batcher.flush();
    expect(flushes).toEqual([{ at: 0, sets: ['his.clinical:his-1'] }]);
    vi.advanceTimersByTime(1000);
    expect(flushes).toHaveLength(1);
  });

  it('pushes nothing after stop', () => {
    const { batcher, flushes } = recording();
    batcher.update(set('his.clinical', 'his-1'));
    vi.advanceTimersByTime(0);
    batcher.update(set('his.clinical', 'his-2'));
    batcher.stop();
    vi.advanceTimersByTime(1000);
    expect(flushes).toHaveLength(1);
  });

  it('takes no change after stop (a Consul answer still in flight)', () => {
    const { batcher, flushes } = recording();
    batcher.stop();
    batcher.update(set('his.clinical', 'his-1'));
    vi.advanceTimersByTime(1000);
    expect(flushes).toHaveLength(0);
  });
});
