// `clinimesh proxy-status`: every connected sidecar's sync state per xDS type, as a table (the
// NACKs' Envoy error text below it), or JSON.
import { CONNECTION_OPTIONS, UsageError, credentialFor, parseCommandLine, table } from './cli-support.ts';
import { outputOption } from './get.ts';
import { fetchProxyStatus, type SidecarSync } from './wait.ts';

const TYPES = ['CDS', 'EDS', 'LDS', 'RDS', 'SDS'] as const;

export function formatAge(seconds: number): string {
  if (seconds < 120) return `${seconds}s`;
  if (seconds < 7200) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 172_800) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

export function proxyStatusTable(sidecars: readonly SidecarSync[]): string {
  const rows = sidecars.map((s) => [
    s.node,
    ...TYPES.map((t) => s.types[t]?.state ?? 'NOT SENT'),
    formatAge(s.ageSeconds),
  ]);
  const nacks = sidecars.flatMap((s) =>
    TYPES.flatMap((t) =>
      s.types[t]?.nack
        ? [`${s.node} ${t} NACKED version ${s.types[t]!.nack!.version}: ${s.types[t]!.nack!.error}`]
        : [],
    ),
  );
  return [table(['NODE', ...TYPES, 'AGE'], rows), ...(nacks.length ? ['', ...nacks] : [])].join('\n');
}

export async function proxyStatusCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseCommandLine(args, {
    ...CONNECTION_OPTIONS,
    output: { type: 'string', short: 'o' },
  });
  const output = outputOption(values.output, ['table', 'json']);
  if (positionals.length) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const sidecars = await fetchProxyStatus(credentialFor(values));
  if (output === 'json') console.log(JSON.stringify(sidecars, null, 2));
  else if (sidecars.length === 0) console.error('no sidecar is connected');
  else console.log(proxyStatusTable(sidecars));
  return 0;
}
