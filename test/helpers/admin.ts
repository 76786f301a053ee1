// Calling a test control plane's admin API as an operator would: HTTPS trusting the CA in
// cp.adminCredential, the bootstrap admin token by default (or another token, or none).
import type { IncomingHttpHeaders } from 'node:http';
import { request } from 'node:https';
import { checkControlPlaneIdentity } from '../../src/cli/admin-client.ts';
import type { RunningControlPlane } from '../../src/main.ts';

export interface AdminAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
  /** The body parsed as JSON, or undefined when it is not JSON. */
  readonly json: unknown;
}

export interface AdminRequestOptions {
  /** The bearer token; default the bootstrap admin token. */
  readonly token?: string;
  /** Send no Authorization header at all. */
  readonly anonymous?: boolean;
  /** A string is sent as YAML; anything else as JSON. */
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

/** What an admin call needs: a control plane in this process, or a replica in a child process. */
export type AdminTarget = Pick<RunningControlPlane, 'adminUrl' | 'adminCredential'>;

export function adminCredentialOf(cp: AdminTarget) {
  const cred = cp.adminCredential;
  if (!cred) throw new Error('the control plane has no admin credential');
  return cred;
}

export function adminRequest(
  cp: AdminTarget,
  method: string,
  path: string,
  o: AdminRequestOptions = {},
): Promise<AdminAnswer> {
  const cred = adminCredentialOf(cp);
  const token = o.anonymous ? undefined : (o.token ?? cred.token);
  const text =
    o.body === undefined ? undefined : typeof o.body === 'string' ? o.body : JSON.stringify(o.body);
  const headers: Record<string, string> = {
    ...(token ? { authorization: `Bearer ${token}` } : {}),
    ...(text === undefined
      ? {}
      : { 'content-type': typeof o.body === 'string' ? 'application/yaml' : 'application/json' }),
    ...o.headers,
  };
  return new Promise((resolve, reject) => {
    const req = request(
      `${cp.adminUrl}${path}`,
      { method, headers, ca: cred.caPem, checkServerIdentity: checkControlPlaneIdentity, agent: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const body = Buffer.concat(chunks).toString('utf8');
          let json: unknown;
          try {
            json = JSON.parse(body);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text: body, json });
        });
      },
    );
    req.on('error', reject);
    req.end(text);
  });
}

/** The error codes of an error answer, for asserting on codes rather than message text. */
export function errorCodes(answer: AdminAnswer): string[] {
  const errors = (answer.json as { errors?: Array<{ code: string }> } | undefined)?.errors ?? [];
  return errors.map((e) => e.code);
}

/** Creates an operator token through the API (as the bootstrap admin) and returns its secret and id. */
export async function createToken(
  cp: RunningControlPlane,
  role: 'admin' | 'editor' | 'viewer',
  o: { name?: string; namespaces?: string[]; ttlSeconds?: number } = {},
): Promise<{ id: string; token: string }> {
  const res = await adminRequest(cp, 'POST', '/v1/tokens', {
    body: {
      name: o.name ?? `${role}-${Math.random().toString(36).slice(2, 8)}`,
      role,
      namespaces: o.namespaces ?? [],
      ttlSeconds: o.ttlSeconds,
    },
  });
  if (res.status !== 201) throw new Error(`token create: HTTP ${res.status} ${res.text}`);
  return res.json as { id: string; token: string };
}
