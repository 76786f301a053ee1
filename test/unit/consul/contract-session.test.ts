// Sessions and locks, against the double and a real Consul: create/info/list/node/renew/destroy in
// Consul's shape, TTL expiry (at most 2 × TTL after the last renew), acquire/release with LockIndex,
// lock-delay after invalidation (not after a release), Behavior delete, invalidation by a critical
// check, and locks inside `/v1/txn`.
import { afterEach, expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { uniqueName } from './helpers.ts';
import type { KvPair } from './raw-http.ts';
import { b64, rawConsul } from './raw-http.ts';
import type { ConsulTarget } from './targets.ts';
import { contractSuite, elapse } from './targets.ts';

interface SessionJson {
  ID: string;
  Name: string;
  Node: string;
  LockDelay: number;
  Behavior: string;
  TTL: string;
  NodeChecks: string[] | null;
  ServiceChecks: Array<{ ID: string }> | null;
  CreateIndex: number;
}

contractSuite('Consul session contract', (target) => {
  const consul = () => rawConsul(target().address, target().token);
  const prefix = () => `clinimesh-test/${uniqueName('lock')}`;
  const created: string[] = [];
  afterEach(async () => {
    for (const id of created.splice(0)) await consul().put(`/v1/session/destroy/${id}`);
  });

  async function session(body: Record<string, unknown> = {}): Promise<string> {
    const res = await consul().put('/v1/session/create', body);
    expect(res.status, res.text).toBe(200);
    const id = res.json<{ ID: string }>().ID;
    created.push(id);
    return id;
  }
  const info = async (id: string) => (await consul().get(`/v1/session/info/${id}`)).json<SessionJson[]>();
  const acquire = async (key: string, id: string, value = 'leader') =>
    (await consul().put(`/v1/kv/${key}?acquire=${id}`, value)).text.trim();
  const release = async (key: string, id: string) =>
    (await consul().put(`/v1/kv/${key}?release=${id}`, 'released')).text.trim();
  const pair = async (key: string) => (await consul().get(`/v1/kv/${key}`)).json<KvPair[]>()[0]!;
  /** Waits out real time on a real Consul (up to `realMs`), moves the clock on the double. */
  const until = async (t: ConsulTarget, fn: () => Promise<boolean>, what: string, realMs: number) =>
    waitFor(async () => (await fn()) || undefined, { what, timeoutMs: t.advanceClock ? 3_000 : realMs });

  it('creates a session with Consul defaults, lists it, and forgets it once destroyed', async () => {
    const name = uniqueName('cp');
    const id = await session({ Name: name });
    const [s] = await info(id);
    expect(s).toMatchObject({
      ID: id,
      Name: name,
      LockDelay: 15_000_000_000,
      Behavior: 'release',
      TTL: '',
      NodeChecks: ['serfHealth'],
    });
    expect(typeof s!.Node).toBe('string');
    const list = (await consul().get('/v1/session/list')).json<SessionJson[]>();
    expect(list.map((x) => x.ID)).toContain(id);
    const onNode = (await consul().get(`/v1/session/node/${s!.Node}`)).json<SessionJson[]>();
    expect(onNode.map((x) => x.ID)).toContain(id);
    expect((await consul().put(`/v1/session/destroy/${id}`)).text.trim()).toBe('true');
    expect(await info(id)).toEqual([]);
    const renew = await consul().put(`/v1/session/renew/${id}`);
    expect(renew.status).toBe(404);
  });

  it('refuses an out-of-range TTL, a bad behavior and a critical check', async () => {
    expect((await consul().put('/v1/session/create', { TTL: '1s' })).status).toBe(500);
    expect((await consul().put('/v1/session/create', { Behavior: 'explode' })).status).toBe(500);
    const svc = uniqueName('cp');
    await consul().put('/v1/agent/service/register', {
      ID: svc,
      Name: svc,
      Check: { CheckID: `${svc}-ttl`, TTL: '10m', Status: 'critical' },
    });
    try {
      const res = await consul().put('/v1/session/create', { ServiceChecks: [{ ID: `${svc}-ttl` }] });
      expect([res.status, res.text]).toEqual([500, `Check '${svc}-ttl' is in critical state`]);
      expect((await consul().put('/v1/session/create', { NodeChecks: ['no-such-check'] })).status).toBe(500);
    } finally {
      await consul().put(`/v1/agent/service/deregister/${svc}`);
    }
  });

  it('renews a TTL session, and invalidates it within 2 × TTL of the last renew', async () => {
    const id = await session({ TTL: '10s', LockDelay: '0s' });
    const key = `${prefix()}/leader`;
    expect(await acquire(key, id)).toBe('true');
    await elapse(target(), 15_000);
    const renewed = await consul().put(`/v1/session/renew/${id}`);
    expect(renewed.status).toBe(200);
    expect(renewed.json<SessionJson[]>()[0]).toMatchObject({ ID: id, TTL: '10s' });
    await elapse(target(), 15_000);
    expect(await info(id)).toHaveLength(1);
    await elapse(target(), 6_000);
    await until(target(), async () => (await info(id)).length === 0, 'the session to expire', 40_000);
    expect((await consul().put(`/v1/session/renew/${id}`)).status).toBe(404);
    expect((await pair(key)).Session).toBeUndefined();
  }, 90_000);

  it('acquires and releases a lock with LockIndex and Session as Consul keeps them', async () => {
    const key = `${prefix()}/leader`;
    const a = await session({ LockDelay: '0s' });
    const b = await session({ LockDelay: '0s' });
    expect(await acquire(key, a, 'a')).toBe('true');
    expect(await pair(key)).toMatchObject({ Session: a, LockIndex: 1, Value: b64('a') });
    expect(await acquire(key, b, 'b')).toBe('false');
    expect(await acquire(key, a, 'a again')).toBe('true');
    expect(await pair(key)).toMatchObject({ Session: a, LockIndex: 1, Value: b64('a again') });
    expect(await release(key, b)).toBe('false');
    expect(await release(key, a)).toBe('true');
    const released = await pair(key);
    expect(released.Session).toBeUndefined();
    expect(released.LockIndex).toBe(1);
    expect(await acquire(key, b, 'b')).toBe('true');
    expect(await pair(key)).toMatchObject({ Session: b, LockIndex: 2 });
    expect(
      (await consul().put(`/v1/kv/${key}?acquire=00000000-0000-4000-8000-000000000bad`, 'x')).status,
    ).toBe(500);
  });

  it('holds a key for lock-delay after its session is invalidated, but not after a release', async () => {
    const key = `${prefix()}/leader`;
    const a = await session({ LockDelay: '3s' });
    const b = await session({ LockDelay: '3s' });
    expect(await acquire(key, a)).toBe('true');
    expect(await release(key, a)).toBe('true');
    expect(await acquire(key, b)).toBe('true');
    await consul().put(`/v1/session/destroy/${b}`);
    expect((await pair(key)).Session).toBeUndefined();
    expect(await acquire(key, a)).toBe('false');
    await elapse(target(), 3_100);
    expect(await acquire(key, a)).toBe('true');
  });

  it('deletes the held keys of a Behavior "delete" session when it is invalidated', async () => {
    const key = `${prefix()}/ephemeral`;
    const id = await session({ Behavior: 'delete', LockDelay: '0s' });
    expect(await acquire(key, id)).toBe('true');
    const watch = await consul().get(`/v1/kv/${key}`);
    const held = consul().get(`/v1/kv/${key}?index=${watch.index}&wait=5s`, { timeoutMs: 10_000 });
    await consul().put(`/v1/session/destroy/${id}`);
    expect((await held).status).toBe(404);
  });

  it('invalidates a session when a check it names turns critical, releasing its lock', async () => {
    const svc = uniqueName('cp');
    await consul().put('/v1/agent/service/register', {
      ID: svc,
      Name: svc,
      Check: { CheckID: `${svc}-ttl`, TTL: '10m', Status: 'passing' },
    });
    try {
      const key = `${prefix()}/leader`;
      const id = await session({ ServiceChecks: [{ ID: `${svc}-ttl` }], LockDelay: '0s' });
      expect((await info(id))[0]!.ServiceChecks?.map((c) => c.ID)).toEqual([`${svc}-ttl`]);
      expect(await acquire(key, id)).toBe('true');
      await consul().put(`/v1/agent/check/fail/${svc}-ttl`);
      await waitFor(async () => (await info(id)).length === 0, { what: 'the session to be invalidated' });
      expect((await pair(key)).Session).toBeUndefined();
    } finally {
      await consul().put(`/v1/agent/service/deregister/${svc}`);
    }
  });

  it('locks, checks and unlocks inside a transaction, and refuses a lock under lock-delay', async () => {
    const key = `${prefix()}/leader`;
    const a = await session({ LockDelay: '3s' });
    const b = await session({ LockDelay: '3s' });
    const op = (Verb: string, Session: string, more: object = {}) => ({
      KV: { Verb, Key: key, Session, ...more },
    });
    const locked = await consul().put('/v1/txn', [
      op('lock', a, { Value: b64('a') }),
      op('check-session', a),
    ]);
    expect(locked.status).toBe(200);
    const stolen = await consul().put('/v1/txn', [op('lock', b, { Value: b64('b') })]);
    expect(stolen.status).toBe(409);
    expect(stolen.text).toContain('lock is already held');
    expect((await consul().put('/v1/txn', [op('unlock', a)])).status).toBe(200);
    expect((await pair(key)).Session).toBeUndefined();
    expect((await consul().put('/v1/txn', [op('lock', a)])).status).toBe(200);
    await consul().put(`/v1/session/destroy/${a}`);
    const delayed = await consul().put('/v1/txn', [op('lock', b)]);
    expect(delayed.status).toBe(409);
    expect(delayed.text).toContain('lock delay');
  });
});
