// Small files that must survive a crash whole (state, tokens, the credential, history, join
// tokens): a file is replaced by writing a temporary file (mode 0600), fsyncing it, renaming it over
// the old one and fsyncing the directory, so a crash leaves the old or the new content, never half.
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeFileSync } from 'node:fs';
import { mkdir, open, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fail, ok, type Result } from '../errors.ts';

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export async function writeFileDurably(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  const fh = await open(tmp, 'w', 0o600);
  try {
    await fh.writeFile(text);
    await fh.chmod(0o600);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  await fsyncDir(dirname(path));
}

/** Appends one line and fsyncs it before returning. */
export async function appendLineDurably(path: string, line: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const fh = await open(path, 'a', 0o600);
  try {
    await fh.appendFile(`${line}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** One writer at a time per file: later writes wait for earlier ones, so the last one wins on disk. */
export class SerialWriter {
  private queue: Promise<unknown> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const next = this.queue.then(task, task);
    this.queue = next.catch(() => undefined);
    return next;
  }
}

/** The same, synchronously, for a caller that must not yield between deciding and recording (join tokens). */
export function writeFileDurablySync(file: string, contents: string): Result<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const fd = openSync(tmp, 'w', 0o600);
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
    return fail([
      {
        code: 'IO',
        resource: file,
        message: `cannot write (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`,
      },
    ]);
  }
}
