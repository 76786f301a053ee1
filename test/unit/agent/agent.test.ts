// The node agent against a real control plane (no Envoy): what it writes, that a restart reuses its
// credential instead of spending new evidence, and that it keeps what it has while the control
// plane is away, saying how long that lasts.
import { X509Certificate } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent } from '../../../src/agent/agent.ts';
import { readCertificate } from '../../../src/agent/secret-files.ts';
import { startControlPlane, type RunningControlPlane } from '../../../src/main.ts';
import { hisManifest, applyYaml, instances, joinToken, meshManifest, NS } from '../../helpers/mesh.ts';

describe('clinimesh agent', () => {
  let cp: RunningControlPlane;
  let dir: string;
  const [his] = instances('his', 1) as [{ name: string; address: string }];

  beforeAll(async () => {
    cp = await startControlPlane({ trustDomain: 'hospital.local', xdsPort: 0, xdsRestPort: 0, adminPort: 0 });
    await applyYaml(cp, [meshManifest, hisManifest([his])].join('---\n'));
    dir = await mkdtemp(join(tmpdir(), 'clinimesh-agent-unit-'));
  });
  afterAll(async () => {
    await cp?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const start = (token: string, logs: string[] = []) =>
    startAgent({
      controlPlane: `${cp.host}:${cp.xdsRestPort}`,
      evidence: () => ({ joinToken: token }),
      outDir: dir,
      instance: his.name,
      log: (l) => logs.push(l),
    });

  it('trusts the root pinned in the join token, and writes a bootstrap and 0600 secrets', async () => {
    const agent = await start(joinToken(cp, 'his', his.name));
    try {
      const bootstrap = JSON.parse(readFileSync(agent.bootstrapPath, 'utf8')) as {
        node: { id: string; metadata: Record<string, string> };
      };
      expect(bootstrap.node.id).toBe(`${NS}/his/${his.name}`);
      expect(bootstrap.node.metadata['clinimesh.sds_dir']).toBe(agent.sdsDir);
      expect(statSync(agent.sdsDir).mode & 0o777).toBe(0o700);
      for (const f of ['default.json', 'xds-client.json', 'xds-ca.json'])
        expect(statSync(join(agent.sdsDir, f)).mode & 0o077, f).toBe(0);
      const leaf = new X509Certificate(readCertificate(agent.sdsDir, 'default')!.certChainPem);
      expect(leaf.subjectAltName).toContain(`spiffe://hospital.local/ns/${NS}/sa/his`);
      expect(leaf.checkIssued(new X509Certificate(cp.ca.trustBundle()[0]!))).toBe(true);
    } finally {
      agent.stop();
    }
  });

  it('restarts on what it has: renews with its credential, spending no new evidence', async () => {
    const before = readCertificate(join(dir, 'sds'), 'default')!.certChainPem;
    // No --instance this time: the bootstrap it wrote names it.
    const agent = await startAgent({
      controlPlane: `${cp.host}:${cp.xdsRestPort}`,
      evidence: () => ({ joinToken: 'cmjt.spent' }),
      outDir: dir,
      log: () => undefined,
    });
    try {
      expect(agent.status().renewals).toBe(1);
      expect(agent.nodeId).toBe(`${NS}/his/${his.name}`);
      expect(readCertificate(agent.sdsDir, 'default')!.certChainPem).not.toBe(before);
    } finally {
      agent.stop();
    }
  });

  it('keeps its certificates while the control plane is down, and says how long they last', async () => {
    const logs: string[] = [];
    const agent = await start('cmjt.spent', logs);
    try {
      const held = readCertificate(agent.sdsDir, 'default')!.certChainPem;
      await cp.stop();
      const renewed = await agent.renewNow();
      expect(renewed.ok).toBe(false);
      expect(agent.status().lastError).toBeDefined();
      expect(logs.at(-1)).toMatch(/expire in \d+ s/);
      expect(readCertificate(agent.sdsDir, 'default')!.certChainPem).toBe(held);
    } finally {
      agent.stop();
    }
  });
});
