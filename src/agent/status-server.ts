// The node agent's local status port (`clinimesh agent --status-port N`), on 127.0.0.1 only, for
// Kubernetes probes and people on the node:
//   GET /healthz  200 while both certificates (the xDS credential and the workload certificate) are
//                 valid, 503 once either has expired
//   GET /status   JSON: SPIFFE ID, node id, expiries, renewals, last error
// It carries no key and no token: the same facts the agent logs.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AgentStatus } from './agent.ts';

export interface AgentStatusServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Whether the certificates the agent holds are still valid at `now`. */
export function certificatesValid(s: AgentStatus, now = Date.now()): boolean {
  return Date.parse(s.xdsCredentialExpiresAt) > now && Date.parse(s.workloadCertExpiresAt) > now;
}

export async function startAgentStatusServer(
  status: () => AgentStatus,
  port: number,
): Promise<AgentStatusServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    const send = (code: number, body: unknown) => {
      const text = `${JSON.stringify(body)}\n`;
      res
        .writeHead(code, { 'content-type': 'application/json', 'cache-control': 'no-store' })
        .end(req.method === 'HEAD' ? undefined : text);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, { error: 'GET only' });
    if (path === '/healthz') {
      const s = status();
      return certificatesValid(s)
        ? send(200, { status: 'ok' })
        : send(503, {
            status: 'certificates expired',
            xdsCredentialExpiresAt: s.xdsCredentialExpiresAt,
            workloadCertExpiresAt: s.workloadCertExpiresAt,
          });
    }
    if (path === '/status') return send(200, { ...status(), healthy: certificatesValid(status()) });
    return send(404, { error: 'not found: GET /healthz or /status' });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  server.unref();
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
