// `clinimesh diff -f FILES`: what `apply` of these files would change, each added or changed
// document as a unified diff of its YAML against the one in force. As kubectl diff: exit 0 when
// nothing would change, 1 when something would, 2 on any error (bad files, an unreachable API).
import { formatProblem } from '../errors.ts';
import { parseManifestSources } from '../manifest/load.ts';
import { manifestId } from '../manifest/types.ts';
import { CONNECTION_OPTIONS, UsageError, credentialFor, parseCommandLine } from './cli-support.ts';
import { fetchManifests } from './get.ts';
import { toYaml } from './manifest-document.ts';
import { readManifestSources } from './manifest-sources.ts';
import { unifiedDiff } from './unified-diff.ts';

/** The exit code of a diff that could not be made (kubectl: "greater than 1"). */
export const DIFF_ERROR = 2;

export async function diffCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(args, {
    ...CONNECTION_OPTIONS,
    filename: { type: 'string', short: 'f', multiple: true },
    recursive: { type: 'boolean', short: 'R', default: false },
  });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}": name files with -f`);
  if (!values.filename?.length) throw new UsageError('name the manifests to compare with -f FILE|DIR|-');
  const parsed = parseManifestSources(await readManifestSources(values.filename, values.recursive));
  if (!parsed.ok) {
    for (const p of parsed.errors) console.error(formatProblem(p));
    return DIFF_ERROR;
  }
  const live = new Map((await fetchManifests(credentialFor(values))).map((m) => [manifestId(m), m]));
  let added = 0;
  let changed = 0;
  for (const m of parsed.value) {
    const id = manifestId(m);
    const before = live.get(id);
    const text = unifiedDiff(
      before ? `live/${id}` : '/dev/null',
      `local/${id} (${m.origin.file})`,
      before ? toYaml(before) : '',
      toYaml(m),
    );
    if (!text) continue;
    if (before) changed++;
    else added++;
    console.log(text);
  }
  const same = parsed.value.length - added - changed;
  console.error(`${added} added, ${changed} changed, ${same} unchanged (apply never removes documents)`);
  return added + changed > 0 ? 1 : 0;
}
