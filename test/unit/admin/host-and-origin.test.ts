import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../../src/main.ts';
import { adminRequest, errorCodes } from '../../helpers/admin.ts';
import { serviceYaml } from './fixtures.ts';

describe('admin API Host and Origin checks', () => {
  let cp: RunningControlPlane;

  beforeAll(async () => {
    cp = await startControlPlane({
      xdsPort: 0,
      xdsRestPort: 0,
      adminPort: 0,
      adminAllowedHosts: ['clinimesh.clinimesh-system.svc'],
    });
  });
  afterAll(async () => {
    await cp?.stop();
  });

  it('refuses a foreign Host (DNS rebinding) even with a valid admin token', async () => {
    const res = await adminRequest(cp, 'GET', '/v1/status', { headers: { host: 'evil.example' } });
    expect(res.status).toBe(421);
    expect(errorCodes(res)).toEqual(['PERMISSION_DENIED']);
    const apply = await adminRequest(cp, 'POST', '/v1/apply', {
      headers: { host: `evil.example:${cp.adminPort}` },
      body: serviceYaml('clinical', 'rebound'),
    });
    expect(apply.status).toBe(421);
    expect(cp.controlPlane.store.list().map((m) => m.name)).not.toContain('rebound');
  });

  it('refuses a cross-site POST (foreign Origin) even with a valid admin token', async () => {
    const res = await adminRequest(cp, 'POST', '/v1/apply', {
      headers: { origin: 'https://evil.example' },
      body: serviceYaml('clinical', 'crosssite'),
    });
    expect(res.status).toBe(403);
    expect(errorCodes(res)).toEqual(['PERMISSION_DENIED']);
    expect(cp.controlPlane.store.list().map((m) => m.name)).not.toContain('crosssite');
    for (const origin of ['null', `http://127.0.0.1:${cp.adminPort}`, 'https://localhost.evil.example']) {
      expect((await adminRequest(cp, 'GET', '/v1/status', { headers: { origin } })).status).toBe(403);
    }
  });

  it('accepts its own address, loopback names on any port, and --admin-allowed-host names', async () => {
    for (const host of [
      `127.0.0.1:${cp.adminPort}`,
      'localhost:8443',
      '[::1]:19000',
      'localhost',
      'clinimesh.clinimesh-system.svc:19000',
    ]) {
      expect((await adminRequest(cp, 'GET', '/v1/status', { headers: { host } })).status, host).toBe(200);
    }
    expect(
      (
        await adminRequest(cp, 'GET', '/v1/status', {
          headers: { origin: `https://localhost:${cp.adminPort}` },
        })
      ).status,
    ).toBe(200);
  });

  it('answers probes whatever the Host (kubelets dial the pod IP)', async () => {
    expect(
      (await adminRequest(cp, 'GET', '/healthz', { anonymous: true, headers: { host: '10.1.2.3:19000' } }))
        .status,
    ).toBe(200);
  });
});
