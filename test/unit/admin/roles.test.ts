import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../../src/main.ts';
import { adminRequest, createToken, errorCodes } from '../../helpers/admin.ts';
import { meshYaml, serviceYaml } from './fixtures.ts';

const services = (cp: RunningControlPlane) =>
  cp.controlPlane.store
    .list()
    .filter((m) => m.kind === 'Service')
    .map((m) => `${'namespace' in m ? m.namespace : ''}/${m.name}`)
    .sort();

const discovery = (yaml: string, d: string) => yaml.replace('spec:\n', `spec:\n  discovery: ${d}\n`);
/** B's HIS, whose instances come from Consul under the name `his`. */
const consulHis = discovery(serviceYaml('ns-b', 'his'), '{ mode: consul }').replace(
  / {2}instances:\n.*\n/,
  '',
);

describe('admin API roles', () => {
  let cp: RunningControlPlane;
  let viewer: string;
  let editorA: string;

  beforeAll(async () => {
    cp = await startControlPlane({ xdsPort: 0, xdsRestPort: 0, adminPort: 0 });
    viewer = (await createToken(cp, 'viewer')).token;
    editorA = (await createToken(cp, 'editor', { name: 'team-a', namespaces: ['ns-a'] })).token;
    const seeded = await adminRequest(cp, 'POST', '/v1/apply', {
      body: `${serviceYaml('ns-b', 'billing')}---\n${serviceYaml('ns-a', 'lab')}---\n${consulHis}`,
    });
    expect(seeded.status).toBe(200);
  });
  afterAll(async () => {
    await cp?.stop();
  });

  it('lets a viewer read but not apply', async () => {
    expect((await adminRequest(cp, 'GET', '/v1/status', { token: viewer })).status).toBe(200);
    expect((await adminRequest(cp, 'GET', '/v1/manifests', { token: viewer })).status).toBe(200);
    expect((await adminRequest(cp, 'GET', '/v1/history', { token: viewer })).status).toBe(200);
    expect((await adminRequest(cp, 'GET', '/v1/ca', { token: viewer })).status).toBe(200);
    const res = await adminRequest(cp, 'POST', '/v1/apply', {
      token: viewer,
      body: serviceYaml('ns-a', 'viewer-made'),
    });
    expect(res.status).toBe(403);
    expect(errorCodes(res)).toEqual(['PERMISSION_DENIED']);
    expect(services(cp)).not.toContain('ns-a/viewer-made');
  });

  it('refuses an editor of A applying to B, and applies nothing of the batch', async () => {
    const res = await adminRequest(cp, 'POST', '/v1/apply', {
      token: editorA,
      body: `${serviceYaml('ns-a', 'emr')}---\n${serviceYaml('ns-b', 'pharmacy')}`,
    });
    expect(res.status).toBe(403);
    expect(errorCodes(res)).toEqual(['PERMISSION_DENIED']);
    expect(services(cp)).toEqual(['ns-a/lab', 'ns-b/billing', 'ns-b/his']);
  });

  it('refuses an editor of A re-pointing a policy in A that protects B', async () => {
    const policy = (destination: string) => `apiVersion: clinimesh.io/v1alpha1
kind: AccessPolicy
metadata: { name: guard, namespace: ns-a }
spec:
  destination: ${destination}
  rules: [{ from: [{ service: lab, namespace: ns-a }] }]
`;
    const seeded = await adminRequest(cp, 'POST', '/v1/apply', {
      body: policy('{ service: billing, namespace: ns-b }'),
    });
    expect(seeded.status).toBe(200);
    const res = await adminRequest(cp, 'POST', '/v1/apply', { token: editorA, body: policy('lab') });
    expect(res.status).toBe(403);
    const stored = cp.controlPlane.store.list().find((m) => m.kind === 'AccessPolicy' && m.name === 'guard');
    expect(stored && 'destination' in stored ? stored.destination.namespace : undefined).toBe('ns-b');
    expect((await adminRequest(cp, 'DELETE', '/v1/manifests/AccessPolicy/ns-a/guard')).status).toBe(200);
  });

  it('lets an editor of A apply to A', async () => {
    const res = await adminRequest(cp, 'POST', '/v1/apply', {
      token: editorA,
      body: serviceYaml('ns-a', 'emr'),
    });
    expect(res.status).toBe(200);
    expect(services(cp)).toContain('ns-a/emr');
  });

  it("refuses an editor of A registering its Service in Consul under the name B's Service discovers", async () => {
    const res = await adminRequest(cp, 'POST', '/v1/apply', {
      token: editorA,
      body: discovery(serviceYaml('ns-a', 'labsvc'), '{ mode: static, register: true, consulName: his }'),
    });
    expect(res.status).toBe(409);
    expect(errorCodes(res)).toEqual(['CONFLICT']);
    expect(services(cp)).not.toContain('ns-a/labsvc');
  });

  it('refuses an editor deleting in B, by body or by path', async () => {
    expect(
      (await adminRequest(cp, 'POST', '/v1/delete', { token: editorA, body: serviceYaml('ns-b', 'billing') }))
        .status,
    ).toBe(403);
    expect(
      (await adminRequest(cp, 'DELETE', '/v1/manifests/Service/ns-b/billing', { token: editorA })).status,
    ).toBe(403);
    expect(services(cp)).toContain('ns-b/billing');
  });

  it('keeps cluster-scoped kinds (Mesh) to admins', async () => {
    const res = await adminRequest(cp, 'POST', '/v1/apply', { token: editorA, body: meshYaml });
    expect(res.status).toBe(403);
  });

  it('keeps tokens and root rotation to admins', async () => {
    expect((await adminRequest(cp, 'GET', '/v1/tokens', { token: editorA })).status).toBe(403);
    expect(
      (await adminRequest(cp, 'POST', '/v1/tokens', { token: editorA, body: { name: 'x', role: 'admin' } }))
        .status,
    ).toBe(403);
    expect(
      (await adminRequest(cp, 'POST', '/v1/ca/rotate-root?phase=begin', { token: editorA })).status,
    ).toBe(403);
  });

  it('lets an editor create join tokens in its namespace only', async () => {
    const inB = await adminRequest(cp, 'POST', '/v1/join-tokens', {
      token: editorA,
      body: { namespace: 'ns-b', service: 'billing' },
    });
    expect(inB.status).toBe(403);
    expect(errorCodes(inB)).toEqual(['PERMISSION_DENIED']);
    const inA = await adminRequest(cp, 'POST', '/v1/join-tokens', {
      token: editorA,
      body: { namespace: 'ns-a', service: 'lab', ttlSeconds: 600 },
    });
    expect(inA.status).toBe(201);
    expect(inA.json).toMatchObject({
      id: expect.any(String),
      token: expect.any(String),
      expiresAt: expect.any(String),
    });
  });

  it('records who changed what, never secrets', async () => {
    const res = await adminRequest(cp, 'GET', '/v1/history', { token: viewer });
    const entries = (
      res.json as {
        entries: Array<{ author: { name: string }; action: string; revision: number; touched: string[] }>;
      }
    ).entries;
    const byTeamA = entries.filter((e) => e.author.name === 'team-a');
    expect(byTeamA.map((e) => e.action)).toEqual(['apply', 'join-token-create']);
    expect(byTeamA[0]).toMatchObject({
      role: 'editor',
      touched: ['Service ns-a/emr'],
      revision: cp.controlPlane.state().revision,
    });
    expect(res.text).not.toMatch(/cmt_|cmjt/);
  });
});
