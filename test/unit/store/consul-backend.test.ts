// State shared through Consul KV (the in-process double): replicas converge, an apply is one
// check-and-set transaction, concurrent applies never lose an update, and an outage keeps state.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Manifest } from '../../../src/manifest/index.ts';
import { ConsulBackend } from '../../../src/store/consul-backend.ts';
import { ConsulKv } from '../../../src/store/consul-kv.ts';
import { StateStore, type CommitOrigin } from '../../../src/store/store.ts';
import { ConsulDouble } from '../../consul-double/server.ts';
import { waitFor } from '../../helpers/wait.ts';
import { clientFor } from '../consul/helpers.ts';
import { service } from './fixtures.ts';

const until = (what: string, cond: () => boolean | Promise<boolean>) =>
  waitFor(async () => cond(), { what, timeoutMs: 10_000 });

interface Replica {
  readonly backend: ConsulBackend;
  readonly store: StateStore;
  readonly heard: { revision: number; touched: string[]; origin: CommitOrigin }[];
}

async function replica(double: ConsulDouble, prefix = 'clinimesh/'): Promise<Replica> {
  const backend = new ConsulBackend(new ConsulKv(await clientFor(double.address)), {
    address: `http://${double.address}`,
    prefix,
    waitMs: 10_000,
  });
  const store = new StateStore(backend);
  const restored = await store.restore();
  if (!restored.ok) throw new Error(JSON.stringify(restored.errors));
  const heard: Replica['heard'] = [];
  store.subscribe((state, touched, origin) =>
    heard.push({ revision: state.revision, touched: [...touched], origin }),
  );
  return { backend, store, heard };
}

async function apply(store: StateStore, manifests: Manifest[]) {
  const p = store.propose({ apply: manifests });
  if (!p.ok) throw new Error(JSON.stringify(p.errors));
  return store.commit(p.value, { author: { tokenId: 't1', name: 'alice' }, role: 'admin', action: 'apply' });
}

const ids = (s: StateStore) =>
  s
    .list()
    .map((m) => `${m.kind} ${m.name}:${JSON.stringify(m)}`)
    .sort();

