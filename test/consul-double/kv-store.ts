// The double's KV store, kept as Consul's state store keeps it: entries with Create/Modify/LockIndex
// and a lock-holding Session, tombstones for deleted keys (so a prefix's index never slides
// backwards), the KV table index, and lock-delays on the double's clock. Every change is one write at
// one raft index of the shared CatalogState; a write runs on copies and commits only when all of its
// operations succeed, which is what makes `/v1/txn` all-or-nothing.
import type { DoubleClock } from './clock.ts';
import type { CatalogState } from './state.ts';

export interface KvEntry {
  readonly key: string;
  readonly value: Buffer;
  readonly flags: number;
  /** The session holding the lock, '' when none. */
  readonly session: string;
  readonly lockIndex: number;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

/** A single operation's input, as the KV and txn endpoints decode it. */
export interface KvInput {
  readonly key: string;
  readonly value?: Buffer;
  readonly flags?: number;
  readonly session?: string;
  /** The ModifyIndex a cas / check-index / delete-cas compares against. */
  readonly index?: number;
}

/** An operation that did not apply, with Consul's wording. */
export class KvOpError extends Error {}

export const KV_MAX_VALUE_SIZE = 512 * 1024;

const EMPTY = Buffer.alloc(0);

function sameEntry(a: KvEntry, b: Omit<KvEntry, 'createIndex' | 'modifyIndex'>): boolean {
  return (
    a.key === b.key &&
    a.flags === b.flags &&
    a.session === b.session &&
    a.lockIndex === b.lockIndex &&
    a.value.equals(b.value)
  );
}

/** One raft write against the KV tables: reads see its own earlier changes; nothing is visible until commit. */
export class KvWrite {
  readonly entries: Map<string, KvEntry>;
  readonly tombstones: Map<string, number>;
  changed = false;

  constructor(
    private readonly store: KvStore,
    readonly index: number,
  ) {
    this.entries = new Map(store.entries);
    this.tombstones = new Map(store.tombstones);
  }

  get(key: string): KvEntry | undefined {
    return this.entries.get(key);
  }

  list(prefix: string): KvEntry[] {
    return sortedUnder(this.entries, prefix);
  }

  /** kvsSetTxn: keeps CreateIndex; keeps the holder unless `updateSession`; a no-op when nothing changes. */
  private put(input: KvInput, lockIndex: number, session: string | undefined): KvEntry {
    const existing = this.entries.get(input.key);
    const next = {
      key: input.key,
      value: input.value ?? EMPTY,
      flags: input.flags ?? 0,
      session: session ?? existing?.session ?? '',
      lockIndex,
    };
    if (existing && sameEntry(existing, next)) return existing;
    const entry: KvEntry = {
      ...next,
      createIndex: existing?.createIndex ?? this.index,
      modifyIndex: this.index,
    };
    this.entries.set(input.key, entry);
    this.changed = true;
    return entry;
  }

  set(input: KvInput): KvEntry {
    return this.put(input, 0, undefined);
  }

  /** Index 0: only when absent; otherwise only when the ModifyIndex matches. */
  cas(input: KvInput): KvEntry | undefined {
    const existing = this.entries.get(input.key);
    const want = input.index ?? 0;
    if (want === 0 ? existing !== undefined : existing?.modifyIndex !== want) return undefined;
    return this.set(input);
  }

  lock(input: KvInput): KvEntry | undefined {
    const session = input.session ?? '';
    if (session === '') throw new KvOpError('missing session');
    if (!this.store.sessionExists(session)) throw new KvOpError(`invalid session ${JSON.stringify(session)}`);
    const existing = this.entries.get(input.key);
    if (existing && existing.session !== '' && existing.session !== session) return undefined;
    const lockIndex = !existing
      ? 1
      : existing.session === session
        ? existing.lockIndex
        : existing.lockIndex + 1;
    return this.put(input, lockIndex, session);
  }

