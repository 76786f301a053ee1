// The files an `apply`, `delete` or `diff` sends: each named file, a directory's own *.yaml/*.yml
// files (with -R, its subdirectories' too), or stdin for `-`. Each keeps its name, so the server
// reports problems at the file's own line:col. Nothing to send is an error, never a silent no-op.
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { ManifestSource } from '../manifest/load.ts';
import { CommandError } from './cli-support.ts';

export const STDIN_NAME = '<stdin>';
const YAML_EXTENSIONS = new Set(['.yaml', '.yml']);

const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

async function listDirectory(dir: string, recursive: boolean): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory() && recursive) found.push(...(await listDirectory(path, true)));
    else if (entry.isFile() && YAML_EXTENSIONS.has(extname(entry.name).toLowerCase())) found.push(path);
  }
  return found.sort(byCodePoint);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

function reason(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES') return 'permission denied';
  return code ?? (e as Error).message;
}

/** True when the text holds no document at all (empty, only comments or `---`). */
export function hasNoDocuments(text: string): boolean {
  return parseAllDocuments(text).every(
    (d) =>
      d.errors.length === 0 &&
      (d.contents === null ||
        (typeof d.contents === 'object' && 'value' in d.contents && d.contents.value === null)),
  );
}

/** The sources under `paths`; an unreadable path or one with no manifests is a CommandError. */
export async function readManifestSources(
  paths: readonly string[],
  recursive: boolean,
): Promise<ManifestSource[]> {
  const sources: ManifestSource[] = [];
  for (const path of paths) {
    if (path === '-') {
      const text = await readStdin();
      if (hasNoDocuments(text)) throw new CommandError(`no manifests in ${STDIN_NAME}`);
      sources.push({ name: STDIN_NAME, text });
      continue;
    }
    let files: string[];
    try {
      files = (await stat(path)).isDirectory() ? await listDirectory(path, recursive) : [path];
    } catch (e) {
      throw new CommandError(`cannot read ${path}: ${reason(e)}`);
    }
    const texts: ManifestSource[] = [];
    for (const file of files) {
      try {
        texts.push({ name: file, text: await readFile(file, 'utf8') });
      } catch (e) {
        throw new CommandError(`cannot read ${file}: ${reason(e)}`);
      }
    }
    if (texts.every((t) => hasNoDocuments(t.text))) {
      const hint =
        files.length === 0 && !recursive ? ' (no *.yaml or *.yml files; -R reads subdirectories too)' : '';
      throw new CommandError(`no manifests in ${path}${hint}`);
    }
    sources.push(...texts);
  }
  return sources;
}
