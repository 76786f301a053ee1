// `clinimesh validate FILE|DIR…`: check manifests offline, printing every problem as file:line:col.
import { formatProblem } from '../errors.ts';
import { loadManifests } from '../manifest/index.ts';

export async function validateCommand(args: string[]): Promise<number> {
  if (args.length === 0) {
    console.error('clinimesh validate FILE|DIR…');
    return 2;
  }
  const result = await loadManifests(args);
  if (!result.ok) {
    for (const p of result.errors) console.error(formatProblem(p));
    console.error(`${result.errors.length} problem(s); nothing would be applied`);
    return 1;
  }
  console.log(`${result.value.length} manifest(s) valid`);
  return 0;
}
