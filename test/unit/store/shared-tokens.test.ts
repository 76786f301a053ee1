// Operator tokens, join tokens and control-plane applies shared by two replicas through Consul KV:
// a token made on one replica works on the other, a join token is accepted by exactly one of them,
// and an apply that loses the commit race is proposed again on top of the winner's revision.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TokenStore } from '../../../src/admin/tokens.ts';
import { JoinTokens } from '../../../src/identity/join-tokens.ts';
import { ConsulBackend } from '../../../src/store/consul-backend.ts';
import { ConsulKv } from '../../../src/store/consul-kv.ts';
import { StateStore } from '../../../src/store/store.ts';
import { ControlPlane } from '../../../src/xds/plan/control-plane.ts';
import { Reconciler } from '../../../src/xds/plan/reconciler.ts';
import { SnapshotCache } from '../../../src/xds/cache/snapshot.ts';
import { ConsulDouble } from '../../consul-double/server.ts';
import { waitFor } from '../../helpers/wait.ts';
import { clientFor } from '../consul/helpers.ts';
import { service } from './fixtures.ts';

const until = (what: string, cond: () => boolean | Promise<boolean>) =>
  waitFor(async () => cond(), { what, timeoutMs: 10_000 });

describe('shared through Consul KV', () => {
  let double: ConsulDouble;
  let backends: ConsulBackend[];

  const backend = async (): Promise<ConsulBackend> => {
    const b = new ConsulBackend(new ConsulKv(await clientFor(double.address)), {
      address: `http://${double.address}`,
      waitMs: 10_000,
    });
    backends.push(b);
    return b;
  };

  beforeEach(async () => {
    double = await ConsulDouble.start();
    backends = [];
  });
  afterEach(async () => {
    await Promise.all(backends.map((b) => b.close()));
    await double.stop();
  });

  it('an operator token created on one replica authenticates on the other, and its revocation reaches it', async () => {
    const [a, b] = [await backend(), await backend()];
    const onA = await TokenStore.open(a.records('admin-tokens'));
    const onB = await TokenStore.open(b.records('admin-tokens'));
    if (!onA.ok || !onB.ok) throw new Error('open');
    const made = await onA.value.create({ name: 'ci', role: 'viewer', namespaces: [], createdBy: 'test' });
    if (!made.ok) throw new Error(JSON.stringify(made.errors));
    await until('B knows the token', () => onB.value.authenticate(made.value.token)?.name === 'ci');
    expect((await onA.value.revoke(made.value.info.id)).ok).toBe(true);
    await until('B forgot the token', () => onB.value.authenticate(made.value.token) === undefined);
    onA.value.close();
    onB.value.close();
  });

  it('a join token made on one replica is accepted by exactly one of two replicas racing for it', async () => {
    const options = { rootPin: () => 'A'.repeat(43), knownService: () => true };
    const onA = await JoinTokens.open({ ...options, records: (await backend()).records('join-tokens') });
    const onB = await JoinTokens.open({ ...options, records: (await backend()).records('join-tokens') });
    if (!onA.ok || !onB.ok) throw new Error('open');
    const issued = onA.value.create({ namespace: 'clinical', service: 'his', createdBy: 'test' });
    if (!issued.ok) throw new Error(JSON.stringify(issued.errors));
    expect((await issued.value.saved).ok).toBe(true);
    // B has never seen it: it reads the store before refusing an unknown token.
    const results = await Promise.all([
      onA.value.consume(issued.value.token),
      onB.value.consume(issued.value.token),
    ]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    const refused = results.find((r) => !r.ok);
    expect(refused && !refused.ok && refused.errors[0]!.code).toBe('UNAUTHENTICATED');
    // And it stays spent for both.
    expect((await onB.value.consume(issued.value.token)).ok).toBe(false);
    expect((await onA.value.consume(issued.value.token)).ok).toBe(false);
    onA.value.close();
    onB.value.close();
  });

  it('reads the store at most once at a time for unknown join tokens, however many arrive at once, and still finds a new one', async () => {
    // Unknown tokens come before anyone is authenticated: each must not cost a Consul read of its own.
    const options = { rootPin: () => 'A'.repeat(43), knownService: () => true };
    const onA = await JoinTokens.open({ ...options, records: (await backend()).records('join-tokens') });
    const onB = await JoinTokens.open({ ...options, records: (await backend()).records('join-tokens') });
    if (!onA.ok || !onB.ok) throw new Error('open');
    const unknown = (i: number) =>
      `cmjt.${i.toString(16).padStart(16, '0')}.${'B'.repeat(43)}.${'A'.repeat(43)}`;
    const reads = () => double.requests.filter((r) => r.method === 'GET' && r.path.includes('join')).length;
    const before = reads();
    const refused = await Promise.all(Array.from({ length: 50 }, (_, i) => onB.value.consume(unknown(i))));
    expect(refused.every((r) => !r.ok)).toBe(true);
    expect(reads() - before).toBeLessThanOrEqual(2);
    // A token made on A a moment ago is still found by B, by a read that starts after it was asked for.
    const issued = onA.value.create({ namespace: 'clinical', service: 'his', createdBy: 'test' });
    if (!issued.ok) throw new Error(JSON.stringify(issued.errors));
    expect((await issued.value.saved).ok).toBe(true);
    const [flood, found] = await Promise.all([
      Promise.all(Array.from({ length: 20 }, (_, i) => onB.value.consume(unknown(100 + i)))),
      onB.value.consume(issued.value.token),
    ]);
    expect(flood.every((r) => !r.ok)).toBe(true);
    expect(found.ok).toBe(true);
    onA.value.close();
    onB.value.close();
  });

  it('concurrent applies through two control planes: a lost race is re-proposed, every apply commits, both serve the same state', async () => {
    const stores = [new StateStore(await backend()), new StateStore(await backend())];
    for (const s of stores) expect((await s.restore()).ok).toBe(true);
    const planes = stores.map((s) => new ControlPlane(s, new Reconciler(new SnapshotCache())));
    try {
      for (const [i, s] of stores.entries())
        s.subscribe((_st, _t, o) => o.remote && void planes[i]!.followStore());
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) => planes[i % 2]!.apply([service(`svc-${i}`, 16000 + i)])),
      );
      const failed = results.filter((r) => !r.ok);
      // Distinct services never conflict in content: each one lands, some after losing a race.
      expect(failed.map((r) => (r.ok ? '' : r.errors[0]!.code))).toEqual([]);
      await until('both at revision 12', () => stores.every((s) => s.current().revision === 12));
      const names = (s: StateStore) =>
        s
          .list()
          .map((m) => m.name)
          .sort();
      expect(names(stores[0]!)).toEqual(names(stores[1]!));
      expect(names(stores[0]!)).toHaveLength(12);
    } finally {
      for (const p of planes) p.stop();
      for (const s of stores) s.close();
    }
  });
});
