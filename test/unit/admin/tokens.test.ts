import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TokenStore } from '../../../src/admin/tokens.ts';

async function store(): Promise<TokenStore> {
  const opened = await TokenStore.open(undefined);
  if (!opened.ok) throw new Error('open');
  return opened.value;
}

describe('operator tokens', () => {
  it('are high-entropy cmt_<id>_<secret> strings that authenticate as their role', async () => {
    const tokens = await store();
    const created = await tokens.create({
      name: 'ci',
      role: 'editor',
      namespaces: ['clinical', 'lab', 'clinical'],
      createdBy: 'test',
    });
    if (!created.ok) throw new Error('create');
    expect(created.value.token).toMatch(/^cmt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
    expect(tokens.authenticate(created.value.token)).toEqual({
      tokenId: created.value.info.id,
      name: 'ci',
      role: 'editor',
      namespaces: ['clinical', 'lab'],
    });
    // The secret is all after the id: base64url may hold '_' itself.
    expect(JSON.stringify(tokens.list())).not.toContain(created.value.token.slice('cmt_'.length + 17));
  });

  it('stop authenticating when expired or revoked', async () => {
    const tokens = await store();
    const now = new Date('2030-01-01T00:00:00Z');
    const brief = await tokens.create(
      { name: 'brief', role: 'viewer', namespaces: [], ttlMs: 60_000, createdBy: 'test' },
      now,
    );
    if (!brief.ok) throw new Error('create');
    expect(tokens.authenticate(brief.value.token, new Date(now.getTime() + 59_000))).toBeDefined();
    expect(tokens.authenticate(brief.value.token, new Date(now.getTime() + 60_000))).toBeUndefined();
    const other = await tokens.create({ name: 'other', role: 'admin', namespaces: [], createdBy: 'test' });
    if (!other.ok) throw new Error('create');
    expect((await tokens.revoke(other.value.info.id)).ok).toBe(true);
    expect(tokens.authenticate(other.value.token)).toBeUndefined();
    const again = await tokens.revoke(other.value.info.id);
    expect(again.ok ? [] : again.errors.map((e) => e.code)).toEqual(['NOT_FOUND']);
  });

  it('refuse ill-formed requests with every problem at once', async () => {
    const tokens = await store();
    const bad = await tokens.create({
      name: '',
      role: 'editor',
      namespaces: [],
      ttlMs: -1,
      createdBy: 'test',
    });
    expect(bad.ok ? [] : bad.errors.map((e) => e.field)).toEqual(['name', 'namespaces', 'ttlSeconds']);
    const viewerWithNs = await tokens.create({
      name: 'v',
      role: 'viewer',
      namespaces: ['clinical'],
      createdBy: 'test',
    });
    expect(viewerWithNs.ok ? [] : viewerWithNs.errors.map((e) => e.code)).toEqual(['SCHEMA']);
  });
});

describe('TokenStore under concurrent changes', () => {
  it('keeps every token created at the same time', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clinimesh-tokens-race-'));
    try {
      const store = await TokenStore.open(dir);
      if (!store.ok) throw new Error('open');
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          store.value.create({ name: `t${i}`, role: 'viewer', namespaces: [], createdBy: 'test' }),
        ),
      );
      expect(store.value.size).toBe(10);
      const reopened = await TokenStore.open(dir);
      expect(reopened.ok && reopened.value.size).toBe(10);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
