// The embedded persistence: one JSON file, replaced atomically (write, fsync, rename, fsync the
// directory), mode 0600.
// A crash mid-write leaves the previous state, never half of the new one.
import { mkdir, open, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { fail, ok, type Result } from '../errors.ts';
import type { Manifest } from '../manifest/types.ts';

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
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      await mkdir(this.dir, { recursive: true, mode: 0o700 });
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(JSON.stringify(state, null, 2));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.path);
      await syncDir(this.dir); // the rename itself survives a crash only once the directory is synced
      return ok(undefined);
    } catch (e) {
      return fail([{ code: 'IO', resource: this.path, message: (e as Error).message }]);
    }
  }
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
