// Which admin API to call and with what: the operator's credential, looked up in order
//   --credential FILE, $CLINIMESH_CREDENTIAL (a file), $CLINIMESH_TOKEN (+ $CLINIMESH_ADMIN URL,
//   + $CLINIMESH_CA_FILE), ./.clinimesh/admin-credential.json (the quick start's data dir);
// --admin URL overrides the server of whichever was found.
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fail, ok, type Result } from '../errors.ts';

export const DEFAULT_ADMIN = 'https://127.0.0.1:19000';
export const QUICK_START_CREDENTIAL = '.clinimesh/admin-credential.json';

export interface OperatorCredential {
  readonly server: string;
  readonly token: string;
  /** The CA bundle to trust for the admin API; undefined: the system's CAs and a hostname check. */
  readonly caPem?: string;
  /** Where it came from, for error messages. */
  readonly source: string;
}

function readText(path: string, what: string): Result<string> {
  try {
    return ok(readFileSync(path, 'utf8'));
  } catch (e) {
    return fail([
      {
        code: 'IO',
        resource: path,
        message: `cannot read ${what}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      },
    ]);
  }
}

function fromFile(path: string, source: string): Result<OperatorCredential> {
  const text = readText(path, 'the admin credential');
  if (!text.ok) return text;
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(text.value) as Record<string, unknown>;
  } catch {
    return fail([{ code: 'SCHEMA', resource: path, message: 'the admin credential is not JSON' }]);
  }
  const { server, token, caPem } = json;
  if (
    typeof server !== 'string' ||
    typeof token !== 'string' ||
    (caPem !== undefined && typeof caPem !== 'string')
  ) {
    return fail([
      {
        code: 'SCHEMA',
        resource: path,
        message: 'the admin credential needs "server" and "token" strings (and "caPem")',
      },
    ]);
  }
  return ok({ server, token, caPem: caPem as string | undefined, source });
}

function fromEnv(env: NodeJS.ProcessEnv, token: string): Result<OperatorCredential> {
  const caFile = env.CLINIMESH_CA_FILE;
  const ca = caFile ? readText(caFile, '$CLINIMESH_CA_FILE') : undefined;
  if (ca && !ca.ok) return ca;
  return ok({
    server: env.CLINIMESH_ADMIN ?? DEFAULT_ADMIN,
    token,
    caPem: ca?.value,
    source: '$CLINIMESH_TOKEN',
  });
}

export function resolveCredential(
  o: { credential?: string; admin?: string },
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): Result<OperatorCredential> {
  const quickStart = resolve(cwd, QUICK_START_CREDENTIAL);
  let found: Result<OperatorCredential>;
  if (o.credential) found = fromFile(o.credential, '--credential');
  else if (env.CLINIMESH_CREDENTIAL) found = fromFile(env.CLINIMESH_CREDENTIAL, '$CLINIMESH_CREDENTIAL');
  else if (env.CLINIMESH_TOKEN) found = fromEnv(env, env.CLINIMESH_TOKEN);
  else if (existsSync(quickStart)) found = fromFile(quickStart, quickStart);
  else {
    return fail([
      {
        code: 'UNAUTHENTICATED',
        message: `no admin credential: pass --credential FILE or set CLINIMESH_CREDENTIAL (serve writes <data-dir>/admin-credential.json on first start)`,
      },
    ]);
  }
  if (!found.ok || !o.admin) return found;
  return ok({ ...found.value, server: o.admin });
}
