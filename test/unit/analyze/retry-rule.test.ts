// No manifest kind carries retry settings yet: these sites are written by hand in the shape the
// TrafficPolicy kind (issue #9) is to give its `retries` blocks.
import { describe, expect, it } from 'vitest';
import { unsafeRetryFindings, type RetrySettings, type RetrySite } from '../../../src/analyze/index.ts';

const site = (retries: RetrySettings): RetrySite => ({
  resource: 'TrafficPolicy clinical/his-retries',
  origin: {
    file: 'his-traffic.yaml',
    pos: { file: 'his-traffic.yaml', line: 1, col: 1 },
    fieldPos: { 'spec.routes[0].retries': [9, 9], 'spec.routes[0].retries.retryOn': [11, 18] },
  },
  field: 'spec.routes[0].retries',
  retries,
});

const at = (sites: RetrySite[]) =>
  unsafeRetryFindings(sites).map((f) => ({
    code: f.code,
    severity: f.severity,
    at: 'pos' in f.location ? `${f.location.pos.line}:${f.location.pos.col}` : '?',
  }));

describe('CM0008 a retry policy that could repeat a write', () => {
  it('is an error at retryOn when writes are retried after the upstream may have seen them', () => {
    expect(at([site({ attempts: 2, retryOn: ['connect-failure', '5xx', 'reset'] })])).toEqual([
      { code: 'CM0008', severity: 'error', at: '11:18' },
    ]);
    const [finding] = unsafeRetryFindings([
      site({ attempts: 2, retryOn: ['5xx'], methods: ['GET', 'POST'] }),
    ]);
    expect(finding?.message).toContain('POST');
    expect(finding?.message).not.toContain('GET');
  });

  it('passes retries only before the request left the sidecar, for any method', () => {
    const retryOn = ['connect-failure', 'refused-stream', 'reset-before-request'];
    expect(at([site({ attempts: 3, retryOn })])).toEqual([]);
  });

  it('passes retries after sending for idempotent methods only', () => {
    expect(
      at([site({ attempts: 2, retryOn: ['5xx', 'reset'], methods: ['GET', 'HEAD', 'PUT', 'DELETE'] })]),
    ).toEqual([]);
  });

  it('passes writes retried only when they carry an idempotency key', () => {
    expect(at([site({ attempts: 2, retryOn: ['5xx'], idempotencyKeyHeader: 'Idempotency-Key' })])).toEqual(
      [],
    );
  });

  it('passes a policy with retries turned off', () => {
    expect(at([site({ attempts: 0, retryOn: ['5xx'] })])).toEqual([]);
  });
});
