// `clinimesh version`: this client's build and, unless --client, the server's (GET /v1/version).
import { buildInfo, type BuildInfo } from '../admin/version-routes.ts';
import { CONNECTION_OPTIONS, UsageError, callAdmin, credentialFor, parseCommandLine } from './cli-support.ts';
import { outputOption } from './get.ts';

const line = (who: string, b: BuildInfo & { revision?: number }): string =>
  `${who}: clinimesh ${b.version}${b.commit ? ` (commit ${b.commit})` : ''}, Node.js ${b.node}${b.revision === undefined ? '' : `, revision ${b.revision}`}`;

export async function versionCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(args, {
    ...CONNECTION_OPTIONS,
    client: { type: 'boolean', default: false },
    output: { type: 'string', short: 'o' },
  });
  const output = outputOption(values.output, ['table', 'json']);
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const client = buildInfo();
  if (values.client) {
    console.log(output === 'json' ? JSON.stringify({ client }, null, 2) : line('Client', client));
    return 0;
  }
  if (output !== 'json') console.log(line('Client', client));
  const res = await callAdmin(credentialFor(values), 'GET', '/v1/version');
  if (!res) return 1;
  const server = res.json as BuildInfo & { revision: number };
  console.log(output === 'json' ? JSON.stringify({ client, server }, null, 2) : line('Server', server));
  return 0;
}
