// `clinimesh validate FILE|DIR…`: check manifests offline, printing every problem as file:line:col.
// A path with no manifest at all (an empty file, a directory without YAML) is an error: a typo in a
// path must not pass as "valid".
import { formatProblem } from '../errors.ts';
import { checkManifestSet, loadManifests } from '../manifest/index.ts';
import { findManifestFiles, readManifestFile } from '../manifest/parse.ts';
import { CommandError, UsageError, parseCommandLine } from './cli-support.ts';
import { hasNoDocuments } from './manifest-sources.ts';

async function requireManifests(path: string): Promise<void> {
  const { files, problems } = await findManifestFiles([path]);
  if (problems.length) return; // reported by loadManifests, with everything else
  const texts = await Promise.all(files.map(readManifestFile));
  if (texts.every((t) => 'text' in t && hasNoDocuments(t.text)))
    throw new CommandError(`no manifests in ${path}`);
}

export async function validateCommand(args: string[]): Promise<number> {
  const { positionals } = parseCommandLine(args, {});
  if (positionals.length === 0) throw new UsageError('name the files or directories to validate');
  for (const path of positionals) await requireManifests(path);
  const result = await loadManifests(positionals);
  const problems = result.ok ? checkManifestSet(result.value) : result.errors;
  if (!result.ok || problems.length) {
    for (const p of problems) console.error(formatProblem(p));
    if (problems.length > 1) console.error(`${problems.length} problems; nothing would be applied`);
    return 1;
  }
  console.log(`${result.value.length} manifest(s) valid`);
  return 0;
}
