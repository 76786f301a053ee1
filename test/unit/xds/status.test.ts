// Per-sidecar status: closed streams stay listed for a grace period, then go.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CLUSTER } from '../../../src/xds/resources/type-urls.ts';
import { hasVersion, StatusRegistry } from '../../../src/xds/status.ts';

describe('StatusRegistry', () => {
  beforeEach(() => vi.useFakeTimers({ toFake: ['Date'] }));
  afterEach(() => vi.useRealTimers());

  it('lists a closed stream as disconnected until the grace period passes, then drops it', () => {
    const statuses = new StatusRegistry({}, { keepClosedMs: 60_000 });
    const s = statuses.open('clinical/emr/emr-1', 'ads', 'peer');
    statuses.close(s);
    expect(statuses.all()).toEqual([]);
    expect(statuses.toJSON()).toEqual([
      expect.objectContaining({ nodeId: 'clinical/emr/emr-1', disconnectedAt: expect.any(String) as string }),
    ]);
    vi.advanceTimersByTime(61_000);
    expect(statuses.toJSON()).toEqual([]);
  });

  it('replaces a closed stream of a node that comes back', () => {
    const statuses = new StatusRegistry();
    statuses.close(statuses.open('n/s/i', 'ads', 'peer'));
    statuses.open('n/s/i', 'ads', 'peer');
    expect(statuses.toJSON()).toHaveLength(1);
    expect(statuses.recentlyClosed()).toEqual([]);
  });

  it('keeps the closed streams of other nodes when one node comes back', () => {
    const statuses = new StatusRegistry();
    statuses.close(statuses.open('n/s/a', 'ads', 'peer'));
    statuses.close(statuses.open('n/s/a', 'delta', 'peer'));
    statuses.close(statuses.open('n/s/b', 'ads', 'peer'));
    statuses.open('n/s/a', 'ads', 'peer');
    expect(statuses.recentlyClosed().map((s) => s.nodeId)).toEqual(['n/s/b']);
    statuses.close(statuses.open('n/s/b', 'ads', 'peer'));
    expect(statuses.recentlyClosed().map((s) => s.nodeId)).toEqual(['n/s/b']);
  });

  it('stays bounded under connect/disconnect churn', () => {
    const statuses = new StatusRegistry({}, { keepClosedMs: 1_000 });
    for (let i = 0; i < 100; i++) {
      statuses.close(statuses.open(`n/s/i${i}`, 'ads', 'peer'));
      vi.advanceTimersByTime(100);
    }
    expect(statuses.recentlyClosed().length).toBeLessThanOrEqual(11);
  });

  it('knows a version held at reconnect until an ACK replaces it', () => {
    const statuses = new StatusRegistry();
    const s = statuses.open('n/s/i', 'ads', 'peer');
    statuses.held(s, CLUSTER, 'v1');
    expect(hasVersion(s.types.get(CLUSTER), 'v1')).toBe(true);
    statuses.acked(s, CLUSTER, 'v2');
    expect(hasVersion(s.types.get(CLUSTER), 'v1')).toBe(false);
    expect(s.types.get(CLUSTER)).toMatchObject({ ackedVersion: 'v2', heldVersion: undefined });
  });
});
