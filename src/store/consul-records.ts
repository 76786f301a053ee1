// Record sets and the history in Consul KV, under the store's prefix:
//   <prefix>tokens/<kind>/<id>            one JSON record; its version is the key's ModifyIndex
//   <prefix>history/<revision>/<ms>-<rnd>  one JSON history entry (applies write theirs in the commit txn)
// Check-and-set is Consul's own (a txn `cas`, `delete-cas`), so replicas never both win.
import { randomBytes } from 'node:crypto';
import { fail, ok, type Result } from '../errors.ts';
import type { HistoryEntry, HistoryLog, RecordExpectation, RecordSet, StoredRecord } from './backend.ts';
import type { ConsulKv, KvEntry, TxnOp } from './consul-kv.ts';
import { watchKv } from './consul-kv-watch.ts';
import { isHistoryEntry } from './file-history.ts';

function parseJson(entry: KvEntry): unknown {
  try {
    return JSON.parse(entry.value.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

export class ConsulRecordSet implements RecordSet {
  constructor(
    private readonly kv: ConsulKv,
    /** `<prefix>tokens/<kind>/`, with the trailing slash. */
    private readonly dir: string,
  ) {}

  private toMap(entries: readonly KvEntry[]): Map<string, StoredRecord> {
    const out = new Map<string, StoredRecord>();
    for (const e of entries) {
      const id = e.key.slice(this.dir.length);
      const value = parseJson(e);
      if (id && !id.includes('/') && value !== undefined) out.set(id, { value, version: e.modifyIndex });
    }
    return out;
  }

  async load(): Promise<Result<ReadonlyMap<string, StoredRecord>>> {
    const read = await this.kv.list(this.dir);
    return read.ok ? ok(this.toMap(read.value.value)) : read;
  }

  async put(
    id: string,
    value: unknown,
    expected: RecordExpectation,
  ): Promise<Result<StoredRecord | undefined>> {
    const key = this.dir + id;
    const text = JSON.stringify(value);
    const op: TxnOp =
      expected === 'any'
        ? { verb: 'set', key, value: text }
        : { verb: 'cas', key, value: text, index: expected === 'absent' ? 0n : expected };
    // A version that was never written (below 1) can never match.
    if (typeof expected === 'bigint' && expected < 1n) return ok(undefined);
    const done = await this.kv.txn([op]);
    if (!done.ok) return done;
    if (!done.value.committed) return ok(undefined);
    const written = done.value.results.find((e) => e.key === key);
    return ok({ value, version: written?.modifyIndex ?? 0n });
  }

  async remove(id: string, expected: RecordExpectation): Promise<Result<boolean>> {
    const key = this.dir + id;
    if (expected === 'absent') return ok(false);
    const op: TxnOp =
      expected === 'any' ? { verb: 'delete', key } : { verb: 'delete-cas', key, index: expected };
    const done = await this.kv.txn([op]);
    if (!done.ok) return done;
    return ok(done.value.committed);
  }

  watch(onChange: (records: ReadonlyMap<string, StoredRecord>) => void): () => void {
    const watch = watchKv(this.kv, this.dir, {
      recurse: true,
      onChange: (entries) => onChange(this.toMap(entries)),
    });
    return () => void watch.stop();
  }
}

/** `<prefix>history/<revision, 12 digits>/<time ms>-<random>`: keys sort by revision, then time. */
export function historyKey(prefix: string, entry: HistoryEntry): string {
  const rev = String(entry.revision).padStart(12, '0');
  const ms = String(Date.parse(entry.time) || 0).padStart(13, '0');
  return `${prefix}history/${rev}/${ms}-${randomBytes(4).toString('hex')}`;
}

export class ConsulHistory implements HistoryLog {
  constructor(
    private readonly kv: ConsulKv,
    private readonly prefix: string,
  ) {}

  async append(entry: HistoryEntry): Promise<Result<void>> {
    const put = await this.kv.put(historyKey(this.prefix, entry), JSON.stringify(entry));
    if (!put.ok) return put;
    return put.value ? ok(undefined) : fail([{ code: 'CONSUL', message: 'history entry not written' }]);
  }

  async list(limit?: number): Promise<Result<readonly HistoryEntry[]>> {
    const read = await this.kv.list(`${this.prefix}history/`);
    if (!read.ok) return read;
    const entries = read.value.value.map(parseJson).filter(isHistoryEntry);
    return ok(limit === undefined ? entries : entries.slice(-limit));
  }
}
