// `/v1/txn` contract, against the double and a real Consul: all-or-nothing at one index, Results in
// Consul's shape (values only for reads), 409 with OpIndex/What when a check fails and nothing applied,
// 400 for a body that does not decode, 413 past 64 operations.
import { expect, it } from 'vitest';
import { uniqueName } from './helpers.ts';
import type { KvPair } from './raw-http.ts';
import { b64, rawConsul, unb64 } from './raw-http.ts';
import { contractSuite } from './targets.ts';

interface TxnAnswer {
  Results: Array<{ KV: KvPair }> | null;
  Errors: Array<{ OpIndex: number; What: string }> | null;
}

contractSuite('Consul txn contract', (target) => {
  const consul = () => rawConsul(target().address, target().token);
  const prefix = () => `clinimesh-test/${uniqueName('txn')}`;
  const txn = (ops: unknown[]) => consul().put('/v1/txn', ops);
  const kv = (Verb: string, Key: string, more: Record<string, unknown> = {}) => ({
    KV: { Verb, Key, ...more },
  });

  it('applies every write at one index and answers Results without values', async () => {
    const p = prefix();
    const res = await txn([
      kv('set', `${p}/state`, { Value: b64('{"rev":1}'), Flags: 7 }),
      kv('set', `${p}/revisions/1`, { Value: b64('first') }),
      kv('cas', `${p}/leader`, { Value: b64('none'), Index: 0 }),
    ]);
    expect(res.status).toBe(200);
    const body = res.json<TxnAnswer>();
    expect(body.Errors).toBeNull();
    expect(body.Results!.map((r) => [r.KV.Key, r.KV.Value, r.KV.Flags])).toEqual([
      [`${p}/state`, null, 7],
      [`${p}/revisions/1`, null, 0],
      [`${p}/leader`, null, 0],
    ]);
    const indexes = new Set(body.Results!.map((r) => r.KV.ModifyIndex));
    expect(indexes.size).toBe(1);
    const stored = (await consul().get(`/v1/kv/${p}/?recurse`)).json<KvPair[]>();
    expect(new Set(stored.map((e) => e.ModifyIndex))).toEqual(indexes);
    expect(unb64(stored.find((e) => e.Key === `${p}/state`)!.Value)).toBe('{"rev":1}');
  });

  it('applies nothing when one check fails, and says which operation and why with 409', async () => {
    const p = prefix();
    await consul().put(`/v1/kv/${p}/rev`, '1');
    const rev = (await consul().get(`/v1/kv/${p}/rev`)).json<KvPair[]>()[0]!;
    const res = await txn([
      kv('set', `${p}/state`, { Value: b64('lost update') }),
      kv('check-index', `${p}/rev`, { Index: rev.ModifyIndex + 1 }),
      kv('set', `${p}/rev`, { Value: b64('2') }),
    ]);
    expect(res.status).toBe(409);
    const body = res.json<TxnAnswer>();
    expect(body.Results).toBeNull();
    expect(body.Errors).toHaveLength(1);
    expect(body.Errors![0]!.OpIndex).toBe(1);
    expect(body.Errors![0]!.What).toContain(
      `current modify index ${rev.ModifyIndex} != ${rev.ModifyIndex + 1}`,
    );
    expect((await consul().get(`/v1/kv/${p}/state`)).status).toBe(404);
    expect(unb64((await consul().get(`/v1/kv/${p}/rev`)).json<KvPair[]>()[0]!.Value)).toBe('1');
  });

  it('compares and swaps the revision so one of two concurrent applies wins', async () => {
    const p = prefix();
    await consul().put(`/v1/kv/${p}/rev`, '1');
    const rev = (await consul().get(`/v1/kv/${p}/rev`)).json<KvPair[]>()[0]!;
    const apply = (who: string) =>
      txn([
        kv('cas', `${p}/rev`, { Value: b64('2'), Index: rev.ModifyIndex }),
        kv('set', `${p}/state`, { Value: b64(who) }),
      ]);
    const answers = await Promise.all([apply('a'), apply('b')]);
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409]);
    const loser = answers.find((a) => a.status === 409)!.json<TxnAnswer>();
    expect(loser.Errors![0]).toMatchObject({ OpIndex: 0 });
    expect(loser.Errors![0]!.What).toContain('index is stale');
    const winner = answers.findIndex((a) => a.status === 200) === 0 ? 'a' : 'b';
    expect(unb64((await consul().get(`/v1/kv/${p}/state`)).json<KvPair[]>()[0]!.Value)).toBe(winner);
  });

  it('reads with get and get-tree (values included) and checks existence', async () => {
    const p = prefix();
    await consul().put(`/v1/kv/${p}/t/1`, 'one');
    await consul().put(`/v1/kv/${p}/t/2`, 'two');
    const res = await txn([
      kv('get', `${p}/t/1`),
      kv('get-tree', `${p}/t/`),
      kv('check-not-exists', `${p}/u`),
    ]);
    expect(res.status).toBe(200);
    expect(res.json<TxnAnswer>().Results!.map((r) => [r.KV.Key, unb64(r.KV.Value)])).toEqual([
      [`${p}/t/1`, 'one'],
      [`${p}/t/1`, 'one'],
      [`${p}/t/2`, 'two'],
    ]);
    const missing = await txn([kv('get', `${p}/nope`), kv('check-not-exists', `${p}/t/1`)]);
    expect(missing.status).toBe(409);
    expect(missing.json<TxnAnswer>().Errors!.map((e) => e.OpIndex)).toEqual([0, 1]);
  });

  it('deletes by key, by CAS and by tree inside one transaction', async () => {
    const p = prefix();
    for (const k of ['a', 'b', 't/1', 't/2']) await consul().put(`/v1/kv/${p}/${k}`, k);
    const b = (await consul().get(`/v1/kv/${p}/b`)).json<KvPair[]>()[0]!;
    const stale = await txn([
      kv('delete', `${p}/a`),
      kv('delete-cas', `${p}/b`, { Index: b.ModifyIndex + 9 }),
    ]);
    expect(stale.status).toBe(409);
    expect(stale.json<TxnAnswer>().Errors![0]!.What).toContain('index is stale');
    expect((await consul().get(`/v1/kv/${p}/a`)).status).toBe(200);
    const res = await txn([
      kv('delete', `${p}/a`),
      kv('delete-cas', `${p}/b`, { Index: b.ModifyIndex }),
      kv('delete-tree', `${p}/t/`),
    ]);
    expect(res.status).toBe(200);
    // An empty result list may come back as [] or null after Consul's RPC encoding.
    expect(res.json<TxnAnswer>().Results ?? []).toEqual([]);
    expect((await consul().get(`/v1/kv/${p}/?recurse`)).status).toBe(404);
  });

  it('refuses a body that does not decode (400) and more than 64 operations (413)', async () => {
    const p = prefix();
    expect((await consul().put('/v1/txn', '{not json')).status).toBe(400);
    expect((await txn([kv('set', `${p}/k`, { Value: '%%%not-base64' })])).status).toBe(400);
    const many = Array.from({ length: 65 }, (_, i) => kv('set', `${p}/k${i}`, { Value: b64('x') }));
    const res = await txn(many);
    expect(res.status).toBe(413);
    expect(res.text).toContain('65 > 64');
    expect((await consul().get(`/v1/kv/${p}/?recurse`)).status).toBe(404);
    expect((await txn(many.slice(0, 64))).status).toBe(200);
  });

  it('reports an unknown verb as a failed operation', async () => {
    const res = await txn([kv('frobnicate', `${prefix()}/k`)]);
    expect(res.status).toBe(409);
    expect(res.json<TxnAnswer>().Errors![0]!.What).toContain('unknown KV verb');
  });
});
