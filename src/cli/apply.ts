// `clinimesh apply` and `clinimesh delete`: send manifest files (each under its own name, so
// problems point at the file's exact line:col) or one KIND NS/NAME to the admin API, print what
// changed and the revision, and with --wait wait for the affected sidecars to ACK or NACK.
import {
  CONNECTION_OPTIONS,
  UsageError,
  callAdmin,
  credentialFor,
  jsonBody,
  parseCommandLine,
  parseDuration,
} from './cli-support.ts';
import type { OperatorCredential } from './credential.ts';
import { parseKind, parseName } from './kinds.ts';
import { readManifestSources } from './manifest-sources.ts';
import { fetchProxyStatus, servedVersions, waitForSidecars, type ServedVersions } from './wait.ts';

const OPTIONS = {
  ...CONNECTION_OPTIONS,
  filename: { type: 'string', short: 'f', multiple: true },
  recursive: { type: 'boolean', short: 'R', default: false },
  namespace: { type: 'string', short: 'n' },
  'dry-run': { type: 'boolean', default: false },
  wait: { type: 'boolean', default: false },
  timeout: { type: 'string' },
} as const;

interface ApplyOutcome {
  readonly revision: number;
  readonly changed: boolean;
  readonly touched: readonly string[];
  readonly sidecars: number;
}

function timeoutMs(text: string | undefined, wait: boolean): number {
  if (text === undefined) return 30_000;
  if (!wait) throw new UsageError('--timeout goes with --wait');
  const seconds = parseDuration(text);
  if (seconds === undefined) throw new UsageError(`--timeout ${text}: write a duration such as 30s or 2m`);
  return seconds * 1000;
}

/** The request: files for `-f`, or one manifest by kind and name for `delete KIND NS/NAME`. */
async function request(
  action: 'apply' | 'delete',
  values: { filename?: string[]; recursive: boolean; namespace?: string },
  positionals: string[],
) {
  const files = values.filename ?? [];
  if (files.length && positionals.length)
    throw new UsageError(
      `unexpected argument "${positionals[0]}": name manifests either with -f or as KIND NS/NAME`,
    );
  if (files.length)
    return {
      path: `/v1/${action}`,
      body: jsonBody({ files: await readManifestSources(files, values.recursive) }),
    };
  if (action === 'apply')
    throw new UsageError(
      positionals.length
        ? `unexpected argument "${positionals[0]}": name files with -f`
        : 'name the manifests to apply with -f FILE|DIR|-',
    );
  if (positionals.length === 0) throw new UsageError('name what to delete: KIND NS/NAME, or -f FILE|DIR|-');
  if (positionals.length !== 2)
    throw new UsageError(
      positionals.length === 1
        ? `delete ${positionals[0]} needs a name: KIND NS/NAME`
        : `unexpected argument "${positionals[2]}"`,
    );
  const kind = parseKind(positionals[0]);
  const ref = parseName(kind, positionals[1]!, values.namespace);
  if (kind !== 'Mesh' && !ref.namespace)
    throw new UsageError(`name the namespace: ${positionals[0]} NS/${ref.name} or -n NS`);
  return {
    path: `/v1/manifests/${kind}/${ref.namespace ? `${ref.namespace}/` : ''}${ref.name}`,
    method: 'DELETE',
  };
}

function report(action: 'apply' | 'delete', o: ApplyOutcome, dryRun: boolean): void {
  const verb = dryRun
    ? `would be ${action === 'apply' ? 'applied' : 'deleted'}`
    : action === 'apply'
      ? 'applied'
      : 'deleted';
  for (const id of o.touched) console.log(`${id} ${verb}`);
  if (!o.changed) console.log(`no change; revision ${o.revision}`);
  else console.log(`${dryRun ? 'dry run: would be revision' : 'revision'} ${o.revision}`);
}

async function wait(cred: OperatorCredential, before: ServedVersions, ms: number): Promise<number> {
  const outcome = await waitForSidecars(cred, before, ms);
  if (!outcome.ok) {
    for (const line of outcome.lines) console.error(line);
    return 1;
  }
  console.log(
    outcome.sidecars
      ? `${outcome.sidecars} sidecar(s) ACKed the new config`
      : 'no connected sidecar is affected',
  );
  return 0;
}

export async function applyCommand(action: 'apply' | 'delete', args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(args, OPTIONS);
  const ms = timeoutMs(values.timeout, values.wait);
  if (values.wait && values['dry-run'])
    throw new UsageError('--wait and --dry-run do not go together: a dry run changes nothing');
  const req = await request(action, values, positionals);
  const cred = credentialFor(values);
  const before = values.wait ? servedVersions(await fetchProxyStatus(cred)) : undefined;
  const dryRun = values['dry-run'];
  const res =
    'method' in req
      ? await callAdmin(cred, 'DELETE', dryRun ? `${req.path}?dryRun=true` : req.path)
      : await callAdmin(cred, 'POST', `${req.path}?dryRun=${dryRun}`, req.body);
  if (!res) return 1;
  const outcome = res.json as ApplyOutcome;
  report(action, outcome, dryRun);
  if (dryRun) return 0;
  if (!before) {
    if (outcome.changed) console.log('not waiting for sidecars to ACK (use --wait)');
    return 0;
  }
  return wait(cred, before, ms);
}
