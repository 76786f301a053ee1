// The node agent's status port (`clinimesh agent --status-port`): what Kubernetes probes and people
// on the node read. Loopback only; healthy while both certificates are valid.
import { get } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { AgentStatus } from '../../../src/agent/agent.ts';
import { startAgentStatusServer, type AgentStatusServer } from '../../../src/agent/status-server.ts';

function fetch(port: number, path: string): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }),
      );
    }).on('error', reject);
  });
}

const inHours = (h: number) => new Date(Date.now() + h * 3_600_000).toISOString();

describe('agent status port', () => {
  let server: AgentStatusServer | undefined;
  let current: AgentStatus = {
    spiffeId: 'spiffe://hospital.local/ns/clinical/sa/emr',
    nodeId: 'clinical/emr/emr-1',
    xdsCredentialExpiresAt: inHours(24),
    workloadCertExpiresAt: inHours(12),
    renewals: 3,
  };
  afterEach(async () => {
    await server?.close();
  });

  it('answers /healthz 200 and /status with the identity, expiries and renewals while certificates are valid', async () => {
    server = await startAgentStatusServer(() => current, 0);
    expect((await fetch(server.port, '/healthz')).status).toBe(200);
    const status = await fetch(server.port, '/status');
    expect(status.status).toBe(200);
    expect(status.json).toEqual({ ...current, healthy: true });
  });

  it('answers /healthz 503 once a certificate expired, and /status says why renewal failed', async () => {
    current = {
      ...current,
      workloadCertExpiresAt: inHours(-1),
      lastError: 'connect ECONNREFUSED 10.0.0.5:18001',
    };
    server = await startAgentStatusServer(() => current, 0);
    const health = await fetch(server.port, '/healthz');
    expect(health.status).toBe(503);
    expect(health.json.workloadCertExpiresAt).toBe(current.workloadCertExpiresAt);
    const status = await fetch(server.port, '/status');
    expect(status.json).toMatchObject({ healthy: false, lastError: current.lastError });
    expect((await fetch(server.port, '/nope')).status).toBe(404);
  });
});
