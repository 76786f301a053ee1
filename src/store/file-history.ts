// The file backend's history: `history.jsonl`, one entry per line (0600, fsynced per entry), read
// back whole; a torn last line (a crash mid-append) is skipped, every fsynced entry before it kept.
import { readFile } from 'node:fs/promises';
import { fail, ok, type Result } from '../errors.ts';
import type { HistoryEntry, HistoryLog } from './backend.ts';
import { SerialWriter, appendLineDurably } from './durable-file.ts';

export function isHistoryEntry(v: unknown): v is HistoryEntry {
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

export class FileHistory implements HistoryLog {
  private readonly writer = new SerialWriter();
  private entries: HistoryEntry[] | undefined;

  constructor(readonly path: string) {}

  async list(limit?: number): Promise<Result<readonly HistoryEntry[]>> {
    const loaded = await this.loaded();
    if (!loaded.ok) return loaded;
    return ok(limit === undefined ? [...loaded.value] : loaded.value.slice(-limit));
  }

  append(entry: HistoryEntry): Promise<Result<void>> {
    return this.writer.run(async () => {
      const loaded = await this.loaded();
      if (!loaded.ok) return loaded;
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
      loaded.value.push(entry);
      return ok(undefined);
    });
  }

  private async loaded(): Promise<Result<HistoryEntry[]>> {
    if (this.entries) return ok(this.entries);
    let text = '';
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        return fail([
          { code: 'IO', resource: this.path, message: `cannot read the history: ${(e as Error).message}` },
        ]);
    }
    const entries: HistoryEntry[] = [];
    for (const line of text.split('\n')) {
      if (!line.trim()) continue;
      try {
        const parsed: unknown = JSON.parse(line);
        if (isHistoryEntry(parsed)) entries.push(parsed);
      } catch {
        // A torn last line is skipped.
      }
    }
    this.entries = entries;
    return ok(entries);
  }
}
