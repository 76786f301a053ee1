// What the remote commands share: the connection options, the credential, one call that turns an
// error answer into printed lines, usage errors (exit 2) and small formatting helpers.
import { formatProblem } from '../errors.ts';
import { adminCall, errorLines, type AdminResponse } from './admin-client.ts';
import { resolveCredential, type OperatorCredential } from './credential.ts';

export const CONNECTION_OPTIONS = {
  admin: { type: 'string' },
  credential: { type: 'string' },
} as const;

/** A command line that cannot be run as written: printed with its usage, exit 2. */
export class UsageError extends Error {
  constructor(readonly usage: string, message?: string) {
    super(message ?? usage);
    this.name = 'UsageError';
  }
}

/** The operator credential, or an Error whose message is the one line to print. */
export function credentialFor(values: { admin?: string; credential?: string }): OperatorCredential {
  const found = resolveCredential(values);
  if (!found.ok) throw new Error(found.errors.map(formatProblem).join('; '));
  return found.value;
}

/** Calls the admin API; an error answer is printed (one line per problem) and yields undefined. */
export async function callAdmin(cred: OperatorCredential, method: string, path: string, body?: { text: string; type: string }): Promise<AdminResponse | undefined> {
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
  const line = (cells: readonly string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}
