// Leader election through a Consul lock (the in-process Consul double, with sessions and
// lock-delay): one leader among replicas, the others know who it is; a leader whose session is
// invalidated, or that cannot reach Consul for a whole TTL, stops leading at once; a stopped
// leader hands over.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ConsulHttp } from '../../../src/consul/http.ts';
import { ConsulKv } from '../../../src/store/consul-kv.ts';
import { LeaderElection } from '../../../src/store/leader.ts';
import { ConsulDouble } from '../../consul-double/server.ts';
import { waitFor } from '../../helpers/wait.ts';
import { clientFor } from '../consul/helpers.ts';

describe('leader election through a Consul lock', () => {
  let consul: ConsulDouble;
  let http: ConsulHttp;
  let kv: ConsulKv;
  let n = 0;
  const running: LeaderElection[] = [];

  beforeAll(async () => {
    consul = await ConsulDouble.start();
    http = await clientFor(consul.address);
    kv = new ConsulKv(http);
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((e) => e.stop()));
    await consul.start();
  });
  afterAll(async () => {
    http?.close();
    await consul?.stop();
  });

  function elect(key: string, replica: string, o: { now?: () => number; changes?: boolean[] } = {}) {
    const e = new LeaderElection({
      http,
      kv,
      key,
      replica,
      adminUrl: `https://${replica}:19000`,
      lockDelayMs: 1_000,
      renewEveryMs: 200,
      now: o.now,
      onChange: (l) => o.changes?.push(l),
    });
    e.start();
    running.push(e);
    return e;
  }

  const leaders = (es: readonly LeaderElection[]) => es.filter((e) => e.isLeader());

  it('elects exactly one of three, and the others name it', async () => {
    const key = `leader-${++n}`;
    const es = ['cp-0', 'cp-1', 'cp-2'].map((r) => elect(key, r));
    const [leader] = await waitFor(async () => leaders(es).length === 1 && leaders(es), {
      what: 'one leader',
    });
    const name = leader!.leader()!.replica;
    await waitFor(async () => es.every((e) => e.leader()?.replica === name), {
      what: 'every replica to know the leader',
    });
    expect(leaders(es)).toHaveLength(1);
    expect(es.find((e) => !e.isLeader())!.leader()).toMatchObject({ adminUrl: `https://${name}:19000` });
  });

  it('a leader whose session is invalidated stops at once; another takes over after the lock-delay', async () => {
    const key = `leader-${++n}`;
    const changes: boolean[] = [];
    const first = elect(key, 'cp-0', { changes });
    await waitFor(async () => first.isLeader(), { what: 'cp-0 to lead' });
    const second = elect(key, 'cp-1');
    const holder = consul.kv.get(key)!.session;
    await http.put(`/session/destroy/${holder}`);
    await waitFor(async () => !first.isLeader(), { what: 'cp-0 to stop leading' });
    expect(changes).toEqual([true, false]);
    await waitFor(async () => leaders([first, second]).length === 1, {
      what: 'a new leader after the lock-delay',
      timeoutMs: 15_000,
    });
  });

  it('a leader that cannot reach Consul for a whole TTL stops leading, and leads again on return', async () => {
    const key = `leader-${++n}`;
    let skew = 0;
    const e = elect(key, 'cp-0', { now: () => Date.now() + skew });
    await waitFor(async () => e.isLeader(), { what: 'cp-0 to lead' });
    await consul.pause('refuse');
    skew = 11_000; // past the 10 s TTL without a renewal
    expect(e.isLeader()).toBe(false);
    await consul.start();
    skew = 0;
    await waitFor(async () => e.isLeader(), { what: 'cp-0 to lead again', timeoutMs: 15_000 });
  });

  it('a stopped leader releases the lock, so another leads without waiting out a lock-delay', async () => {
    const key = `leader-${++n}`;
    const first = elect(key, 'cp-0');
    await waitFor(async () => first.isLeader(), { what: 'cp-0 to lead' });
    const second = elect(key, 'cp-1');
    await first.stop();
    await waitFor(async () => second.isLeader(), { what: 'cp-1 to lead', timeoutMs: 5_000 });
    expect(second.leader()?.replica).toBe('cp-1');
  });
});
