// The embedded persistence: a snapshot (`state.json`, replaced atomically: write, fsync, rename,
// fsync the directory; mode 0600) plus a journal of changes since (`state.journal`, one fsynced line
// per commit), so a commit writes what changed, not the whole mesh. Every COMPACT_EVERY commits (or
// when the journal outgrows the snapshot) the snapshot is rewritten and the journal emptied. Start-up
// replays snapshot + journal; a `state.json` from before the journal is simply a snapshot.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { fail, ok, type Result } from '../errors.ts';
import { log } from '../log.ts';
import { manifestId, type Manifest } from '../manifest/types.ts';
import {
  staleBase,
  type CommitRequest,
  type RecordKind,
  type RecordSet,
  type StateBackend,
  type StoredState,
} from './backend.ts';
import { SerialWriter, appendLineDurably, writeFileDurably } from './durable-file.ts';
import { FileHistory } from './file-history.ts';
import { cutTornTail, readJournal, replay, type JournalRecord } from './file-journal.ts';
import { FileRecordSet, adminTokensFormat, joinTokensFormat } from './file-records.ts';

/** Kept for callers that name the snapshot's shape. */
export type PersistedState = StoredState;

export const COMPACT_EVERY = 256;

const logger = log.child({ component: 'file-store' });

export class FileStore implements StateBackend {
  readonly kind = 'file' as const;
  readonly path: string;
  readonly journalPath: string;
  readonly history: FileHistory;
  private readonly writer = new SerialWriter();
  private readonly sets = new Map<RecordKind, FileRecordSet>();
  private revision = 0;
  private hasSnapshot = false;
  private journalLines = 0;
  private journalBytes = 0;
  private snapshotBytes = 0;

  constructor(
    readonly dir: string,
    private readonly compactEvery = COMPACT_EVERY,
  ) {
    this.path = join(dir, 'state.json');
    this.journalPath = join(dir, 'state.journal');
    this.history = new FileHistory(join(dir, 'history.jsonl'));
  }

  get location(): string {
    return this.dir;
  }

  async load(): Promise<Result<StoredState | undefined>> {
    const snapshot = await this.readSnapshot();
    if (!snapshot.ok) return snapshot;
    const journal = await readJournal(this.journalPath);
    if (!journal.ok) return journal;
    if (journal.value.tornBytes > 0) {
      const cut = await cutTornTail(this.journalPath, journal.value.validBytes);
      if (!cut.ok) return cut;
    }
    const base = snapshot.value ?? { revision: 0, manifests: [] };
    const manifests = new Map(base.manifests.map((m) => [manifestId(m), m]));
    const revision = replay(this.journalPath, base.revision, manifests, journal.value.records);
    if (!revision.ok) return revision;
    this.revision = revision.value;
    this.hasSnapshot = snapshot.value !== undefined;
    this.journalLines = journal.value.records.length;
    this.journalBytes = journal.value.validBytes;
    if (!snapshot.value && revision.value === 0) return ok(undefined);
    return ok({ revision: revision.value, manifests: [...manifests.values()] });
  }

  commit(c: CommitRequest): Promise<Result<void>> {
    return this.writer.run(async () => {
      if (c.base !== this.revision) return fail([staleBase(this.dir, c.base, this.revision)]);
      const compact =
        !this.hasSnapshot ||
        this.journalLines + 1 >= this.compactEvery ||
        this.journalBytes > Math.max(1 << 20, this.snapshotBytes);
      const written = compact ? await this.snapshot(c) : await this.append(c);
      if (!written.ok) return written;
      this.revision = c.revision;
      // After the state: the commit stands even when its history line cannot be written.
      if (c.history) {
        const logged = await this.history.append(c.history);
        if (!logged.ok) logger.warn({ problems: logged.errors }, 'history entry not written');
      }
      return ok(undefined);
    });
  }

  watch(): () => void {
    return () => undefined;
  }

  records(kind: RecordKind): RecordSet {
    let set = this.sets.get(kind);
    if (!set) {
      const format = kind === 'admin-tokens' ? adminTokensFormat : joinTokensFormat;
      set = new FileRecordSet(join(this.dir, format.file), format);
      this.sets.set(kind, set);
    }
    return set;
  }

  close(): Promise<void> {
    return this.writer.run(() => Promise.resolve());
  }

  private async append(c: CommitRequest): Promise<Result<void>> {
    const record: JournalRecord = { revision: c.revision, upserts: c.upserts, removed: c.removed };
    const line = JSON.stringify(record);
    try {
      await appendLineDurably(this.journalPath, line);
    } catch (e) {
      return fail([{ code: 'IO', resource: this.journalPath, message: (e as Error).message }]);
    }
    this.journalLines++;
    this.journalBytes += Buffer.byteLength(line) + 1;
    return ok(undefined);
  }

  /** Rewrites the snapshot, then empties the journal; a crash in between only replays what is in it. */
  private async snapshot(c: CommitRequest): Promise<Result<void>> {
    const text = JSON.stringify({ revision: c.revision, manifests: c.manifests }, null, 2);
    try {
      await writeFileDurably(this.path, text);
      await writeFileDurably(this.journalPath, '');
    } catch (e) {
      return fail([{ code: 'IO', resource: this.path, message: (e as Error).message }]);
    }
    this.hasSnapshot = true;
    this.snapshotBytes = Buffer.byteLength(text);
    this.journalLines = 0;
    this.journalBytes = 0;
    return ok(undefined);
  }

  private async readSnapshot(): Promise<Result<StoredState | undefined>> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return ok(undefined);
      return fail([{ code: 'IO', resource: this.path, message: (e as Error).message }]);
    }
    try {
      const parsed = JSON.parse(text) as { revision?: unknown; manifests?: unknown };
      if (typeof parsed.revision !== 'number' || !Array.isArray(parsed.manifests))
        throw new Error('expected {revision, manifests}');
      this.snapshotBytes = (await stat(this.path)).size;
      return ok({ revision: parsed.revision, manifests: parsed.manifests as Manifest[] });
    } catch (e) {
      return fail([
        { code: 'IO', resource: this.path, message: `corrupt state file: ${(e as Error).message}` },
      ]);
    }
  }
}
