// The audit trail a sidecar writes: one JSON object per line. A file not written yet reads as no lines.
import { readFile } from 'node:fs/promises';

/** The lines of `file`, each parsed as `T` (each test names the fields it reads). */
export async function readAuditLines<T>(file: string): Promise<T[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as T);
}
