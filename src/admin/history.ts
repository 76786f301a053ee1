// Who changed what: every mutating admin call (apply, delete, root rotation, token and join-token
// creation, token revocation, trust-domain migration) as one entry naming its author (token name and
// id), role, time, action, the revision it left and what it touched: manifest refs, token or
// join-token ids, never a secret. Appended to `<data-dir>/history.jsonl` (0600, fsynced per entry)
// and read back at start; in memory only without a data dir.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fail, ok, type Result } from '../errors.ts';
import { SerialWriter, appendLineDurably } from '../store/durable-file.ts';
import type { Principal, Role } from './tokens.ts';

export type HistoryAction =
  | 'apply'
  | 'delete'
  | 'rotate-root'
  | 'token-create'
  | 'token-revoke'
  | 'join-token-create'
  | 'trust-domain-migration';

export interface HistoryEntry {
  readonly time: string;
  readonly author: { readonly tokenId: string; readonly name: string };
  readonly role: Role;
  readonly action: HistoryAction;
  readonly revision: number;
  readonly touched: readonly string[];
  /** Extra, non-secret facts (the rotation phase, a join token's namespace/service). */
  readonly detail?: Readonly<Record<string, string>>;
}

export interface HistoryRecord {
  readonly action: HistoryAction;
  readonly revision: number;
  readonly touched: readonly string[];
  readonly detail?: Readonly<Record<string, string>>;
}

function isEntry(v: unknown): v is HistoryEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  const author = e.author as Record<string, unknown> | undefined;
  return (
    typeof e.time === 'string' &&
    typeof author?.tokenId === 'string' &&
    typeof author.name === 'string' &&
    typeof e.action === 'string' &&
    typeof e.revision === 'number' &&
    Array.isArray(e.touched)
  );
}

export class History {
  private readonly writer = new SerialWriter();

  private constructor(
    private readonly entries: HistoryEntry[],
    private readonly path: string | undefined,
  ) {}

  static async open(dataDir: string | undefined): Promise<Result<History>> {
    if (!dataDir) return ok(new History([], undefined));
    const path = join(dataDir, 'history.jsonl');
    let text = '';
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        return fail([
          { code: 'IO', resource: path, message: `cannot read the history: ${(e as Error).message}` },
        ]);
    }
    const entries: HistoryEntry[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const parsed: unknown = JSON.parse(line);
        if (isEntry(parsed)) entries.push(parsed);
      } catch {
        // A torn last line (a crash mid-append) is skipped; every fsynced entry before it is kept.
      }
    }
    return ok(new History(entries, path));
  }

  /** Entries oldest first; `limit` keeps the newest. */
  list(limit?: number): readonly HistoryEntry[] {
    return limit === undefined ? [...this.entries] : this.entries.slice(-limit);
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
    return this.writer.run(async () => {
      if (this.path) {
        try {
          await appendLineDurably(this.path, JSON.stringify(entry));
        } catch (e) {
          return fail([
            {
              code: 'IO',
              resource: this.path,
              message: `cannot append to the history: ${(e as Error).message}`,
            },
          ]);
        }
      }
      this.entries.push(entry);
      return ok(entry);
    });
  }
}
