// How a sidecar's sync state per type is judged against what the cache serves it now.
import { describe, expect, it } from 'vitest';
import { typeSync } from '../../../src/admin/sync-routes.ts';
import type { TypeStatus } from '../../../src/xds/status.ts';

const status = (t: Partial<TypeStatus>): TypeStatus => ({ pushes: 1, nacks: 0, ...t });
const nack = (version: string) => ({
  version,
  nonce: 'n',
  error: "regex '((' is invalid",
  at: '2026-01-01T00:00:00Z',
});

describe('proxy-status sync states', () => {
  it('is NOT SENT for a type the sidecar never asked for', () => {
    expect(typeSync('v1', undefined).state).toBe('NOT SENT');
    expect(typeSync('v1', status({ pushes: 0 })).state).toBe('NOT SENT');
  });
  it('is SYNCED when the current version is ACKed', () => {
    expect(typeSync('v2', status({ sentVersion: 'v2', ackedVersion: 'v2' })).state).toBe('SYNCED');
  });
  it('is STALE while the current version is in flight or not yet sent', () => {
    expect(typeSync('v2', status({ sentVersion: 'v2', ackedVersion: 'v1', pendingNonce: 'n' })).state).toBe(
      'STALE',
    );
    expect(typeSync('v3', status({ sentVersion: 'v2', ackedVersion: 'v2' })).state).toBe('STALE');
  });
  it("is NACKED with Envoy's text when the current version was rejected", () => {
    const s = typeSync('v2', status({ sentVersion: 'v2', ackedVersion: 'v1', lastNack: nack('v2') }));
    expect(s.state).toBe('NACKED');
    expect(s.nack?.error).toContain('((');
  });
  it('forgets an old rejection once a later version is ACKed or served', () => {
    expect(
      typeSync('v3', status({ sentVersion: 'v3', ackedVersion: 'v3', lastNack: nack('v2') })).state,
    ).toBe('SYNCED');
    expect(
      typeSync('v3', status({ sentVersion: 'v3', ackedVersion: 'v1', lastNack: nack('v2') })).state,
    ).toBe('STALE');
  });
});
