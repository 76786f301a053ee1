// Who changed what: every mutating admin call (apply, delete, root rotation, token and join-token
// creation, token revocation, trust-domain migration) as one entry naming its author (token name and
// id), role, time, action, the revision it left and what it touched: manifest refs, token or
// join-token ids, never a secret. Kept by the store backend (`<data-dir>/history.jsonl`, or Consul
// KV shared by every replica); applies and deletes are written with their commit, by the store.
import { join } from 'node:path';
import { ok, type Result } from '../errors.ts';
import type { CommitNote, HistoryEntry as StoredEntry, HistoryLog } from '../store/backend.ts';
import { FileHistory } from '../store/file-history.ts';
import { MemoryHistory } from '../store/memory-backend.ts';
import type { Principal, Role } from './tokens.ts';

export type HistoryAction =
  | 'apply'
  | 'delete'
  | 'rotate-root'
  | 'token-create'
  | 'token-revoke'
  | 'join-token-create'
  | 'trust-domain-migration';

export interface HistoryEntry extends StoredEntry {
  readonly role: Role;
  readonly action: HistoryAction;
}

export interface HistoryRecord {
  readonly action: HistoryAction;
  readonly revision: number;
  readonly touched: readonly string[];
  readonly detail?: Readonly<Record<string, string>>;
}

/** The note a commit carries so the store writes its history entry with it. */
export function commitNote(by: Principal, action: HistoryAction): CommitNote {
  return { author: { tokenId: by.tokenId, name: by.name }, role: by.role, action };
}

export class History {
  private constructor(private readonly log: HistoryLog) {}

  /** A backend's history, a data dir's `history.jsonl`, or (nothing) one in memory. */
  static open(source: HistoryLog | string | undefined): Promise<Result<History>> {
    const log =
      typeof source === 'string'
        ? new FileHistory(join(source, 'history.jsonl'))
        : (source ?? new MemoryHistory());
    return Promise.resolve(ok(new History(log)));
  }

  /** Entries oldest first; `limit` keeps the newest. */
  async list(limit?: number): Promise<Result<readonly HistoryEntry[]>> {
    return (await this.log.list(limit)) as Result<readonly HistoryEntry[]>;
  }

  async record(by: Principal, what: HistoryRecord, now = new Date()): Promise<Result<HistoryEntry>> {
    const entry: HistoryEntry = {
      time: now.toISOString(),
      author: { tokenId: by.tokenId, name: by.name },
      role: by.role,
      action: what.action,
      revision: what.revision,
      touched: what.touched,
      ...(what.detail ? { detail: what.detail } : {}),
    };
    const appended = await this.log.append(entry);
    return appended.ok ? ok(entry) : appended;
  }
}
