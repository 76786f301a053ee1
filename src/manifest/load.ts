// The front of the manifest module: YAML text or files in, validated manifests (or every problem
// found) out. Per-document schema checks and document identity (duplicates, one Mesh) happen here;
// references and bindings need the whole desired state, so callers run checkManifestSet on it.
import { fail, ok, type Problem, type Result } from '../errors.ts';
import { checkDocumentIdentity } from './check-identity.ts';
import { findManifestFiles, parseYamlText, readManifestFile } from './parse.ts';
import { validateDocument } from './schema.ts';
import type { Manifest } from './types.ts';

interface Collected {
  readonly manifests: Manifest[];
  readonly problems: Problem[];
}

function collectText(text: string, file: string, into: Collected): void {
  const parsed = parseYamlText(text, file);
  const found: Problem[] = [...parsed.problems];
  for (const raw of parsed.documents) {
    const { manifest, problems } = validateDocument(raw);
    if (manifest) into.manifests.push(manifest);
    found.push(...problems);
  }
  into.problems.push(...found.sort(byPosition));
}

const byPosition = (a: Problem, b: Problem): number =>
  (a.pos?.line ?? 0) - (b.pos?.line ?? 0) || (a.pos?.col ?? 0) - (b.pos?.col ?? 0);

function finish(c: Collected): Result<Manifest[]> {
  const problems = [...c.problems, ...checkDocumentIdentity(c.manifests)];
  return problems.length > 0 ? fail(problems) : ok(c.manifests);
}

/** Every document of a (multi-document) YAML text; `file` names it in positions. */
export function parseManifestText(text: string, file: string): Result<Manifest[]> {
  const c: Collected = { manifests: [], problems: [] };
  collectText(text, file, c);
  return finish(c);
}

/** One file's text as sent by a client (the CLI sends each file apart, so positions stay exact). */
export interface ManifestSource {
  readonly name: string;
  readonly text: string;
}

/**
 * The manifests of several files, each parsed under its own name (positions and origins name the
 * real file and line), with duplicates across files found as in `loadManifests`.
 */
export function parseManifestSources(sources: readonly ManifestSource[]): Result<Manifest[]> {
  const c: Collected = { manifests: [], problems: [] };
  for (const s of sources) collectText(s.text, s.name, c);
  return finish(c);
}

/**
 * Every manifest under `paths` (files, and `*.yaml`/`*.yml` in directories, recursively, sorted),
 * with the problems of all files reported together.
 */
export async function loadManifests(paths: readonly string[]): Promise<Result<Manifest[]>> {
  const { files, problems } = await findManifestFiles(paths);
  const c: Collected = { manifests: [], problems: [...problems] };
  const texts = await Promise.all(files.map(async (file) => ({ file, read: await readManifestFile(file) })));
  for (const { file, read } of texts) {
    if ('problem' in read) c.problems.push(read.problem);
    else collectText(read.text, file, c);
  }
  return finish(c);
}
