// HTTPS calls to the admin API with the operator's bearer token. The server is trusted when its
// certificate chains to the credential's CA and names the control plane's SPIFFE ID
// (spiffe://<trust domain>/ns/clinimesh-system/sa/control-plane): its DNS names need not match the
// address dialled (a port-forward, a pod IP). Node's global fetch cannot take a CA, hence node:https.
import { request } from 'node:https';
import type { PeerCertificate } from 'node:tls';
import { uriSans } from '../ca/spiffe.ts';
import type { OperatorCredential } from './credential.ts';

const CONTROL_PLANE_URI = /^spiffe:\/\/[^/]+\/ns\/clinimesh-system\/sa\/control-plane$/;

export interface AdminResponse {
  readonly status: number;
  readonly json: unknown;
}

export function checkControlPlaneIdentity(_host: string, cert: PeerCertificate): Error | undefined {
  if (uriSans(cert.subjectaltname).some((u) => CONTROL_PLANE_URI.test(u))) return undefined;
  return new Error(
    'the server certificate is not the clinimesh control plane (no spiffe://…/ns/clinimesh-system/sa/control-plane URI)',
  );
}

function describe(e: Error): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code && !e.message.includes(code) ? `${e.message} (${code})` : e.message;
}

export function adminCall(
  cred: OperatorCredential,
  method: string,
  path: string,
  body?: { text: string; type: string },
): Promise<AdminResponse> {
  const url = new URL(path, cred.server.endsWith('/') ? cred.server : `${cred.server}/`);
  if (url.protocol !== 'https:')
    return Promise.reject(
      new Error(`the admin API is served over https; ${cred.server} is not an https URL`),
    );
  const headers: Record<string, string | number> = {
    authorization: `Bearer ${cred.token}`,
    accept: 'application/json',
  };
  if (body)
    Object.assign(headers, { 'content-type': body.type, 'content-length': Buffer.byteLength(body.text) });
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        headers,
        timeout: 30_000,
        agent: false,
        ...(cred.caPem ? { ca: cred.caPem, checkServerIdentity: checkControlPlaneIdentity } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown = text;
          try {
            json = JSON.parse(text);
          } catch {
            // not JSON (metrics, health): keep the text
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.origin} within 30 s`)));
    req.on('error', (e) => reject(new Error(`cannot reach the admin API at ${url.origin}: ${describe(e)}`)));
    req.end(body?.text);
  });
}

/** The problems of an error response, one line each, or the HTTP status when there are none. */
export function errorLines(res: AdminResponse): string[] {
  const errors = (res.json as { errors?: Array<{ text?: string; message?: string }> } | undefined)?.errors;
  const lines = Array.isArray(errors) ? errors.map((e) => e.text ?? e.message ?? '').filter(Boolean) : [];
  return lines.length ? lines : [`the admin API answered HTTP ${res.status}`];
}