describe('ConsulBackend: state shared by replicas', () => {
  let double: ConsulDouble;
  let a: Replica;
  let b: Replica;

  beforeEach(async () => {
    double = await ConsulDouble.start();
    a = await replica(double);
    b = await replica(double);
  });
  afterEach(async () => {
    for (const r of [a, b]) {
      r.store.close();
      await r.backend.close();
    }
    await double.stop();
  });

  it('writes one key per manifest, the revision and the history entry, in one transaction', async () => {
    const before = double.requests.filter((r) => r.path === '/v1/txn').length;
    expect((await apply(a.store, [service('his', 15001), service('emr', 15011)])).ok).toBe(true);
    expect(double.requests.filter((r) => r.path === '/v1/txn').length - before).toBe(1);
    const kv = new ConsulKv(await clientFor(double.address));
    const keys = await kv.keys('clinimesh/');
    expect(keys.ok && keys.value.value.filter((k) => !k.startsWith('clinimesh/history/'))).toEqual([
      'clinimesh/state/manifests/Service/clinical/emr',
      'clinimesh/state/manifests/Service/clinical/his',
      'clinimesh/state/revision',
    ]);
    const history = await b.backend.history.list();
    expect(
      history.ok && history.value.map((e) => [e.revision, e.author.name, e.action, e.touched.length]),
    ).toEqual([[1, 'alice', 'apply', 2]]);
  });

  it("brings another replica's commit to this replica's listeners, with what it touched, in revision order", async () => {
    expect((await apply(a.store, [service('his', 15001)])).ok).toBe(true);
    expect((await apply(a.store, [service('his', 15002), service('lab', 15003)])).ok).toBe(true);
    await until('B at revision 2', () => b.store.current().revision === 2);
    expect(ids(b.store)).toEqual(ids(a.store));
    const revisions = b.heard.map((h) => h.revision);
    expect(revisions).toEqual([...revisions].sort((x, y) => x - y));
    expect(b.heard.every((h) => h.origin.remote)).toBe(true);
    expect(b.heard.at(-1)!.touched.length).toBeGreaterThan(0);
    expect(a.heard.map((h) => [h.revision, h.origin.remote])).toEqual([
      [1, false],
      [2, false],
    ]);
    // Only what changed is written: the second commit set two keys, not the whole mesh.
    const kv = new ConsulKv(await clientFor(double.address));
    const lab = await kv.get('clinimesh/state/manifests/Service/clinical/lab');
    expect(lab.ok && lab.value.value).toBeTruthy();
  });

  it('refuses a commit proposed on a revision another replica has moved past, with CONFLICT naming it', async () => {
    expect((await apply(a.store, [service('his', 15001)])).ok).toBe(true);
    await until('B at revision 1', () => b.store.current().revision === 1);
    // Both propose on revision 1; A commits first.
    const pa = a.store.propose({ apply: [service('lab', 15003)] });
    const pb = b.store.propose({ apply: [service('his', 15009)] });
    if (!pa.ok || !pb.ok) throw new Error('invalid');
    expect((await a.store.commit(pa.value)).ok).toBe(true);
    const lost = await b.store.commit(pb.value);
    expect(lost.ok).toBe(false);
    if (lost.ok) return;
    expect(lost.errors[0]).toMatchObject({ code: 'CONFLICT', resource: 'state revision' });
    expect(lost.errors[0]!.message).toMatch(/revision/);
    // B caught up at once, so the change can be proposed again on top.
    expect(b.store.current().revision).toBe(2);
    expect(b.store.moved(pb.value)).toBe(true);
    expect((await apply(b.store, [service('his', 15009)])).ok).toBe(true);
    await until('A at revision 3', () => a.store.current().revision === 3);
    expect(ids(a.store)).toEqual(ids(b.store));
  });

  it('many concurrent applies on two replicas: each committed or CONFLICT, the revision counts the commits, both converge', async () => {
    const results = await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const r = i % 2 ? a : b;
        // Spread over time a little so that proposals interleave with commits on both sides.
        await new Promise((resolve) => setTimeout(resolve, (i * 37) % 300));
        // As the control plane does: a change that lost the race is proposed again on top, twice.
        for (let attempt = 0; ; attempt++) {
          const result = await apply(r.store, [service(`svc-${i % 5}`, 16000 + i)]);
          if (result.ok || attempt === 2) return result;
        }
      }),
    );
    const committed = results.filter((r) => r.ok && r.value).length;
    const conflicts = results.filter((r) => !r.ok && r.errors.every((e) => e.code === 'CONFLICT')).length;
    expect(committed + conflicts).toBe(40);
    expect(committed).toBeGreaterThan(1);
    await until('both at the last revision', async () => {
      const kv = new ConsulKv(await clientFor(double.address));
      const rev = await kv.get('clinimesh/state/revision');
      const n =
        rev.ok && rev.value.value
          ? (JSON.parse(rev.value.value.value.toString()) as { revision: number }).revision
          : -1;
      return n === committed && a.store.current().revision === n && b.store.current().revision === n;
    });
    expect(ids(a.store)).toEqual(ids(b.store));
    const history = await a.backend.history.list();
    expect(history.ok && history.value.map((e) => e.revision)).toEqual(
      Array.from({ length: committed }, (_, i) => i + 1),
    );
  });

  it('keeps its last state while Consul is unreachable, refuses applies naming Consul, and catches up on return', async () => {
    expect((await apply(a.store, [service('his', 15001)])).ok).toBe(true);
    await until('B at revision 1', () => b.store.current().revision === 1);
    await double.pause();
    const refused = await apply(b.store, [service('lab', 15003)]);
    expect(refused.ok).toBe(false);
    if (refused.ok) return;
    expect(refused.errors[0]!.code).toBe('CONSUL');
    expect(refused.errors[0]!.message).toMatch(/Consul unreachable/);
    expect(b.store.current().revision).toBe(1);
    expect(b.store.current().services.has('his.clinical')).toBe(true);
    // Another writer changes Consul while this replica cannot see it (test control, not the API).
    await double.resume();
    // A connection Consul dropped may fail one more request: the apply is refused, never half made.
    await until('A can apply again', async () => (await apply(a.store, [service('lab', 15003)])).ok);
    await until('B caught up to revision 2', () => b.store.current().revision === 2);
    expect(b.store.current().services.has('lab.clinical')).toBe(true);
  });

  it('refuses a change larger than one Consul transaction, saying how to split it', async () => {
    const many = Array.from({ length: 70 }, (_, i) => service(`bulk-${i}`, 17000 + i));
    const result = await apply(a.store, many);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors[0]!.code).toBe('SCHEMA');
    expect(result.errors[0]!.message).toMatch(/at most 64 operations/);
    expect(a.store.current().revision).toBe(0);
  });

  it('restores state and revision in a new replica on the same prefix, and keeps prefixes apart', async () => {
    expect((await apply(a.store, [service('his', 15001)])).ok).toBe(true);
    const c = await replica(double);
    const other = await replica(double, 'elsewhere/');
    try {
      expect(c.store.current().revision).toBe(1);
      expect(ids(c.store)).toEqual(ids(a.store));
      expect(other.store.current().revision).toBe(0);
    } finally {
      for (const r of [c, other]) {
        r.store.close();
        await r.backend.close();
      }
    }
  });
});
