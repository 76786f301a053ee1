// The file backend's change journal: one JSON line per commit (the manifests it wrote and the ids it
// removed), appended and fsynced before the commit is acknowledged. A crash mid-append leaves a torn
// last line: it was never acknowledged, so reading ignores it and cuts it off before the next append.
import { open, readFile, truncate } from 'node:fs/promises';
import { fail, ok, type Result } from '../errors.ts';
import { manifestId, type Manifest } from '../manifest/types.ts';

export interface JournalRecord {
  readonly revision: number;
  readonly upserts: readonly Manifest[];
  readonly removed: readonly string[];
}

export interface JournalRead {
  readonly records: readonly JournalRecord[];
  /** Bytes of whole lines; a torn tail beyond this is cut off. */
  readonly validBytes: number;
  readonly tornBytes: number;
}

function isRecord(v: unknown): v is JournalRecord {
  const r = v as Partial<JournalRecord> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    typeof r.revision === 'number' &&
    Array.isArray(r.upserts) &&
    Array.isArray(r.removed)
  );
}

/** Reads the journal (absent: empty). Only the last line may be torn; a bad line before it is corruption. */
export async function readJournal(path: string): Promise<Result<JournalRead>> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT')
      return ok({ records: [], validBytes: 0, tornBytes: 0 });
    return fail([
      { code: 'IO', resource: path, message: `cannot read the journal: ${(e as Error).message}` },
    ]);
  }
  const records: JournalRecord[] = [];
  let offset = 0;
  let line = 0;
  while (offset < buf.length) {
    const end = buf.indexOf(0x0a, offset);
    line++;
    // No newline: the append was cut short (its fsync never returned, so it was never acknowledged).
    if (end < 0) break;
    let parsed: unknown;
    try {
      parsed = JSON.parse(buf.subarray(offset, end).toString('utf8'));
    } catch {
      parsed = undefined;
    }
    if (!isRecord(parsed)) {
      // A bad last line (a write the disk garbled as it crashed) is torn too; anything after it is not.
      if (buf.indexOf(0x0a, end + 1) < 0) break;
      return fail([
        { code: 'IO', resource: `${path}:${line}`, message: 'a journal line before the last one is corrupt' },
      ]);
    }
    records.push(parsed);
    offset = end + 1;
  }
  return ok({ records, validBytes: offset, tornBytes: buf.length - offset });
}

/** Cuts a torn tail off, so the next append starts on a line of its own. */
export async function cutTornTail(path: string, validBytes: number): Promise<Result<void>> {
  try {
    await truncate(path, validBytes);
    const fh = await open(path, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    return ok(undefined);
  } catch (e) {
    return fail([
      { code: 'IO', resource: path, message: `cannot cut the torn journal tail: ${(e as Error).message}` },
    ]);
  }
}

/** Applies journal records after `revision` to `manifests` (by id); a gap in revisions is corruption. */
export function replay(
  path: string,
  revision: number,
  manifests: Map<string, Manifest>,
  records: readonly JournalRecord[],
): Result<number> {
  let at = revision;
  for (const r of records) {
    if (r.revision <= at) continue; // already in the snapshot (a crash between snapshot and reset)
    if (r.revision !== at + 1)
      return fail([
        { code: 'IO', resource: path, message: `the journal jumps from revision ${at} to ${r.revision}` },
      ]);
    for (const id of r.removed) manifests.delete(id);
    for (const m of r.upserts) manifests.set(manifestId(m), m);
    at = r.revision;
  }
  return ok(at);
}
