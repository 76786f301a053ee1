// YAML text and manifest paths → raw documents that keep their source positions. Knows nothing of
// kinds or fields (that is schema.ts); it only turns bytes into YAML nodes, reporting syntax errors
// with file:line:col, and finds the manifest files under the paths it is given.
import { readdir, readFile, stat } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { isScalar, LineCounter, parseAllDocuments, type Document } from 'yaml';
import type { Problem, SourcePos } from '../errors.ts';

/** One YAML document of a file, with what is needed to place any of its nodes. */
export interface RawDocument {
  readonly file: string;
  readonly doc: Document.Parsed;
  readonly lines: LineCounter;
  /** Where the document's content starts (after any `---` and leading comments). */
  readonly pos: SourcePos;
}

export interface ParsedText {
  /** The documents free of YAML errors; empty documents (only comments, a stray `---`) are dropped. */
  readonly documents: readonly RawDocument[];
  readonly problems: readonly Problem[];
}

export function positionOf(file: string, lines: LineCounter, offset: number): SourcePos {
  const { line, col } = lines.linePos(offset);
  // linePos reports line 0 for offsets before the first newline is seen; positions are 1-based.
  return { file, line: Math.max(line, 1), col: Math.max(col, 1) };
}

/**
 * Splits multi-document YAML. A document with a syntax error is reported and left out, so that one
 * broken document neither hides the problems of the others nor produces noise of its own.
 */
export function parseYamlText(text: string, file: string): ParsedText {
  const lines = new LineCounter();
  // prettyErrors off: we place errors ourselves and keep messages to one line.
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false });
  const documents: RawDocument[] = [];
  const problems: Problem[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        problems.push({
          code: 'YAML_SYNTAX',
          message: `${e.message} (${e.code})`,
          pos: positionOf(file, lines, e.pos[0]),
        });
      }
      continue;
    }
    const contents = doc.contents;
    if (contents === null || (isScalar(contents) && contents.value === null)) continue;
    documents.push({ file, doc, lines, pos: positionOf(file, lines, contents.range?.[0] ?? doc.range[0]) });
  }
  return { documents, problems };
}

const MANIFEST_EXTENSIONS = new Set(['.yaml', '.yml']);

export interface ManifestFiles {
  readonly files: readonly string[];
  readonly problems: readonly Problem[];
}

/**
 * The manifest files under `paths`: a file is taken as named (whatever its extension); a directory
 * contributes every `*.yaml`/`*.yml` below it, recursively, in code-point order of path so loading
 * is deterministic. A file reached twice is read once.
 */
export async function findManifestFiles(paths: readonly string[]): Promise<ManifestFiles> {
  const files: string[] = [];
  const problems: Problem[] = [];
  const seen = new Set<string>();
  const add = (file: string): void => {
    const key = resolve(file);
    if (!seen.has(key)) {
      seen.add(key);
      files.push(file);
    }
  };
  for (const path of paths) {
    try {
      if ((await stat(path)).isDirectory()) {
        for (const file of (await listYamlFiles(path)).sort(byCodePoint)) add(file);
      } else {
        add(path);
      }
    } catch (e) {
      problems.push(ioProblem(path, e));
    }
  }
  return { files, problems };
}

async function listYamlFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await listYamlFiles(path)));
    else if (entry.isFile() && MANIFEST_EXTENSIONS.has(extname(entry.name).toLowerCase())) found.push(path);
  }
  return found;
}

const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Reads one manifest file; an unreadable file is a problem, not an exception. */
export async function readManifestFile(file: string): Promise<{ text: string } | { problem: Problem }> {
  try {
    return { text: await readFile(file, 'utf8') };
  } catch (e) {
    return { problem: ioProblem(file, e) };
  }
}

function ioProblem(path: string, e: unknown): Problem {
  const reason = e instanceof Error ? e.message : String(e);
  return { code: 'IO', message: `cannot read ${path}: ${reason}` };
}
