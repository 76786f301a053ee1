// KV contract: the same cases against the double and a real Consul, driven only through `/v1/kv`:
// Consul's JSON shape, `raw`, `recurse`, `keys` with a separator, CAS, flags, deletes, statuses, and
// blocking reads on one key and on a prefix (woken by changes under it only, index never backwards).
import { expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { uniqueName } from './helpers.ts';
import type { KvPair } from './raw-http.ts';
import { b64, rawConsul, unb64 } from './raw-http.ts';
import { contractSuite } from './targets.ts';

contractSuite('Consul KV contract', (target) => {
  const consul = () => rawConsul(target().address, target().token);
  const prefix = () => `clinimesh-test/${uniqueName('kv')}`;

  it('stores a value and answers it in Consul shape, raw, with the index and leader headers', async () => {
    const key = `${prefix()}/config`;
    const put = await consul().put(`/v1/kv/${key}?flags=42`, 'hello clinic');
    expect([put.status, put.text.trim()]).toEqual([200, 'true']);
    const got = await consul().get(`/v1/kv/${key}`);
    expect(got.status).toBe(200);
    const [pair] = got.json<KvPair[]>();
    expect(pair).toEqual({
      LockIndex: 0,
      Key: key,
      Flags: 42,
      Value: b64('hello clinic'),
      CreateIndex: pair!.ModifyIndex,
      ModifyIndex: pair!.ModifyIndex,
    });
    expect(got.index).toBe(pair!.ModifyIndex);
    expect(got.headers['x-consul-knownleader']).toBe('true');
    expect(got.headers['x-consul-lastcontact']).toBeDefined();
    expect(got.headers['x-consul-query-backend']).toBe('blocking-query');
    const raw = await consul().get(`/v1/kv/${key}?raw`);
    expect([raw.status, raw.text]).toEqual([200, 'hello clinic']);
  });

  it('answers 404 with a usable index for a missing key, and 400 without a key name', async () => {
    const missing = await consul().get(`/v1/kv/${prefix()}/nothing`);
    expect(missing.status).toBe(404);
    expect(missing.index).toBeGreaterThanOrEqual(1);
    expect((await consul().put('/v1/kv/', 'x')).status).toBe(400);
    expect((await consul().get('/v1/kv/')).status).toBe(400);
  });

  it('stores an empty body as a null Value', async () => {
    const key = `${prefix()}/empty`;
    await consul().put(`/v1/kv/${key}`);
    expect((await consul().get(`/v1/kv/${key}`)).json<KvPair[]>()[0]!.Value).toBeNull();
  });

  it('checks and sets: cas=0 only creates, cas=<ModifyIndex> only updates what was read', async () => {
    const key = `${prefix()}/rev`;
    expect((await consul().put(`/v1/kv/${key}?cas=0`, 'one')).text.trim()).toBe('true');
    expect((await consul().put(`/v1/kv/${key}?cas=0`, 'two')).text.trim()).toBe('false');
    const read = (await consul().get(`/v1/kv/${key}`)).json<KvPair[]>()[0]!;
    expect(unb64(read.Value)).toBe('one');
    expect((await consul().put(`/v1/kv/${key}?cas=${read.ModifyIndex}`, 'three')).text.trim()).toBe('true');
    expect((await consul().put(`/v1/kv/${key}?cas=${read.ModifyIndex}`, 'four')).text.trim()).toBe('false');
    const after = (await consul().get(`/v1/kv/${key}`)).json<KvPair[]>()[0]!;
    expect(unb64(after.Value)).toBe('three');
    expect(after.ModifyIndex).toBeGreaterThan(read.ModifyIndex);
    expect(after.CreateIndex).toBe(read.CreateIndex);
    expect((await consul().put(`/v1/kv/${key}?cas=1&acquire=x`, 'y')).status).toBe(400);
  });

  it('lists a prefix recursively in key order, and its keys rolled up at a separator', async () => {
    const p = prefix();
    for (const k of ['b/2', 'b/1', 'c', 'd/e/f']) await consul().put(`/v1/kv/${p}/${k}`, k);
    const all = (await consul().get(`/v1/kv/${p}/?recurse`)).json<KvPair[]>();
    expect(all.map((e) => e.Key)).toEqual([`${p}/b/1`, `${p}/b/2`, `${p}/c`, `${p}/d/e/f`]);
    expect(all.map((e) => unb64(e.Value))).toEqual(['b/1', 'b/2', 'c', 'd/e/f']);
    const keys = await consul().get(`/v1/kv/${p}/?keys&separator=/`);
    expect(keys.json()).toEqual([`${p}/b/`, `${p}/c`, `${p}/d/`]);
    expect((await consul().get(`/v1/kv/${p}/?keys`)).json()).toEqual(all.map((e) => e.Key));
    expect((await consul().get(`/v1/kv/${p}/nope/?keys`)).status).toBe(404);
    expect((await consul().get(`/v1/kv/${p}/nope/?recurse`)).status).toBe(404);
  });

  it('deletes one key, by CAS, and a whole tree; recurse with cas is refused', async () => {
    const p = prefix();
    for (const k of ['a', 'b', 't/1', 't/2']) await consul().put(`/v1/kv/${p}/${k}`, k);
    expect((await consul().del(`/v1/kv/${p}/a`)).text.trim()).toBe('true');
    expect((await consul().get(`/v1/kv/${p}/a`)).status).toBe(404);
    const b = (await consul().get(`/v1/kv/${p}/b`)).json<KvPair[]>()[0]!;
    expect((await consul().del(`/v1/kv/${p}/b?cas=${b.ModifyIndex + 1000}`)).text.trim()).toBe('false');
    expect((await consul().del(`/v1/kv/${p}/b?cas=${b.ModifyIndex}`)).text.trim()).toBe('true');
    expect((await consul().del(`/v1/kv/${p}/t?recurse&cas=1`)).status).toBe(400);
    expect((await consul().del(`/v1/kv/${p}/t?recurse`)).text.trim()).toBe('true');
    expect((await consul().get(`/v1/kv/${p}/?recurse`)).status).toBe(404);
  });

  it('refuses a value over 512 KiB with 413', async () => {
    const res = await consul().put(`/v1/kv/${prefix()}/big`, 'x'.repeat(512 * 1024 + 1));
    expect(res.status).toBe(413);
  });

  it('wakes a blocking read of one key when it changes, not when another key does', async () => {
    const p = prefix();
    await consul().put(`/v1/kv/${p}/watched`, 'v1');
    const first = await consul().get(`/v1/kv/${p}/watched`);
    const held = consul().get(`/v1/kv/${p}/watched?index=${first.index}&wait=3s`, { timeoutMs: 10_000 });
    if (target().heldQueries) await waitFor(async () => target().heldQueries!() > 0, { what: 'held' });
    await consul().put(`/v1/kv/${p}/other`, 'noise');
    await consul().put(`/v1/kv/${p}/watched`, 'v2');
    const woken = await held;
    expect(unb64(woken.json<KvPair[]>()[0]!.Value)).toBe('v2');
    expect(woken.index).toBeGreaterThan(first.index);
    // Only noise elsewhere: the query runs its wait out and answers the same value.
    const quiet = consul().get(`/v1/kv/${p}/watched?index=${woken.index}&wait=1s`, { timeoutMs: 10_000 });
    if (target().heldQueries) await waitFor(async () => target().heldQueries!() > 0, { what: 'held' });
    await consul().put(`/v1/kv/${p}/other`, 'more noise');
    if (target().heldQueries) expect(target().heldQueries!()).toBeGreaterThan(0);
    expect(unb64((await quiet).json<KvPair[]>()[0]!.Value)).toBe('v2');
  });

  it('wakes a blocking read of a prefix on any change under it, deletes included, index never backwards', async () => {
    const p = prefix();
    await consul().put(`/v1/kv/${p}/x/1`, 'a');
    const first = await consul().get(`/v1/kv/${p}/x/?recurse`);
    const created = consul().get(`/v1/kv/${p}/x/?recurse&index=${first.index}&wait=5s`, {
      timeoutMs: 10_000,
    });
    await consul().put(`/v1/kv/${p}/x/2/deep`, 'b');
    const second = await created;
    expect(second.json<KvPair[]>().map((e) => e.Key)).toEqual([`${p}/x/1`, `${p}/x/2/deep`]);
    expect(second.index).toBeGreaterThan(first.index);
    const deleted = consul().get(`/v1/kv/${p}/x/?recurse&index=${second.index}&wait=5s`, {
      timeoutMs: 10_000,
    });
    await consul().del(`/v1/kv/${p}/x/?recurse`);
    const third = await deleted;
    expect(third.status).toBe(404);
    expect(third.index).toBeGreaterThan(second.index);
    const keys = await consul().get(`/v1/kv/${p}/x/?keys&index=${third.index}&wait=1s`, {
      timeoutMs: 10_000,
    });
    expect(keys.index).toBeGreaterThanOrEqual(third.index);
  });
});
