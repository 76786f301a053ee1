// Commands that read a running control plane through its admin API as raw JSON or a history
// table: status, config-dump and history.
import {
  CONNECTION_OPTIONS,
  UsageError,
  callAdmin,
  credentialFor,
  parseCommandLine,
  table,
} from './cli-support.ts';

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

export async function remoteCommand(
  name: 'status' | 'config-dump' | 'history',
  args: string[],
): Promise<number> {
  const { values, positionals } = parseCommandLine(args, {
    ...CONNECTION_OPTIONS,
    node: { type: 'string' },
    limit: { type: 'string' },
    json: { type: 'boolean', default: false },
  });
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  if (values.node !== undefined && name !== 'config-dump')
    throw new UsageError('--node goes with config-dump');
  if ((values.limit !== undefined || values.json) && name !== 'history')
    throw new UsageError(`${values.json ? '--json' : '--limit'} goes with history`);
  if (values.limit !== undefined && !/^[1-9]\d*$/.test(values.limit))
    throw new UsageError(`--limit ${values.limit}: a positive whole number`);
  const cred = credentialFor(values);
  if (name === 'history') {
    const res = await callAdmin(
      cred,
      'GET',
      `/v1/history${values.limit === undefined ? '' : `?limit=${values.limit}`}`,
    );
    if (!res) return 1;
    const entries = (res.json as { entries: HistoryEntryJson[] }).entries;
    console.log(values.json ? JSON.stringify(entries, null, 2) : historyTable(entries));
    return 0;
  }
  const path =
    name === 'status'
      ? '/v1/status'
      : `/v1/config_dump${values.node ? `?node=${encodeURIComponent(values.node)}` : ''}`;
  const res = await callAdmin(cred, 'GET', path);
  if (!res) return 1;
  console.log(JSON.stringify(res.json, null, 2));
  return 0;
}
