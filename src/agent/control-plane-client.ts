// The node agent's HTTPS client for the control plane's identity API. The server is accepted when
// its chain leads to a trusted root and it carries the control plane's SPIFFE ID in any trust domain
// (so a trust-domain migration keeps agents connected): the CA never issues it to a workload.
import { X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import type { PeerCertificate } from 'node:tls';
import { CONTROL_PLANE_SAN_REGEX } from '../bootstrap/envoy-bootstrap.ts';
import { uriSans } from '../ca/spiffe.ts';
import { fail, ok, type Problem, type Result } from '../errors.ts';

export interface ClientTls {
  /** Roots to verify the control plane with; undefined only for the pinned first fetch of the bundle. */
  readonly caPem?: string;
  /** The agent's current credential, for renewal. */
  readonly certChainPem?: string;
  readonly keyPem?: string;
}

const TIMEOUT_MS = 10_000;

function checkServer(_host: string, cert: PeerCertificate): Error | undefined {
  const good = uriSans(cert.subjectaltname).some((u) => new RegExp(CONTROL_PLANE_SAN_REGEX).test(u));
  return good
    ? undefined
    : new Error(`the server is not the clinimesh control plane (SANs: ${cert.subjectaltname ?? 'none'})`);
}

export interface ApiError {
  readonly status: number;
  readonly problems: readonly Problem[];
}

/** One JSON call; a refusal keeps the server's problems, a transport failure is an IO problem. */
export function callControlPlane<T>(
  address: string,
  method: 'GET' | 'POST',
  path: string,
  tls: ClientTls,
  body?: unknown,
): Promise<Result<T> & { status?: number }> {
  const [host, port] = splitHostPort(address);
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve) => {
    const req = request(
      {
        host,
        port,
        method,
        path,
        ca: tls.caPem,
        cert: tls.certChainPem,
        key: tls.keyPem,
        // The pinned first fetch reads a public bundle and checks it against the pin itself.
        rejectUnauthorized: tls.caPem !== undefined,
        checkServerIdentity: checkServer,
        headers: payload
          ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
          : {},
        timeout: TIMEOUT_MS,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          let json: unknown;
          try {
            json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          } catch {
            json = undefined;
          }
          if (status === 200 && json !== undefined) return resolve({ ...ok(json as T), status });
          const errors = (json as { errors?: Problem[] } | undefined)?.errors;
          resolve({
            ...fail(
              errors?.length
                ? errors
                : [{ code: 'IO', resource: address, message: `HTTP ${status} from ${path}` }],
            ),
            status,
          });
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer in ${TIMEOUT_MS} ms`)));
    req.on('error', (e) =>
      resolve(fail([{ code: 'IO', resource: address, message: `${path}: ${e.message}` }])),
    );
    req.end(payload);
  });
}

/** The root among `bundlePem` whose SHA-256 pin matches; undefined when none does. */
export function pinnedRoot(
  bundlePem: string,
  pin: string,
  pinOf: (pem: string) => string,
): string | undefined {
  const pems = bundlePem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [];
  return pems.find((pem) => {
    try {
      return new X509Certificate(pem).ca && pinOf(pem) === pin;
    } catch {
      return false;
    }
  });
}

export function splitHostPort(address: string): [string, number] {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(address);
  return m ? [m[1]!, Number(m[2])] : [address, 18001];
}
