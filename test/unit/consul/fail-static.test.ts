// The watcher when Consul misbehaves: down, erroring, leaderless, rewound. It keeps the last endpoints,
// says how stale they are, backs off within bounds, and catches up by itself.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConsulWatcher } from '../../../src/discovery/consul.ts';
import type { ConsulWatcherOptions } from '../../../src/discovery/consul.ts';
import type { ConsulHttp } from '../../../src/consul/http.ts';
import { ConsulDouble } from '../../consul-double/server.ts';
import { waitFor } from '../../helpers/wait.ts';
import { clientFor, RecordingSink, TestClock } from './helpers.ts';

const KEY = 'his.clinical';

describe('ConsulWatcher fail-static', () => {
  let double: ConsulDouble;
  let client: ConsulHttp;
  let sink: RecordingSink;
  let clock: TestClock;
  let watcher: ConsulWatcher;

  function start(options: Partial<ConsulWatcherOptions> = {}): ConsulWatcher {
    watcher = new ConsulWatcher({
      client,
      sink,
      clock,
      waitMs: 5_000,
      backoff: { baseMs: 20, maxMs: 200 },
      rateLimit: { burst: 5, refillMs: 50 },
      ...options,
    });
    watcher.watch(KEY, 'his', 'http');
    return watcher;
  }

  const status = () => watcher.status()[0]!;
  const instances = () =>
    sink
      .last(KEY)
      ?.endpoints.map((e) => `${e.instance}:${e.health}`)
      .join(',');

  beforeEach(async () => {
    double = await ConsulDouble.start();
    client = await clientFor(double.address);
    sink = new RecordingSink();
    clock = new TestClock();
    double.registerService({
      ID: 'his-1',
      Name: 'his',
      Port: 15001,
      Address: '127.0.20.1',
      Check: { CheckID: 'c1', TTL: '10m', Status: 'passing' },
    });
    double.registerService({
      ID: 'his-2',
      Name: 'his',
      Port: 15001,
      Address: '127.0.20.2',
      Check: { CheckID: 'c2', TTL: '10m', Status: 'passing' },
    });
  });
  afterEach(async () => {
    await watcher?.stop();
    client.close();
    await double.stop();
  });

  it('keeps the last set while Consul is down, with growing staleness and failures, and never pushes an empty set', async () => {
    start();
    await waitFor(async () => instances() === 'his-1:HEALTHY,his-2:HEALTHY', { what: 'the first set' });
    expect(status()).toMatchObject({ synced: true, consecutiveFailures: 0, stalenessMs: 0, endpoints: 2 });
    const pushed = sink.count(KEY);

    await double.stop();
    await waitFor(async () => status().consecutiveFailures >= 2, { what: 'failures to be counted' });
    clock.advance(5_000);
    const first = status();
    await waitFor(async () => status().consecutiveFailures >= first.consecutiveFailures + 2, {
      what: 'more failures',
    });
    clock.advance(7_000);
    const later = status();
    expect(first.stalenessMs).toBeGreaterThanOrEqual(5_000);
    expect(later.stalenessMs).toBeGreaterThanOrEqual(first.stalenessMs + 7_000);
    expect(later.lastError).toBeDefined();
    expect(later.lastSuccessAt).toBe(first.lastSuccessAt);
    expect(sink.count(KEY)).toBe(pushed);
    expect(sink.sets.every((s) => s.endpoints.length > 0)).toBe(true);
  });

  it('recovers after a restart and picks up what changed while Consul was down', async () => {
    start();
    await waitFor(async () => instances() === 'his-1:HEALTHY,his-2:HEALTHY', { what: 'the first set' });
    await double.stop();
    await waitFor(async () => status().consecutiveFailures >= 1, { what: 'a failure' });
    double.deregisterService('his-1');
    double.setCheckStatus('c2', 'warning');
    double.registerService({ ID: 'his-3', Name: 'his', Port: 15001, Address: '127.0.20.3' });
    await double.start();
    await waitFor(async () => instances() === 'his-2:DEGRADED,his-3:HEALTHY', {
      what: 'the changes made while down',
    });
    expect(status()).toMatchObject({ consecutiveFailures: 0, stalenessMs: 0 });
    expect(status().lastError).toBeDefined(); // kept for the status page, with its time
  });

  it('treats 5xx answers as failures and keeps the set', async () => {
    start();
    await waitFor(async () => sink.count(KEY) === 1, { what: 'the first set' });
    double.failNext(4, 500);
    double.setCheckStatus('c1', 'critical'); // wakes the held query, which then meets the failures
    await waitFor(async () => status().consecutiveFailures >= 3, { what: '5xx failures' });
    expect(status().lastError).toMatch(/500/);
    await waitFor(async () => instances() === 'his-1:UNHEALTHY,his-2:HEALTHY', { what: 'recovery' });
    expect(sink.count(KEY)).toBe(2);
  });

  it('backs off exponentially with jitter, never beyond the cap', async () => {
    clock = new TestClock((ms) => Math.min(ms, 5));
    start({ backoff: { baseMs: 100, maxMs: 1_000 }, random: () => 1 });
    await waitFor(async () => sink.count(KEY) === 1, { what: 'the first set' });
    await double.stop();
    await waitFor(async () => status().consecutiveFailures >= 8, { what: 'eight failures' });
    const delays = clock.requested.filter((ms) => ms >= 100);
    expect(delays.slice(0, 6)).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    expect(Math.max(...clock.requested)).toBeLessThanOrEqual(1_000);
  });

  it('does not take endpoints away on an empty answer from a server without a leader', async () => {
    start();
    await waitFor(async () => sink.count(KEY) === 1, { what: 'the first set' });
    double.knownLeader = false;
    double.deregisterService('his-1');
    double.deregisterService('his-2');
    await waitFor(async () => status().consecutiveFailures >= 1, { what: 'the empty answer to be refused' });
    expect(status().lastError).toMatch(/leader/);
    expect(sink.count(KEY)).toBe(1);
    double.knownLeader = true;
    await waitFor(async () => sink.last(KEY)?.endpoints.length === 0, {
      what: 'the empty set once a leader vouches for it',
    });
  });

  it('restarts its blocking loop when the index goes backwards', async () => {
    start({ waitMs: 300 });
    await waitFor(async () => sink.count(KEY) === 1, { what: 'the first set' });
    const before = double.requests.length;
    double.rewindIndex(5);
    await waitFor(
      async () =>
        double.requests
          .slice(before)
          .some((r) => r.path === '/v1/health/service/his' && !r.query.has('index')),
      {
        what: 'a non-blocking request after the reset',
      },
    );
    double.setCheckStatus('c1', 'warning');
    await waitFor(async () => instances() === 'his-1:DEGRADED,his-2:HEALTHY', {
      what: 'changes after the reset',
    });
  });

  it('sends index and wait on blocking requests, and stale when asked', async () => {
    start({ stale: true, waitMs: 2_500 });
    await waitFor(async () => double.requests.filter((r) => r.query.has('index')).length > 0, {
      what: 'a blocking request',
    });
    const [first, blocking] = double.requests.filter((r) => r.path === '/v1/health/service/his');
    expect(first!.query.has('index')).toBe(false);
    expect(blocking!.query.get('index')).toBe(String(double.state.serviceIndex('default', 'his')));
    expect(blocking!.query.get('wait')).toBe('2500ms');
    expect(blocking!.query.has('stale')).toBe(true);
  });

  it('stop() aborts the held query and leaves no timers behind', async () => {
    start({ waitMs: 60_000 });
    await waitFor(async () => double.pendingBlockingQueries === 1, { what: 'a held query' });
    await watcher.stop();
    expect(clock.pendingTimers).toBe(0);
    await waitFor(async () => double.pendingBlockingQueries === 0, {
      what: 'the held query to be dropped',
      timeoutMs: 2_000,
    });

    // Also when stopped in the middle of a backoff.
    sink = new RecordingSink();
    await double.stop();
    start();
    await waitFor(async () => status().consecutiveFailures >= 1 && clock.pendingTimers === 1, {
      what: 'a pending retry',
    });
    await watcher.stop();
    expect(clock.pendingTimers).toBe(0);
    expect(watcher.status()).toEqual([]);
  });

  it('unwatch stops one service without pushing anything for it', async () => {
    start();
    watcher.watch('pacs.imaging', 'pacs', 'dicom');
    double.registerService({ ID: 'pacs-1', Name: 'pacs', Port: 11112, Address: '127.0.20.9' });
    await waitFor(async () => sink.last('pacs.imaging')?.endpoints.length === 1, { what: 'pacs' });
    const pushed = sink.sets.length;
    await watcher.unwatch('his.clinical');
    expect(watcher.watched()).toEqual(['pacs.imaging']);
    double.setCheckStatus('c1', 'critical');
    double.deregisterService('pacs-1');
    await waitFor(async () => sink.last('pacs.imaging')?.endpoints.length === 0, { what: 'pacs to empty' });
    expect(sink.sets.length).toBe(pushed + 1);
    expect(sink.endpoint('pacs.imaging', 'pacs-1')).toBeUndefined();
  });
});
