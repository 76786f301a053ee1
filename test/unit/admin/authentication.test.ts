import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../../src/main.ts';
import { adminRequest, createToken, errorCodes } from '../../helpers/admin.ts';
import { serviceYaml } from './fixtures.ts';

describe('admin API authentication', () => {
  let cp: RunningControlPlane;

  beforeAll(async () => {
    cp = await startControlPlane({ xdsPort: 0, xdsRestPort: 0, adminPort: 0 });
  });
  afterAll(async () => {
    await cp?.stop();
  });

  it('serves HTTPS on its own listener, with a bootstrap admin credential', () => {
    expect(cp.adminUrl).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(cp.adminCredential?.server).toBe(cp.adminUrl);
    expect(cp.adminCredential?.token).toMatch(/^cmt_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/);
  });

  it.each([
    ['POST', '/v1/apply'],
    ['POST', '/v1/delete'],
    ['DELETE', '/v1/manifests/Service/clinical/his'],
    ['POST', '/v1/ca/rotate-root?phase=begin'],
    ['GET', '/v1/tokens'],
    ['POST', '/v1/tokens'],
    ['POST', '/v1/join-tokens'],
    ['GET', '/v1/history'],
    ['GET', '/v1/status'],
    ['GET', '/v1/config_dump'],
    ['GET', '/metrics'],
  ])('refuses anonymous %s %s with 401 and a Bearer challenge', async (method, path) => {
    const res = await adminRequest(cp, method, path, {
      anonymous: true,
      body: method === 'POST' ? serviceYaml('clinical', 'his') : undefined,
    });
    expect(res.status).toBe(401);
    expect(errorCodes(res)).toEqual(['UNAUTHENTICATED']);
    expect(res.headers['www-authenticate']).toMatch(/^Bearer /);
  });

  it('leaves nothing applied by an anonymous apply', () => {
    expect(cp.controlPlane.store.list().filter((m) => m.kind === 'Service')).toEqual([]);
  });

  it('refuses a made-up or malformed token', async () => {
    for (const token of [
      'cmt_0123456789abcdef_' + 'A'.repeat(43),
      'not-a-token',
      cp.adminCredential!.token + 'x',
    ]) {
      expect((await adminRequest(cp, 'GET', '/v1/status', { token })).status).toBe(401);
    }
  });

  it('keeps /healthz and /readyz open', async () => {
    expect((await adminRequest(cp, 'GET', '/healthz', { anonymous: true })).status).toBe(200);
    expect((await adminRequest(cp, 'GET', '/readyz', { anonymous: true })).status).toBe(200);
  });

  it('serves /metrics to any role', async () => {
    const viewer = await createToken(cp, 'viewer');
    const res = await adminRequest(cp, 'GET', '/metrics', { token: viewer.token });
    expect(res.status).toBe(200);
    expect(res.text).toContain('clinimesh_state_revision');
  });

  it('refuses a revoked token', async () => {
    const editor = await createToken(cp, 'editor', { namespaces: ['clinical'] });
    expect((await adminRequest(cp, 'GET', '/v1/status', { token: editor.token })).status).toBe(200);
    expect((await adminRequest(cp, 'DELETE', `/v1/tokens/${editor.id}`)).status).toBe(200);
    const res = await adminRequest(cp, 'GET', '/v1/status', { token: editor.token });
    expect(res.status).toBe(401);
    expect(errorCodes(res)).toEqual(['UNAUTHENTICATED']);
  });

  it('refuses an expired token', async () => {
    const brief = await createToken(cp, 'viewer', { ttlSeconds: 0.3 });
    expect((await adminRequest(cp, 'GET', '/v1/status', { token: brief.token })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 400));
    expect((await adminRequest(cp, 'GET', '/v1/status', { token: brief.token })).status).toBe(401);
  });

  it('lists tokens without secrets or hashes', async () => {
    const res = await adminRequest(cp, 'GET', '/v1/tokens');
    expect(res.status).toBe(200);
    expect(res.text).not.toContain(cp.adminCredential!.token);
    expect(res.text).not.toMatch(/sha256|cmt_/);
    const tokens = (res.json as { tokens: Array<{ name: string; role: string }> }).tokens;
    expect(tokens).toContainEqual(expect.objectContaining({ name: 'bootstrap-admin', role: 'admin' }));
  });
});

describe('public metrics', () => {
  it('serves /metrics without a token when metricsPublic is set', async () => {
    const cp = await startControlPlane({ xdsPort: 0, xdsRestPort: 0, adminPort: 0, metricsPublic: true });
    try {
      expect((await adminRequest(cp, 'GET', '/metrics', { anonymous: true })).status).toBe(200);
      expect((await adminRequest(cp, 'GET', '/v1/status', { anonymous: true })).status).toBe(401);
    } finally {
      await cp.stop();
    }
  });
});
