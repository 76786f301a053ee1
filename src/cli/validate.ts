// `clinimesh validate FILE|DIR…`: check manifests offline, printing every problem as file:line:col.
import { formatProblem } from '../errors.ts';
import { checkManifestSet, loadManifests } from '../manifest/index.ts';

export async function validateCommand(args: string[]): Promise<number> {
  if (args.length === 0) {
    console.error('clinimesh validate FILE|DIR…');
    return 2;
  }
  const result = await loadManifests(args);
  const problems = result.ok ? checkManifestSet(result.value) : result.errors;
  if (!result.ok || problems.length) {
    for (const p of problems) console.error(formatProblem(p));
    console.error(`${problems.length} problem(s); nothing would be applied`);
    return 1;
  }
  console.log(`${result.value.length} manifest(s) valid`);
  return 0;
}
