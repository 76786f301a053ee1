// Small files that must survive a crash whole: written to a temp file (mode 0600), fsynced,
// renamed over the old one, and the directory fsynced so the rename itself is durable.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fail, ok, type Result } from '../errors.ts';

export function writeFileDurably(file: string, contents: string, mode = 0o600): Result<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const fd = openSync(tmp, 'w', mode);
    try {
      writeFileSync(fd, contents);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, file);
    const dir = openSync(dirname(file), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
    return ok(undefined);
  } catch (e) {
    return fail([{ code: 'IO', resource: file, message: `cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})` }]);
  }
}