  unlock(input: KvInput): KvEntry | undefined {
    const session = input.session ?? '';
    if (session === '') throw new KvOpError('missing session');
    const existing = this.entries.get(input.key);
    if (!existing || existing.session !== session) return undefined;
    return this.put(input, existing.lockIndex, '');
  }

  delete(key: string): void {
    if (!this.entries.has(key)) return;
    this.entries.delete(key);
    this.tombstones.set(key, this.index);
    this.changed = true;
  }

  /** True when deleted, or when there was nothing to delete (as Consul answers). */
  deleteCas(key: string, index: number): boolean {
    const existing = this.entries.get(key);
    if (!existing || existing.modifyIndex !== index) return existing === undefined;
    this.delete(key);
    return true;
  }

  deleteTree(prefix: string): void {
    for (const e of this.list(prefix)) this.delete(e.key);
  }

  /** Clears a holder's locks (Behavior release) or deletes its keys (delete); returns the keys touched. */
  invalidateSession(session: string, behavior: 'release' | 'delete'): string[] {
    const held = [...this.entries.values()].filter((e) => e.session === session);
    for (const e of held) {
      if (behavior === 'delete') this.delete(e.key);
      else this.put({ key: e.key, value: e.value, flags: e.flags }, e.lockIndex, '');
    }
    return held.map((e) => e.key);
  }
}

function sortedUnder(entries: ReadonlyMap<string, KvEntry>, prefix: string): KvEntry[] {
  return [...entries.values()]
    .filter((e) => e.key.startsWith(prefix))
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

export class KvStore {
  entries = new Map<string, KvEntry>();
  tombstones = new Map<string, number>();
  /** The last index at which any KV entry or tombstone changed (kvsMaxIndex). */
  tableIndex = 0;
  /** Key → clock time until which it cannot be locked (set when a holder's session is invalidated). */
  private readonly lockDelays = new Map<string, number>();
  /** Answers whether a session exists; set by the session store. */
  sessionExists: (id: string) => boolean = () => false;

  constructor(
    private readonly state: CatalogState,
    private readonly clock: DoubleClock,
  ) {}

  get(key: string): KvEntry | undefined {
    return this.entries.get(key);
  }

  list(prefix: string): KvEntry[] {
    return sortedUnder(this.entries, prefix);
  }

  /** The index a blocking read of one key wakes on: its ModifyIndex, or the index it was deleted at. */
  keyIndex(key: string): number {
    return this.entries.get(key)?.modifyIndex ?? this.tombstones.get(key) ?? 0;
  }

  /** kvsListTxn's index for a prefix: the highest entry or tombstone under it, else the table index. */
  prefixIndex(prefix: string): number {
    if (prefix === '') return this.tableIndex;
    let max = 0;
    for (const e of this.entries.values()) if (e.key.startsWith(prefix)) max = Math.max(max, e.modifyIndex);
    for (const [k, i] of this.tombstones) if (k.startsWith(prefix)) max = Math.max(max, i);
    return max;
  }

  /** Whether a lock on `key` is refused because a lock-delay is running. */
  lockDelayed(key: string): boolean {
    const until = this.lockDelays.get(key);
    if (until === undefined) return false;
    if (until > this.clock.now()) return true;
    this.lockDelays.delete(key);
    return false;
  }

  setLockDelay(key: string, delayMs: number): void {
    if (delayMs > 0) this.lockDelays.set(key, this.clock.now() + delayMs);
  }

  /**
   * Runs `fn` as one raft write: at a fresh index, on copies of the tables. The copies become the
   * store only when `fn` returns `commit: true`; blocking readers are woken once, after the commit.
   */
  write<T>(fn: (w: KvWrite) => { commit: boolean; value: T }): T {
    let out: T | undefined;
    this.state.write((index) => {
      const w = new KvWrite(this, index);
      const { commit, value } = fn(w);
      out = value;
      if (commit && w.changed) {
        this.entries = w.entries;
        this.tombstones = w.tombstones;
        this.tableIndex = index;
      }
      return [];
    }, false);
    return out as T;
  }
}
