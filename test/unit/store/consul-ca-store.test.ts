// The CA kept in Consul KV (the in-process Consul double): keys never stored in the clear, one CA
// however many replicas start at once, a wrong or missing KEK refused by name, any replica signs,
// and a rotation by one reaches another that reloads.
import { X509Certificate, randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority, createCsr } from '../../../src/ca/index.ts';
import { kekFromBytes, readKek, type Kek } from '../../../src/ca/sealed-keys.ts';
import type { ConsulHttp } from '../../../src/consul/http.ts';
import { ConsulCaStore } from '../../../src/store/consul-ca-store.ts';
import { ConsulKv } from '../../../src/store/consul-kv.ts';
import { ConsulDouble } from '../../consul-double/server.ts';
import { clientFor } from '../consul/helpers.ts';
import { generateKeyPairSync } from 'node:crypto';

const his = { namespace: 'clinical', service: 'his' };
const csr = () => createCsr(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);

describe('the CA in Consul KV', () => {
  let consul: ConsulDouble;
  let http: ConsulHttp;
  let kv: ConsulKv;
  let dir: string;
  let kek: Kek;
  let n = 0;
  const prefix = () => `clinimesh-test-${++n}`;

  beforeAll(async () => {
    consul = await ConsulDouble.start();
    http = await clientFor(consul.address);
    kv = new ConsulKv(http);
    dir = await mkdtemp(join(tmpdir(), 'clinimesh-kek-'));
    const file = join(dir, 'kek');
    writeFileSync(file, randomBytes(32), { mode: 0o600 });
    const read = readKek(file);
    if (!read.ok) throw new Error(JSON.stringify(read.errors));
    kek = read.value;
  });
  afterAll(async () => {
    http?.close();
    await consul?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const open = (p: string, k: Kek = kek) =>
    CertificateAuthority.openIn(new ConsulCaStore(kv, p, k), { trustDomain: 'hospital.local' });

  it('stores certificates as they are and the private keys only sealed', async () => {
    const p = prefix();
    const ca = await open(p);
    if (!ca.ok) throw new Error(JSON.stringify(ca.errors));
    const stored = consul.kv.get(`${p}/ca/hierarchy`)!.value.toString('utf8');
    expect(stored).toContain('BEGIN CERTIFICATE');
    expect(stored).not.toMatch(/PRIVATE KEY/);
    const doc = JSON.parse(stored) as { keys: { alg: string; kid: string } };
    expect(doc.keys).toMatchObject({ alg: 'AES-256-GCM', kid: kek.id });
    expect(ca.value.describe().location).toBe(`consul:${p}/ca/hierarchy`);
  });

  it('makes one CA however many replicas start on an empty store at once, and any of them signs', async () => {
    const p = prefix();
    const opened = await Promise.all([open(p), open(p), open(p)]);
    const cas = opened.map((r) => {
      if (!r.ok) throw new Error(JSON.stringify(r.errors));
      return r.value;
    });
    const roots = new Set(cas.map((c) => c.trustBundle()[0]));
    expect(roots.size).toBe(1);
    const root = new X509Certificate([...roots][0]!);
    for (const ca of cas) {
      const signed = ca.signCsr(his, csr());
      if (!signed.ok) throw new Error(JSON.stringify(signed.errors));
      const leaf = new X509Certificate(signed.value.certChainPem);
      expect(leaf.checkIssued(root)).toBe(true);
    }
  });

  it('refuses a different KEK, and a missing KEK file, naming the file', async () => {
    const p = prefix();
    expect((await open(p)).ok).toBe(true);
    const other = kekFromBytes(randomBytes(32), '/secrets/other-kek');
    if (!other.ok) throw new Error('kek');
    const wrong = await open(p, other.value);
    expect(wrong.ok ? [] : wrong.errors.map((e) => [e.code, e.field])).toEqual([['CA', 'ca-kek-file']]);
    expect(wrong.ok ? '' : wrong.errors[0]!.message).toContain('/secrets/other-kek');
    const missing = readKek(join(dir, 'no-such-kek'));
    expect(missing.ok ? [] : missing.errors.map((e) => [e.code, e.field, e.resource])).toEqual([
      ['CA', 'ca-kek-file', join(dir, 'no-such-kek')],
    ]);
    const short = kekFromBytes(Buffer.from('too short'), 'short-kek');
    expect(short.ok).toBe(false);
  });

  it('refuses sealed keys moved under another name (bound to where they are stored)', async () => {
    const p = prefix();
    expect((await open(p)).ok).toBe(true);
    const moved = prefix();
    await kv.put(`${moved}/ca/hierarchy`, consul.kv.get(`${p}/ca/hierarchy`)!.value);
    const opened = await open(moved);
    expect(opened.ok ? [] : opened.errors.map((e) => [e.code, e.field])).toEqual([['CA', 'keys']]);
  });

  it('a rotation by one replica reaches another that reloads; two rotating at once cannot both win', async () => {
    const p = prefix();
    const [a, b] = (await Promise.all([open(p), open(p)])).map((r) => {
      if (!r.ok) throw new Error(JSON.stringify(r.errors));
      return r.value;
    }) as [CertificateAuthority, CertificateAuthority];
    const oldRoot = a.trustBundle()[0];
    expect((await a.beginRootRotation()).ok).toBe(true);
    // B did not reload: its save is over a state it did not load.
    const stale = await b.beginRootRotation();
    expect(stale.ok ? [] : stale.errors.map((e) => e.code)).toEqual(['CONFLICT']);
    const reloaded = await b.reload();
    expect(reloaded).toEqual({ ok: true, value: true });
    expect(b.trustBundle()).toEqual(a.trustBundle());
    expect(b.trustBundle()).toContain(oldRoot);
    expect(b.rotating).toBe(true);
    const signed = b.signCsr(his, csr());
    if (!signed.ok) throw new Error(JSON.stringify(signed.errors));
    expect(
      new X509Certificate(signed.value.certChainPem).checkIssued(new X509Certificate(a.trustBundle()[0]!)),
    ).toBe(true);
    expect((await b.completeRootRotation()).ok).toBe(true);
    expect(await a.reload()).toEqual({ ok: true, value: true });
    expect(a.trustBundle()).toEqual([b.trustBundle()[0]]);
  });
});
