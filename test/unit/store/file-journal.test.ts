// The file backend writes what changed: a journal line per commit (fsynced), a snapshot every so
// often, replay of snapshot + journal at start, a torn last line ignored, old state.json migrated.
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Manifest } from '../../../src/manifest/index.ts';
import { FileStore } from '../../../src/store/file-store.ts';
import { StateStore } from '../../../src/store/store.ts';
import { service } from './fixtures.ts';

async function opened(dir: string, compactEvery?: number): Promise<StateStore> {
  const store = new StateStore(new FileStore(dir, compactEvery));
  const restored = await store.restore();
  if (!restored.ok) throw new Error(JSON.stringify(restored.errors));
  return store;
}

async function apply(store: StateStore, manifests: Manifest[]): Promise<void> {
  const p = store.propose({ apply: manifests });
  if (!p.ok) throw new Error(JSON.stringify(p.errors));
  const c = await store.commit(p.value);
  if (!c.ok) throw new Error(JSON.stringify(c.errors));
}

const lines = async (path: string) => (await readFile(path, 'utf8')).split('\n').filter(Boolean);
const ids = (s: StateStore) =>
  s
    .list()
    .map((m) => JSON.stringify(m))
    .sort();

describe('FileStore journal', () => {
  let dir: string;
  beforeEach(async () => (dir = await mkdtemp(join(tmpdir(), 'clinimesh-journal-'))));
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('appends only the changed manifests per commit, and replays snapshot + journal at start', async () => {
    const store = await opened(dir);
    await apply(store, [service('his', 15001), service('emr', 15011)]);
    const snapshot = await readFile(join(dir, 'state.json'), 'utf8');
    await apply(store, [service('his', 15002)]);
    await apply(store, [service('lab', 15003)]);
    // The snapshot was not rewritten; the journal holds one line per later commit, with only its change.
    expect(await readFile(join(dir, 'state.json'), 'utf8')).toBe(snapshot);
    const journal = (await lines(join(dir, 'state.journal'))).map(
      (l) => JSON.parse(l) as { revision: number; upserts: Manifest[] },
    );
    expect(journal.map((r) => [r.revision, r.upserts.map((m) => m.name)])).toEqual([
      [2, ['his']],
      [3, ['lab']],
    ]);
    expect((await stat(join(dir, 'state.journal'))).mode & 0o777).toBe(0o600);
    const restored = await opened(dir);
    expect(restored.current().revision).toBe(3);
    expect(ids(restored)).toEqual(ids(store));
  });

  it('journals deletes as ids and replays them', async () => {
    const store = await opened(dir);
    await apply(store, [service('his', 15001), service('lab', 15003)]);
    const p = store.propose({ delete: [{ kind: 'Service', namespace: 'clinical', name: 'lab' }] });
    if (!p.ok) throw new Error('invalid');
    expect((await store.commit(p.value)).ok).toBe(true);
    expect((await lines(join(dir, 'state.journal')))[0]).toContain('"removed":["Service clinical/lab"]');
    const restored = await opened(dir);
    expect(restored.list().map((m) => m.name)).toEqual(['his']);
    expect(restored.current().revision).toBe(2);
  });

  it('ignores a torn last line (a crash mid-append), cuts it off, and appends cleanly after it', async () => {
    const store = await opened(dir);
    await apply(store, [service('his', 15001)]);
    await apply(store, [service('lab', 15003)]);
    await appendFile(join(dir, 'state.journal'), '{"revision":3,"upserts":[{"kind":"Serv');
    const restored = await opened(dir);
    expect(restored.current().revision).toBe(2);
    expect(ids(restored)).toEqual(ids(store));
    await apply(restored, [service('pharmacy', 15004)]);
    const again = await opened(dir);
    expect(again.current().revision).toBe(3);
    expect(again.current().services.has('pharmacy.clinical')).toBe(true);
  });

  it('refuses a journal corrupt before its last line, naming the line', async () => {
    const store = await opened(dir);
    await apply(store, [service('his', 15001)]);
    await apply(store, [service('lab', 15003)]);
    await apply(store, [service('lab', 15005)]);
    const text = await readFile(join(dir, 'state.journal'), 'utf8');
    await writeFile(join(dir, 'state.journal'), text.replace('"revision":2', '"revision":2,,'));
    const broken = await new StateStore(new FileStore(dir)).restore();
    expect(broken.ok ? [] : broken.errors.map((e) => [e.code, e.resource])).toEqual([
      ['IO', `${join(dir, 'state.journal')}:1`],
    ]);
  });

  it('compacts into a snapshot every N commits and empties the journal; a restart sees the same state', async () => {
    const store = await opened(dir, 3);
    for (let i = 0; i < 7; i++) await apply(store, [service(`svc-${i}`, 16000 + i)]);
    const snapshot = JSON.parse(await readFile(join(dir, 'state.json'), 'utf8')) as { revision: number };
    const journal = await lines(join(dir, 'state.journal'));
    expect(snapshot.revision + journal.length).toBe(7);
    expect(journal.length).toBeLessThan(3);
    const restored = await opened(dir, 3);
    expect(restored.current().revision).toBe(7);
    expect(ids(restored)).toEqual(ids(store));
  });

  it('replays nothing twice after a crash between writing the snapshot and emptying the journal', async () => {
    const store = await opened(dir);
    await apply(store, [service('his', 15001)]);
    await apply(store, [service('lab', 15003)]);
    const journal = await readFile(join(dir, 'state.journal'), 'utf8');
    // The snapshot at revision 2 was written, the journal (holding revision 2) not yet emptied.
    await writeFile(join(dir, 'state.json'), JSON.stringify({ revision: 2, manifests: store.list() }));
    await writeFile(join(dir, 'state.journal'), journal);
    const restored = await opened(dir);
    expect(restored.current().revision).toBe(2);
    expect(ids(restored)).toEqual(ids(store));
  });

  it('migrates a state.json written before the journal: it is the snapshot', async () => {
    const old = await opened(dir);
    await apply(old, [service('his', 15001)]);
    await rm(join(dir, 'state.journal'), { force: true });
    await writeFile(join(dir, 'state.json'), JSON.stringify({ revision: 5, manifests: old.list() }, null, 2));
    const store = await opened(dir);
    expect(store.current().revision).toBe(5);
    await apply(store, [service('lab', 15003)]);
    const restored = await opened(dir);
    expect(restored.current().revision).toBe(6);
    expect(restored.current().services.has('lab.clinical')).toBe(true);
  });
});
