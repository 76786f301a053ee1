// The desired-state store: whole-set validation, revisions, no-op re-applies, persistence.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileStore } from '../../../src/store/file-store.ts';
import { StateStore } from '../../../src/store/store.ts';
import { meshManifests } from '../plan/fixtures.ts';

describe('StateStore', () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'clinimesh-store-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('commits a proposal as the next revision and tells listeners what it touched', async () => {
    const store = new StateStore();
    const heard: string[][] = [];
    store.subscribe((_, touched) => heard.push([...touched]));
    const p = store.propose({ apply: meshManifests() });
    expect(p.ok && p.value.state.revision).toBe(1);
    if (!p.ok) return;
    expect((await store.commit(p.value)).ok).toBe(true);
    expect(store.current().services.size).toBe(2);
    expect(heard).toEqual([['Service clinical/his', 'Service clinical/emr']]);
  });

  it('treats an identical apply as no change: same revision, nothing committed', async () => {
    const store = new StateStore();
    const first = store.propose({ apply: meshManifests() });
    if (!first.ok) throw new Error('invalid');
    await store.commit(first.value);
    const again = store.propose({ apply: meshManifests() });
    expect(again.ok && again.value.changed).toBe(false);
    if (again.ok) expect(await store.commit(again.value)).toEqual({ ok: true, value: false });
    expect(store.current().revision).toBe(1);
  });

  it('refuses to commit a proposal made before another change landed', async () => {
    const store = new StateStore();
    const a = store.propose({ apply: meshManifests('r1') });
    const b = store.propose({ apply: meshManifests('r2') });
    if (!a.ok || !b.ok) throw new Error('invalid');
    await store.commit(a.value);
    const late = await store.commit(b.value);
    expect(late.ok ? [] : late.errors.map((e) => e.code)).toEqual(['CONFLICT']);
  });

  it('refuses deleting what does not exist, and applies nothing of a batch with a bad document', () => {
    const store = new StateStore();
    const missing = store.propose({ delete: [{ kind: 'Service', namespace: 'clinical', name: 'nope' }] });
    expect(missing.ok ? [] : missing.errors.map((e) => e.code)).toEqual(['NOT_FOUND']);
    const emrOnly = meshManifests().filter((m) => m.name === 'emr');
    const dangling = store.propose({ apply: emrOnly });
    expect(dangling.ok).toBe(false);
  });

  it('persists to a 0600 file and restores the same state and revision', async () => {
    const store = new StateStore(new FileStore(dir));
    const p = store.propose({ apply: meshManifests() });
    if (!p.ok) throw new Error('invalid');
    await store.commit(p.value);
    expect((await stat(join(dir, 'state.json'))).mode & 0o777).toBe(0o600);
    const restored = new StateStore(new FileStore(dir));
    expect((await restored.restore()).ok).toBe(true);
    expect(restored.current().revision).toBe(1);
    expect([...restored.current().services.keys()].sort()).toEqual(['emr.clinical', 'his.clinical']);
  });
});
