// The admin API over the Consul store: an apply on one replica is served by the other; with Consul
// unreachable both keep their state, an apply answers 503 naming Consul, and the store recovers.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consulConfigFromEnv } from '../../../src/consul/config.ts';
import { startControlPlane, type RunningControlPlane } from '../../../src/main.ts';
import { ConsulDouble } from '../../consul-double/server.ts';
import { adminRequest } from '../../helpers/admin.ts';
import { waitFor } from '../../helpers/wait.ts';
import { serviceYaml } from './fixtures.ts';

describe('admin API over --store consul', () => {
  let double: ConsulDouble;
  let dir: string;
  const replicas: RunningControlPlane[] = [];

  beforeAll(async () => {
    double = await ConsulDouble.start();
    dir = await mkdtemp(join(tmpdir(), 'clinimesh-shared-'));
    const kek = join(dir, 'kek');
    await writeFile(kek, randomBytes(32), { mode: 0o600 });
    const consul = consulConfigFromEnv({ CONSUL_HTTP_ADDR: double.address });
    if (!consul.ok) throw new Error('config');
    for (const name of ['a', 'b'])
      replicas.push(
        await startControlPlane({
          xdsPort: 0,
          xdsRestPort: 0,
          adminPort: 0,
          dataDir: join(dir, name),
          store: 'consul',
          consul: consul.value,
          caKekFile: kek,
          replicaName: name,
        }),
      );
  });
  afterAll(async () => {
    await Promise.all(replicas.map((r) => r.stop()));
    await double.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves on one replica what was applied on the other, with its history', async () => {
    const [a, b] = replicas as [RunningControlPlane, RunningControlPlane];
    const token = a.adminCredential!.token;
    const applied = await adminRequest(a, 'POST', '/v1/apply', {
      body: serviceYaml('clinical', 'lab'),
      token,
    });
    expect(applied.status, applied.text).toBe(200);
    await waitFor(async () => b.controlPlane.state().services.has('lab.clinical'), {
      what: 'replica b to serve lab',
    });
    // Replica b made no credential of its own (the tokens already existed): a's works on b.
    const viaB = { adminUrl: b.adminUrl, adminCredential: a.adminCredential };
    const history = await adminRequest(viaB, 'GET', '/v1/history', { token });
    expect(history.status, history.text).toBe(200);
    expect(history.text).toContain('"action": "apply"');
  });

  it('refuses an apply with 503 naming Consul while it is unreachable, keeps the state, and recovers', async () => {
    const [a, b] = replicas as [RunningControlPlane, RunningControlPlane];
    const token = a.adminCredential!.token;
    const revision = b.controlPlane.state().revision;
    await double.pause();
    try {
      const viaB = { adminUrl: b.adminUrl, adminCredential: a.adminCredential };
      const refused = await adminRequest(viaB, 'POST', '/v1/apply', {
        body: serviceYaml('clinical', 'ward'),
        token,
      });
      expect(refused.status, refused.text).toBe(503);
      expect(refused.text).toContain('"code": "CONSUL"');
      expect(b.controlPlane.state().revision).toBe(revision);
      expect(b.controlPlane.state().services.has('lab.clinical')).toBe(true);
    } finally {
      await double.resume();
    }
    await waitFor(
      async () =>
        (await adminRequest(a, 'POST', '/v1/apply', { body: serviceYaml('clinical', 'ward'), token }))
          .status === 200,
      { what: 'an apply to work again' },
    );
    await waitFor(async () => b.controlPlane.state().services.has('ward.clinical'), {
      what: 'b to catch up',
    });
  });
});
