// The embedded persistence: one JSON file, replaced atomically (write, fsync, rename, fsync the
// directory), mode 0600.
// A crash mid-write leaves the previous state, never half of the new one.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fail, ok, type Result } from '../errors.ts';
import type { Manifest } from '../manifest/types.ts';
import { writeFileDurably } from './durable-file.ts';

export interface PersistedState {
  readonly revision: number;
  readonly manifests: readonly Manifest[];
}

export class FileStore {
  readonly path: string;

  constructor(readonly dir: string) {
    this.path = join(dir, 'state.json');
  }

  async load(): Promise<Result<PersistedState | undefined>> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return ok(undefined);
      return fail([{ code: 'IO', resource: this.path, message: (e as Error).message }]);
    }
    try {
      return ok(JSON.parse(text) as PersistedState);
    } catch (e) {
      return fail([
        { code: 'IO', resource: this.path, message: `corrupt state file: ${(e as Error).message}` },
      ]);
    }
  }

  async save(state: PersistedState): Promise<Result<void>> {
    try {
      await writeFileDurably(this.path, JSON.stringify(state, null, 2));
      return ok(undefined);
    } catch (e) {
      return fail([{ code: 'IO', resource: this.path, message: (e as Error).message }]);
    }
  }
}
