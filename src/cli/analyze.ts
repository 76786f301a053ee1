// `clinimesh analyze`: the clinical rules of src/analyze over manifest files (-f, offline) or over
// the state in force (no -f: GET /v1/manifests through the admin API). Exit 1 when a finding is at
// least as severe as --fail-on (default error), so it can gate a pipeline; 2 on a usage error.
import { parseArgs } from 'node:util';
import {
  analyzeInvalid,
  analyzeManifests,
  atLeast,
  findingJson,
  formatFinding,
  SEVERITIES,
  summaryLine,
  countBySeverity,
  type Finding,
  type Severity,
} from '../analyze/index.ts';
import { parseManifestSources } from '../manifest/load.ts';
import type { Manifest } from '../manifest/types.ts';
import { CONNECTION_OPTIONS, callAdmin, credentialFor } from './cli-support.ts';
import { readManifestSources } from './manifest-sources.ts';

export const ANALYZE_USAGE = `Usage: clinimesh analyze [-f FILE|DIR|- …] [-R] [-o text|json] [--fail-on error|warning|info] [--admin URL] [--credential FILE]
Checks manifests against clinical rules: offline on the files given, or, without -f, the state in
force on the control plane. Each finding: file:line:col: severity CODE resource: message (fix: …).
Exit 1 when a finding is at least as severe as --fail-on (default error), else 0; 2 on a usage error.`;

const OUTPUTS = ['text', 'json'] as const;
type Output = (typeof OUTPUTS)[number];

interface Options {
  readonly paths: readonly string[];
  readonly recursive: boolean;
  readonly output: Output;
  readonly failOn: Severity;
  readonly connection: { admin?: string; credential?: string };
}

class AnalyzeUsageError extends Error {}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new AnalyzeUsageError(`${flag} ${value}: expected one of ${allowed.join(', ')}`);
}

/** The command line as options, or undefined when help was asked for. */
function parseOptions(args: string[]): Options | undefined {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: {
        ...CONNECTION_OPTIONS,
        filename: { type: 'string', short: 'f', multiple: true },
        recursive: { type: 'boolean', short: 'R', default: false },
        output: { type: 'string', short: 'o', default: 'text' },
        'fail-on': { type: 'string', default: 'error' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    throw new AnalyzeUsageError((e as Error).message.split('\n')[0]!);
  }
  const { values, positionals } = parsed;
  if (values.help) return undefined;
  // `-f a b c`: the paths after the first come as positionals.
  const paths = [...(values.filename ?? []), ...positionals];
  if (positionals.length > 0 && values.filename === undefined)
    throw new AnalyzeUsageError(`unexpected argument ${positionals[0]!}; name files with -f`);
  return {
    paths,
    recursive: values.recursive,
    output: oneOf('-o', values.output, OUTPUTS),
    failOn: oneOf('--fail-on', values['fail-on'], SEVERITIES),
    connection: { admin: values.admin, credential: values.credential },
  };
}

async function analyzeFiles(o: Options): Promise<Finding[]> {
  const sources = await readManifestSources(o.paths, o.recursive);
  const loaded = parseManifestSources(sources);
  return loaded.ok ? analyzeManifests({ manifests: loaded.value }) : analyzeInvalid(loaded.errors);
}

/**
 * The server sends only manifests it validated; this only makes sure the answer is a list of them.
 * Kinds are not checked against a list here, so a kind added later is never refused by this client.
 */
function manifestsOf(json: unknown): Manifest[] {
  const list = (json as { manifests?: unknown } | undefined)?.manifests;
  const looksRight = (m: unknown): boolean => {
    const r = m as { kind?: unknown; name?: unknown; origin?: { file?: unknown } } | null;
    return (
      typeof r === 'object' &&
      r !== null &&
      typeof r.kind === 'string' &&
      typeof r.name === 'string' &&
      typeof r.origin?.file === 'string'
    );
  };
  if (!Array.isArray(list) || !list.every(looksRight))
    throw new Error(
      'the admin API answered GET /v1/manifests with something that is not a list of manifests',
    );
  return list as Manifest[];
}

/** The findings, or undefined when the admin API refused (its lines are already printed). */
async function analyzeServer(o: Options): Promise<Finding[] | undefined> {
  const res = await callAdmin(credentialFor(o.connection), 'GET', '/v1/manifests');
  return res && analyzeManifests({ manifests: manifestsOf(res.json) });
}

function report(findings: readonly Finding[], o: Options, source: 'files' | 'server'): void {
  if (o.output === 'json') {
    const summary = countBySeverity(findings);
    console.log(JSON.stringify({ source, findings: findings.map(findingJson), summary }, null, 2));
    return;
  }
  for (const f of findings) console.log(formatFinding(f));
  console.error(`${summaryLine(findings)} (${source === 'files' ? 'files' : 'state in force'})`);
}

export async function analyzeCommand(args: string[]): Promise<number> {
  let o: Options | undefined;
  try {
    o = parseOptions(args);
  } catch (e) {
    console.error(`clinimesh analyze: ${(e as Error).message}`);
    console.error(ANALYZE_USAGE);
    return 2;
  }
  if (o === undefined) {
    console.log(ANALYZE_USAGE);
    return 0;
  }
  try {
    const source = o.paths.length > 0 ? 'files' : 'server';
    const findings = source === 'files' ? await analyzeFiles(o) : await analyzeServer(o);
    if (findings === undefined) return 1;
    report(findings, o, source);
    const threshold = o.failOn;
    return findings.some((f) => atLeast(f.severity, threshold)) ? 1 : 0;
  } catch (e) {
    console.error(`clinimesh analyze: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
    return 1;
  }
}
