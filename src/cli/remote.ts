// Commands that read and change a running control plane through its admin API: apply, delete,
// status, config-dump and history.
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CONNECTION_OPTIONS, UsageError, callAdmin, credentialFor, table } from './cli-support.ts';

const APPLY_USAGE = (name: string) => `clinimesh ${name} -f FILE|DIR… [--dry-run] [--admin URL] [--credential FILE]`;

async function yamlFiles(path: string): Promise<string[]> {
  if (!(await stat(path)).isDirectory()) return [path];
  const entries = (await readdir(path)).sort();
  const nested = await Promise.all(entries.map((e) => yamlFiles(join(path, e))));
  return nested.flat().filter((f) => /\.ya?ml$/.test(f));
}

interface HistoryEntryJson {
  time: string;
  author: { name: string; tokenId: string };
  action: string;
  revision: number;
  touched: string[];
  detail?: Record<string, string>;
}

function historyTable(entries: readonly HistoryEntryJson[]): string {
  const rows = entries.map((e) => [
    e.time,
    `${e.author.name} (${e.author.tokenId})`,
    e.action + (e.detail?.phase ? ` ${e.detail.phase}` : ''),
    String(e.revision),
    e.touched.join(', '),
  ]);
  return table(['TIME', 'AUTHOR', 'ACTION', 'REVISION', 'TOUCHED'], rows);
}

export async function remoteCommand(name: string, args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      ...CONNECTION_OPTIONS,
      filename: { type: 'string', short: 'f', multiple: true },
      'dry-run': { type: 'boolean', default: false },
      node: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  if (name === 'apply' || name === 'delete') {
    const paths = values.filename ?? positionals;
    if (paths.length === 0) throw new UsageError(APPLY_USAGE(name));
    const files = (await Promise.all(paths.map(yamlFiles))).flat();
    if (files.length === 0) throw new UsageError(APPLY_USAGE(name), `no .yaml files in ${paths.join(', ')}`);
    const cred = credentialFor(values);
    // One request for all files, so the whole set is applied atomically or not at all.
    const texts = await Promise.all(files.map(async (f) => `# file: ${f}\n${await readFile(f, 'utf8')}`));
    const query = `?dryRun=${values['dry-run']}&file=${encodeURIComponent(files.length === 1 ? files[0]! : '<files>')}`;
    const res = await callAdmin(cred, 'POST', `/v1/${name}${query}`, { text: texts.join('\n---\n'), type: 'application/yaml' });
    if (!res) return 1;
    console.log(JSON.stringify(res.json, null, 2));
    return 0;
  }
  const cred = credentialFor(values);
  if (name === 'history') {
    const limit = values.limit === undefined ? '' : `?limit=${encodeURIComponent(values.limit)}`;
    const res = await callAdmin(cred, 'GET', `/v1/history${limit}`);
    if (!res) return 1;
    const entries = (res.json as { entries: HistoryEntryJson[] }).entries;
    console.log(values.json ? JSON.stringify(entries, null, 2) : historyTable(entries));
    return 0;
  }
  const path = name === 'status' ? '/v1/status' : `/v1/config_dump${values.node ? `?node=${encodeURIComponent(values.node)}` : ''}`;
  const res = await callAdmin(cred, 'GET', path);
  if (!res) return 1;
  console.log(JSON.stringify(res.json, null, 2));
  return 0;
}
