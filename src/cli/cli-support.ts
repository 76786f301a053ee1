// What the commands share: the connection options, the credential, one call that turns an error
// answer into printed lines, usage errors (exit 2), argument parsing that raises them, and small
// formatting helpers.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { formatProblem } from '../errors.ts';
import { adminCall, errorLines, type AdminResponse } from './admin-client.ts';
import { resolveCredential, type OperatorCredential } from './credential.ts';

export const CONNECTION_OPTIONS = {
  admin: { type: 'string' },
  credential: { type: 'string' },
} as const;

/** A command line that cannot be run as written: one line, then the command's usage; exit 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A failure to report as one line, exit 1 (a missing file, an unreachable API). */
export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

/** A failure whose lines were already printed (the admin API's problems): exit 1, print nothing more. */
export class AlreadyReported extends Error {
  constructor() {
    super('already reported');
    this.name = 'AlreadyReported';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** node:util parseArgs, its errors turned into one-line usage errors (`unknown option '--x'`). */
export function parseCommandLine<O extends Options>(args: string[], options: O, allowPositionals = true) {
  try {
    return parseArgs({ args, options, allowPositionals, strict: true });
  } catch (e) {
    const message = (e as Error).message
      .split('\n')[0]!
      .split(/\. (?=To specify)/)[0]!
      .replace(/\.$/, '');
    throw new UsageError(message.charAt(0).toLowerCase() + message.slice(1));
  }
}

/** A port number 0-65535 from a flag, or a usage error naming the flag. */
export function portOption(flag: string, text: string): number {
  const n = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 0 && n <= 65535)) throw new UsageError(`--${flag} ${text}: a port is a number from 0 to 65535`);
  return n;
}

/** The operator credential, or a CommandError whose message is the one line to print. */
export function credentialFor(values: { admin?: string; credential?: string }): OperatorCredential {
  const found = resolveCredential(values);
  if (!found.ok) throw new CommandError(found.errors.map(formatProblem).join('; '));
  return found.value;
}

/** Calls the admin API; an error answer is printed (one line per problem) and yields undefined. */
export async function callAdmin(
  cred: OperatorCredential,
  method: string,
  path: string,
  body?: { text: string; type: string },
): Promise<AdminResponse | undefined> {
  const res = await adminCall(cred, method, path, body);
  if (res.status >= 200 && res.status < 300) return res;
  const lines = errorLines(res);
  // A refused token names where it came from, on the same line.
  if (res.status === 401) lines[lines.length - 1] += ` (credential from ${cred.source})`;
  for (const line of lines) console.error(line);
  return undefined;
}

export function jsonBody(value: unknown): { text: string; type: string } {
  return { text: JSON.stringify(value), type: 'application/json' };
}

/** `90s`, `15m`, `24h`, `7d`, `1h30m` → seconds. */
export function parseDuration(text: string): number | undefined {
  const parts = [...text.matchAll(/(\d+)([smhd])/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text) return undefined;
  const unit: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };
  const seconds = parts.reduce((sum, p) => sum + Number(p[1]) * unit[p[2]!]!, 0);
  return seconds > 0 ? seconds : undefined;
}

/** A plain text table: a header row and left-aligned columns two spaces apart. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}
