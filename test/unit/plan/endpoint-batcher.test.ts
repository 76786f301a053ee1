// The endpoint batcher, on a fake clock: a burst becomes one push with each service's latest set,
// a pause flushes it, and a change stream that never pauses is still pushed by the deadline.
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

describe('EndpointBatcher', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('pushes a burst once, after the pause, with the latest set of each service', () => {
    const pushed: EndpointSet[][] = [];
    const b = new EndpointBatcher((sets) => pushed.push([...sets]), { debounceMs: 50, maxDelayMs: 250 });
    b.update(set('his.clinical', 'his-1'));
    b.update(set('lab.clinical', 'lab-1'));
    b.update(set('his.clinical', 'his-2'));
    vi.advanceTimersByTime(49);
    expect(pushed).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(pushed).toHaveLength(1);
    expect(pushed[0]!.map((s) => `${s.service}:${s.endpoints[0]!.instance}`).sort()).toEqual([
      'his.clinical:his-2',
      'lab.clinical:lab-1',
    ]);
  });

  it('never starves: a change every 40 ms is pushed by the 250 ms deadline', () => {
    const pushed: number[] = [];
    const b = new EndpointBatcher(() => pushed.push(Date.now()), { debounceMs: 50, maxDelayMs: 250 });
    const start = Date.now();
    for (let i = 0; i < 10; i++) {
      b.update(set('his.clinical', `his-${i}`));
      vi.advanceTimersByTime(40);
    }
    expect(pushed.length).toBeGreaterThanOrEqual(1);
    expect(pushed[0]! - start).toBeLessThanOrEqual(250);
  });

  it('pushes nothing after stop', () => {
    const pushed: unknown[] = [];
    const b = new EndpointBatcher((sets) => pushed.push(sets));
    b.update(set('his.clinical', 'his-1'));
    b.stop();
    vi.advanceTimersByTime(1000);
    expect(pushed).toEqual([]);
  });
});
