// Where state persists, behind one interface: the embedded file store (one replica) or Consul KV
// (several). `StateStore` and everything above it talk to a `StateBackend` and never know which one
// runs. A backend keeps the desired state (commits are check-and-set on the revision), the history
// of who changed what, and small record sets (operator and join tokens) with per-record CAS.
import type { Problem, Result } from '../errors.ts';
import type { Manifest } from '../manifest/types.ts';

export interface StoredState {
  readonly revision: number;
  readonly manifests: readonly Manifest[];
}

/** Who changed what: one entry per change, never a secret. */
export interface HistoryEntry {
  readonly time: string;
  readonly author: { readonly tokenId: string; readonly name: string };
  /** The author's role (`admin`, `editor`, `viewer`, or `system` for start-up imports). */
  readonly role: string;
  readonly action: string;
  readonly revision: number;
  readonly touched: readonly string[];
  /** Extra, non-secret facts (the rotation phase, a join token's namespace/service). */
  readonly detail?: Readonly<Record<string, string>>;
}

/** What a commit is about, for the history; the store adds time, revision and touched. */
export interface CommitNote {
  readonly author: { readonly tokenId: string; readonly name: string };
  readonly role: string;
  readonly action: string;
  readonly detail?: Readonly<Record<string, string>>;
}

export interface CommitRequest {
  /** The revision the change was proposed on: the commit fails with CONFLICT if the store moved. */
  readonly base: number;
  /** base + 1. */
  readonly revision: number;
  /** Manifests added or changed (only these are written where the backend can). */
  readonly upserts: readonly Manifest[];
  /** Ids (`Service clinical/his`) of manifests removed. */
  readonly removed: readonly string[];
  readonly touched: readonly string[];
  /** The whole new set, for backends that snapshot. */
  readonly manifests: readonly Manifest[];
  /** Written with the commit, atomically where the backend can. */
  readonly history?: HistoryEntry;
}

export interface HistoryLog {
  append(entry: HistoryEntry): Promise<Result<void>>;
  /** Entries oldest first; `limit` keeps the newest. */
  list(limit?: number): Promise<Result<readonly HistoryEntry[]>>;
}

/** A record and the version a check-and-set compares against. */
export interface StoredRecord {
  readonly value: unknown;
  readonly version: bigint;
}

/** `absent`: only if no record has the id; a version: only if the record is still at it. */
export type RecordExpectation = 'absent' | bigint | 'any';

/** A set of small JSON records keyed by id (operator tokens, join tokens). */
export interface RecordSet {
  load(): Promise<Result<ReadonlyMap<string, StoredRecord>>>;
  /** Writes when `expected` holds: the new record, or undefined when another writer moved it first. */
  put(id: string, value: unknown, expected: RecordExpectation): Promise<Result<StoredRecord | undefined>>;
  /** Deletes when `expected` holds; false when another writer moved it first. */
  remove(id: string, expected: RecordExpectation): Promise<Result<boolean>>;
  /** Changes made by other replicas (never called by the file and memory backends). */
  watch(onChange: (records: ReadonlyMap<string, StoredRecord>) => void): () => void;
}

export type RecordKind = 'admin-tokens' | 'join-tokens';

export type BackendKind = 'memory' | 'file' | 'consul';

export interface StateBackend {
  readonly kind: BackendKind;
  /** Where it lives, for logs and problems (`/var/lib/clinimesh`, `consul://…/clinimesh/`). */
  readonly location: string;
  /** Manifests one commit may change, where the backend has a limit (Consul's txn size). */
  readonly maxChangesPerCommit?: number;
  load(): Promise<Result<StoredState | undefined>>;
  /** Persists one change; CONFLICT (naming the revision) when `base` is no longer the latest. */
  commit(c: CommitRequest): Promise<Result<void>>;
  /** The latest state after commits made elsewhere (never called by single-replica backends). */
  watch(onRemote: (state: StoredState) => void): () => void;
  readonly history: HistoryLog;
  records(kind: RecordKind): RecordSet;
  close(): Promise<void>;
}

const STALE = 'state revision';

/** Whether a commit failed only because another commit came first (proposing again may work). */
export function isStaleBase(problems: readonly Problem[]): boolean {
  return problems.some((p) => p.code === 'CONFLICT' && p.resource === STALE);
}

/** The CONFLICT of a commit whose base is no longer the latest revision. */
export function staleBase(where: string, base: number, latest: number | undefined): Problem {
  return {
    code: 'CONFLICT',
    resource: STALE,
    message: `${where}: the state moved to revision ${latest ?? `> ${base}`} while this change (proposed on revision ${base}) was committed`,
  };
}
