// The backend without a data dir: state, history and records live as long as the process. Also the
// base of the file backend's record sets, which keep the same check-and-set rules in memory.
import { ok, type Result } from '../errors.ts';
import { SerialWriter } from './durable-file.ts';
import {
  staleBase,
  type CommitRequest,
  type HistoryEntry,
  type HistoryLog,
  type RecordExpectation,
  type RecordKind,
  type RecordSet,
  type StateBackend,
  type StoredRecord,
  type StoredState,
} from './backend.ts';

export function expectationHolds(current: StoredRecord | undefined, expected: RecordExpectation): boolean {
  if (expected === 'any') return true;
  if (expected === 'absent') return current === undefined;
  return current?.version === expected;
}

/** Records in memory; `persist` (the file backend's) runs before a change becomes visible. */
export class MemoryRecordSet implements RecordSet {
  protected records = new Map<string, StoredRecord>();
  protected version = 0n;
  private readonly turns = new SerialWriter();

  constructor(initial: ReadonlyMap<string, unknown> = new Map()) {
    for (const [id, value] of initial) this.records.set(id, { value, version: ++this.version });
  }

  load(): Promise<Result<ReadonlyMap<string, StoredRecord>>> {
    return Promise.resolve(ok(new Map(this.records)));
  }

  put(id: string, value: unknown, expected: RecordExpectation): Promise<Result<StoredRecord | undefined>> {
    // Decided and written in turn, so two callers in this process never both win.
    return this.turns.run(async () => {
      if (!expectationHolds(this.records.get(id), expected)) return ok(undefined);
      const next = new Map(this.records);
      const record = { value, version: ++this.version };
      next.set(id, record);
      const saved = await this.swap(next);
      return saved.ok ? ok(record) : saved;
    });
  }

  remove(id: string, expected: RecordExpectation): Promise<Result<boolean>> {
    return this.turns.run(async () => {
      if (!this.records.has(id) || !expectationHolds(this.records.get(id), expected)) return ok(false);
      const next = new Map(this.records);
      next.delete(id);
      const saved = await this.swap(next);
      return saved.ok ? ok(true) : saved;
    });
  }

  watch(): () => void {
    return () => undefined;
  }

  /** Makes `next` current; the file backend writes it first (and keeps the old set when it cannot). */
  protected swap(next: Map<string, StoredRecord>): Promise<Result<void>> {
    this.records = next;
    return Promise.resolve(ok(undefined));
  }
}

export class MemoryHistory implements HistoryLog {
  protected readonly entries: HistoryEntry[] = [];

  append(entry: HistoryEntry): Promise<Result<void>> {
    this.entries.push(entry);
    return Promise.resolve(ok(undefined));
  }

  list(limit?: number): Promise<Result<readonly HistoryEntry[]>> {
    return Promise.resolve(ok(limit === undefined ? [...this.entries] : this.entries.slice(-limit)));
  }
}

export class MemoryBackend implements StateBackend {
  readonly kind = 'memory' as const;
  readonly location = 'memory';
  readonly history = new MemoryHistory();
  private revision = 0;
  private readonly sets = new Map<RecordKind, MemoryRecordSet>();

  load(): Promise<Result<StoredState | undefined>> {
    return Promise.resolve(ok(undefined));
  }

  async commit(c: CommitRequest): Promise<Result<void>> {
    if (c.base !== this.revision) return { ok: false, errors: [staleBase('memory', c.base, this.revision)] };
    this.revision = c.revision;
    if (c.history) await this.history.append(c.history);
    return ok(undefined);
  }

  watch(): () => void {
    return () => undefined;
  }

  records(kind: RecordKind): RecordSet {
    let set = this.sets.get(kind);
    if (!set) this.sets.set(kind, (set = new MemoryRecordSet()));
    return set;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
