// The Consul KV client against the in-process Consul double (Consul's documented KV and txn API).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsulKv } from '../../../src/store/consul-kv.ts';
import { watchKv } from '../../../src/store/consul-kv-watch.ts';
import { ConsulDouble } from '../../consul-double/server.ts';
import { clientFor } from '../consul/helpers.ts';
import { waitFor } from '../../helpers/wait.ts';

const TOKEN = 'c1a7e0d2-5b1e-4c8e-9a57-0d0b1e0000aa';

const until = (cond: () => boolean) =>
  waitFor(() => Promise.resolve(cond()), { what: 'the condition', timeoutMs: 10_000 });

function value<T>(r: { ok: true; value: T } | { ok: false; errors: readonly unknown[] }): T {
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

describe('ConsulKv', () => {
  let double: ConsulDouble;
  let kv: ConsulKv;

  beforeAll(async () => {
    double = await ConsulDouble.start({ acl: { management: TOKEN } });
    kv = new ConsulKv(await clientFor(double.address, TOKEN));
  });
  afterAll(() => double.stop());

  it('puts and gets a value, and says a missing key is absent with an index to block on', async () => {
    expect(value(await kv.put('t/a', 'hello'))).toBe(true);
    const got = value(await kv.get('t/a'));
    expect(got.value?.value.toString()).toBe('hello');
    expect(got.value?.modifyIndex).toBeGreaterThan(0n);
    const missing = value(await kv.get('t/none'));
    expect(missing.value).toBeUndefined();
    expect(missing.index).toBeGreaterThan(0n);
  });

  it('check-and-set: 0 creates only, a stale ModifyIndex loses, the current one wins', async () => {
    expect(value(await kv.put('t/cas', 'one', { cas: 0n }))).toBe(true);
    expect(value(await kv.put('t/cas', 'two', { cas: 0n }))).toBe(false);
    const first = value(await kv.get('t/cas')).value!;
    expect(value(await kv.put('t/cas', 'two', { cas: first.modifyIndex }))).toBe(true);
    expect(value(await kv.put('t/cas', 'three', { cas: first.modifyIndex }))).toBe(false);
    const second = value(await kv.get('t/cas')).value!;
    expect(second.value.toString()).toBe('two');
    expect(value(await kv.delete('t/cas', { cas: first.modifyIndex }))).toBe(false);
    expect(value(await kv.delete('t/cas', { cas: second.modifyIndex }))).toBe(true);
    expect(value(await kv.get('t/cas')).value).toBeUndefined();
  });

  it('reads a prefix recursively and lists keys up to a separator', async () => {
    await kv.put('tree/a/1', 'x');
    await kv.put('tree/a/2', 'y');
    await kv.put('tree/b', 'z');
    expect(value(await kv.list('tree/')).value.map((e) => e.key)).toEqual(['tree/a/1', 'tree/a/2', 'tree/b']);
    expect(value(await kv.keys('tree/', { separator: '/' })).value).toEqual(['tree/a/', 'tree/b']);
    expect(value(await kv.list('nothing-here/')).value).toEqual([]);
    expect(value(await kv.delete('tree/', { recurse: true }))).toBe(true);
    expect(value(await kv.list('tree/')).value).toEqual([]);
  });

  it('blocks until the key changes past the index, and answers at the same index when the wait ends', async () => {
    await kv.put('t/block', 'v1');
    const first = value(await kv.get('t/block'));
    const timedOut = value(await kv.get('t/block', { index: first.index, waitMs: 100 }));
    expect(timedOut.index).toBe(first.index);
    const blocked = kv.get('t/block', { index: first.index, waitMs: 30_000 });
    await until(() => double.pendingBlockingQueries > 0);
    await kv.put('t/block', 'v2');
    const woke = value(await blocked);
    expect(woke.index).toBeGreaterThan(first.index);
    expect(woke.value?.value.toString()).toBe('v2');
  });

  it('runs a transaction atomically: all applied with their indexes, or none with the failing op named', async () => {
    const done = value(
      await kv.txn([
        { verb: 'cas', key: 'tx/rev', value: '1', index: 0n },
        { verb: 'set', key: 'tx/m/a', value: 'A' },
        { verb: 'set', key: 'tx/m/b', value: 'B' },
      ]),
    );
    expect(done.committed).toBe(true);
    if (!done.committed) return;
    const rev = done.results.find((e) => e.key === 'tx/rev')!;
    expect(rev.modifyIndex).toBeGreaterThan(0n);
    const lost = value(
      await kv.txn([
        { verb: 'cas', key: 'tx/rev', value: '2', index: rev.modifyIndex - 1n },
        { verb: 'delete', key: 'tx/m/a' },
      ]),
    );
    expect(lost.committed).toBe(false);
    if (lost.committed) return;
    expect(lost.errors.map((e) => e.opIndex)).toEqual([0]);
    expect(value(await kv.get('tx/m/a')).value?.value.toString()).toBe('A');
  });

  it('watches a prefix: the first answer, then every change, in order', async () => {
    const seen: string[][] = [];
    await kv.put('w/a', '1');
    const watch = watchKv(kv, 'w/', {
      recurse: true,
      waitMs: 10_000,
      onChange: (entries) => void seen.push(entries.map((e) => `${e.key}=${e.value.toString()}`)),
    });
    try {
      await until(() => seen.length === 1);
      await kv.put('w/b', '2');
      await until(() => seen.at(-1)?.length === 2);
      await kv.delete('w/a');
      await until(() => seen.at(-1)?.join() === 'w/b=2');
      expect(seen[0]).toEqual(['w/a=1']);
    } finally {
      await watch.stop();
    }
  });

  it('fails as a value naming the operation and the key when Consul is unreachable, and works again after', async () => {
    await double.pause();
    try {
      const put = await kv.put('t/down', 'x');
      expect(put.ok).toBe(false);
      if (put.ok) return;
      expect(put.errors[0]).toMatchObject({ code: 'CONSUL', resource: 'Consul KV t/down' });
      expect(put.errors[0]!.message).toMatch(/^put: Consul unreachable/);
      const txn = await kv.txn([{ verb: 'set', key: 't/down', value: 'x' }]);
      expect(txn.ok ? '' : txn.errors[0]!.message).toMatch(/^txn: /);
    } finally {
      await double.resume();
    }
    expect(value(await kv.put('t/down', 'x'))).toBe(true);
  });

  it('is refused, as a value, without a token that may write', async () => {
    const anonymous = new ConsulKv(await clientFor(double.address));
    const put = await anonymous.put('t/acl', 'x');
    expect(put.ok ? 'written' : put.errors[0]!.message).toMatch(/^put: consul: HTTP 403/);
  });
});
