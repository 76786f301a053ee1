// What issue "Trust" saw, each replayed against a real control plane, its admin API and its node
// agent API: no identity without attestation, the identity comes from the proof and never from the
// request, keys stay with the workload, and the control plane's own identity is never handed out.
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callControlPlane } from '../../src/agent/control-plane-client.ts';
import { createCsr } from '../../src/ca/csr.ts';
import type { Problem } from '../../src/errors.ts';
import type { SignedIdentity } from '../../src/identity/workload-signer.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import { SECRET } from '../../src/xds/resources/type-urls.ts';
import { adminRequest } from '../helpers/admin.ts';
import {
  applyYaml,
  emrManifest,
  hisManifest,
  instances,
  joinToken,
  meshManifest,
  NS,
  serviceManifest,
  startNodeAgent,
} from '../helpers/mesh.ts';

const ec = (): KeyObject => generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const csrs = () => ({ xdsCsr: createCsr(ec()), workloadCsr: createCsr(ec()) });
const codes = (r: { ok: boolean; errors?: readonly Problem[] }) =>
  r.ok ? [] : (r.errors ?? []).map((p) => p.code);

describe('workload attestation and the identity API', () => {
  let cp: RunningControlPlane;
  let attest: (body: object) => ReturnType<typeof callControlPlane<SignedIdentity>>;
  const [his, emr] = [instances('his', 1)[0]!, instances('emr', 1)[0]!];

  beforeAll(async () => {
    cp = await startControlPlane({ trustDomain: 'hospital.local', xdsPort: 0, xdsRestPort: 0, adminPort: 0 });
    await applyYaml(cp, [meshManifest, hisManifest([his]), emrManifest(emr)].join('---\n'));
    const caPem = cp.ca.trustBundle().join('\n');
    attest = (body) =>
      callControlPlane<SignedIdentity>(
        `${cp.host}:${cp.xdsRestPort}`,
        'POST',
        '/v1/agent/attest',
        { caPem },
        body,
      );
  });
  afterAll(() => cp?.stop());

  it('refuses the old anonymous bootstrap-credentials call, and attestation without evidence', async () => {
    const old = await adminRequest(cp, 'POST', '/v1/bootstrap-credentials', {
      anonymous: true,
      body: { namespace: NS, service: 'his', publicKeyPem: 'x' },
    });
    expect(old.status).toBe(401);
    expect(
      (
        await adminRequest(cp, 'POST', '/v1/bootstrap-credentials', {
          body: { namespace: NS, service: 'his' },
        })
      ).status,
    ).toBe(404);
    const r = await attest({ ...csrs() });
    expect(r.status).toBe(401);
  });

  it('signs for the identity the join token names, whatever the request says', async () => {
    const token = joinToken(cp, 'emr', emr.name);
    const r = await attest({
      joinToken: token,
      instance: emr.name,
      service: 'his',
      namespace: 'other',
      ...csrs(),
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value.spiffeId).toBe(`spiffe://hospital.local/ns/${NS}/sa/emr`);
    expect(r.value).not.toHaveProperty('privateKeyPem');
  });

  it('refuses a join token bound to one instance for another', async () => {
    const r = await attest({ joinToken: joinToken(cp, 'emr', emr.name), instance: 'emr-9', ...csrs() });
    expect(r.status).toBe(403);
  });

  it('refuses a reused token, an expired one and a forged one', async () => {
    const token = joinToken(cp, 'his', his.name);
    expect((await attest({ joinToken: token, ...csrs() })).ok).toBe(true);
    const reused = await attest({ joinToken: token, ...csrs() });
    expect([reused.status, codes(reused)]).toEqual([401, ['UNAUTHENTICATED']]);
    const short = cp.joinTokens.create({ namespace: NS, service: 'his', ttlMs: 1000, createdBy: 'test' });
    if (!short.ok) throw new Error('no token');
    await new Promise((r) => setTimeout(r, 1100));
    expect((await attest({ joinToken: short.value.token, ...csrs() })).status).toBe(401);
    const forged = token.replace(/\.([A-Za-z0-9_-]{43})\./, `.${'A'.repeat(43)}.`);
    expect((await attest({ joinToken: forged, ...csrs() })).status).toBe(401);
  });

  it('refuses weak keys, a foreign trust domain and a bare public key (the CA unit tests cover its own key)', async () => {
    const rsa = (bits: number) => generateKeyPairSync('rsa', { modulusLength: bits }).privateKey;
    const cases: Array<[string, object]> = [
      ['RSA-512', { xdsCsr: createCsr(rsa(512)), workloadCsr: createCsr(ec()) }],
      ['RSA-1024', { xdsCsr: createCsr(ec()), workloadCsr: createCsr(rsa(1024)) }],
      [
        'foreign trust domain',
        {
          xdsCsr: createCsr(ec(), { uriSans: [`spiffe://evil.example/ns/${NS}/sa/his`] }),
          workloadCsr: createCsr(ec()),
        },
      ],
      [
        'bare public key',
        {
          xdsCsr: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({
            type: 'spki',
            format: 'pem',
          }),
          workloadCsr: createCsr(ec()),
        },
      ],
    ];
    for (const [what, body] of cases) {
      const r = await attest({ joinToken: joinToken(cp, 'his'), instance: his.name, ...body });
      expect(r.status, what).toBe(400);
      expect(codes(r), what).toContain('CA');
    }
  });

  it('does not burn a join token on a CSR it refuses', async () => {
    const token = joinToken(cp, 'his', his.name);
    const bad = await attest({ joinToken: token, xdsCsr: 'not a CSR', workloadCsr: createCsr(ec()) });
    expect(bad.status).toBe(400);
    expect((await attest({ joinToken: token, ...csrs() })).ok).toBe(true);
  });

  it('judges the evidence before the certificate requests: no CSR work for whoever has no token', async () => {
    // Checking a CSR costs CPU and the caller is not yet authenticated; the token check is a hash.
    const forged = await attest({ joinToken: 'cmjt.nope', xdsCsr: 'not a CSR', workloadCsr: 'nor this' });
    expect([forged.status, codes(forged)]).toEqual([401, ['UNAUTHENTICATED']]);
    // A refused CSR still gives the held token back before the answer: an immediate retry works.
    const token = joinToken(cp, 'his', his.name);
    expect(
      (await attest({ joinToken: token, xdsCsr: 'not a CSR', workloadCsr: createCsr(ec()) })).status,
    ).toBe(400);
    expect((await attest({ joinToken: token, ...csrs() })).ok).toBe(true);
  });

  it('never issues the control plane identity: no join token for clinimesh-system, even for a declared Service', async () => {
    await applyYaml(
      cp,
      serviceManifest({
        name: 'control-plane',
        ports: ['{ name: grpc, port: 15999, targetPort: 18000, protocol: grpc }'],
        instances: instances('cp', 1),
      }).replace(`namespace: ${NS}`, 'namespace: clinimesh-system'),
    );
    const made = cp.joinTokens.create({
      namespace: 'clinimesh-system',
      service: 'control-plane',
      createdBy: 'test',
    });
    expect(codes(made)).toContain('PERMISSION_DENIED');
    const viaApi = await adminRequest(cp, 'POST', '/v1/join-tokens', {
      body: { namespace: 'clinimesh-system', service: 'control-plane' },
    });
    expect(viaApi.status).toBe(403);
  });

  it("stops renewing a node agent's certificates once its Service is deleted", async () => {
    const [tmp] = instances('tmpsvc', 1) as [{ name: string; address: string }];
    await applyYaml(
      cp,
      serviceManifest({
        name: 'tmpsvc',
        ports: ['{ name: http, port: 15098, targetPort: 8098, protocol: http }'],
        instances: [tmp],
      }),
    );
    const agent = await startNodeAgent(cp, 'tmpsvc', tmp.name);
    try {
      expect((await agent.renewNow()).ok).toBe(true);
      const deleted = await adminRequest(cp, 'DELETE', `/v1/manifests/Service/${NS}/tmpsvc`);
      expect(deleted.status).toBe(200);
      const refused = await agent.renewNow();
      expect(codes(refused)).toEqual(['PERMISSION_DENIED']);
      expect(refused.ok ? '' : refused.errors[0]!.message).toContain(
        `spiffe://hospital.local/ns/${NS}/sa/tmpsvc`,
      );
    } finally {
      agent.stop();
    }
  });

  it('refuses a Mesh that re-points the trust domain', async () => {
    const r = await adminRequest(cp, 'POST', '/v1/apply', {
      body: meshManifest.replace('hospital.local', 'evil.example'),
    });
    expect(r.status).toBe(409);
    expect(cp.ca.trustDomain).toBe('hospital.local');
  });

  it('holds no workload private key: sidecars are served the public trust bundle only', async () => {
    const agent = await startNodeAgent(cp, 'his', his.name);
    try {
      const nodeId = `${NS}/his/${his.name}`;
      // The agent's Envoy would connect now; connecting as it would plans its snapshot.
      const connected = cp.controlPlane.hooks.connect(
        { id: nodeId, cluster: 'his', metadata: { 'clinimesh.sds_dir': agent.sdsDir } } as never,
        { transport: 'ads', peer: 'test', credential: `spiffe://hospital.local/ns/${NS}/sa/his` },
      );
      expect(connected.ok).toBe(true);
      const secrets = [...(cp.cache.get(nodeId, SECRET)?.resources.values() ?? [])].map((r) =>
        JSON.stringify(r.json()),
      );
      expect(secrets.length).toBeGreaterThan(0);
      for (const s of secrets) expect(s).not.toMatch(/PRIVATE KEY|privateKey|private_key/);
    } finally {
      agent.stop();
    }
  });
});

describe('the CA and plaintext ports at start', () => {
  it('refuses to start when the CA is gone but the mesh has state, unless asked for a new one', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'clinimesh-ca-lost-'));
    try {
      const first = await startControlPlane({
        dataDir,
        trustDomain: 'hospital.local',
        xdsPort: 0,
        xdsRestPort: 0,
        adminPort: 0,
      });
      await applyYaml(first, meshManifest);
      await first.stop();
      await rm(join(dataDir, 'ca'), { recursive: true });
      await expect(
        startControlPlane({ dataDir, xdsPort: 0, xdsRestPort: 0, adminPort: 0 }),
      ).rejects.toMatchObject({ problems: [expect.objectContaining({ code: 'CA' })] });
      const again = await startControlPlane({
        dataDir,
        newCa: true,
        xdsPort: 0,
        xdsRestPort: 0,
        adminPort: 0,
      });
      expect(again.ca.trustDomain).toBe('hospital.local');
      await again.stop();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('serves plaintext xDS on loopback only', async () => {
    await expect(
      startControlPlane({ xdsTls: false, host: '0.0.0.0', xdsPort: 0, xdsRestPort: 0, adminPort: 0 }),
    ).rejects.toMatchObject({ problems: [expect.objectContaining({ field: 'host' })] });
  });
});

describe('one-time join tokens under refusal', () => {
  it('gives a token back when a later check refuses it (an instance it is not bound to)', async () => {
    const cp = await startControlPlane({
      trustDomain: 'hospital.local',
      xdsPort: 0,
      xdsRestPort: 0,
      adminPort: 0,
    });
    try {
      const [his] = instances('his', 1);
      await applyYaml(cp, [meshManifest, hisManifest([his!])].join('---\n'));
      const caPem = cp.ca.trustBundle().join('\n');
      const attest = (body: object) =>
        callControlPlane<SignedIdentity>(
          `${cp.host}:${cp.xdsRestPort}`,
          'POST',
          '/v1/agent/attest',
          { caPem },
          body,
        );
      const token = joinToken(cp, 'his', his!.name);
      expect((await attest({ joinToken: token, instance: 'his-9', ...csrs() })).status).toBe(403);
      expect((await attest({ joinToken: token, instance: his!.name, ...csrs() })).ok).toBe(true);
      expect((await attest({ joinToken: token, instance: his!.name, ...csrs() })).status).toBe(401);
    } finally {
      await cp.stop();
    }
  });
});
