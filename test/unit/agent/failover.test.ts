// The node agent with several control-plane replicas (sharing one CA): its bootstrap names every
// replica, Envoy accepts that bootstrap, and attestation, renewal and bundle polls move on to a
// replica that answers when the one in use is gone.
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent } from '../../../src/agent/agent.ts';
import { ControlPlaneAddresses, parseAddresses } from '../../../src/agent/control-plane-addresses.ts';
import { envoyBootstrap } from '../../../src/bootstrap/envoy-bootstrap.ts';
import { startControlPlane, type RunningControlPlane } from '../../../src/main.ts';
import { envoyBin } from '../../helpers/envoy.ts';
import { applyYaml, hisManifest, instances, joinToken, meshManifest } from '../../helpers/mesh.ts';
import { freePort } from '../../helpers/ports.ts';

interface Bootstrap {
  static_resources: {
    clusters: {
      load_assignment: {
        endpoints: { lb_endpoints: { endpoint: { address: { socket_address: object } } }[] }[];
      };
    }[];
  };
}

const socketAddresses = (b: Bootstrap) =>
  b.static_resources.clusters[0]!.load_assignment.endpoints[0]!.lb_endpoints.map(
    (e) => e.endpoint.address.socket_address,
  );

describe('control-plane addresses', () => {
  it('takes repeated flags and comma lists alike, without blanks or duplicates', () => {
    expect(parseAddresses(['a:1,b:2', ' c:3 ', 'a:1', ''])).toEqual(['a:1', 'b:2', 'c:3']);
    expect(() => new ControlPlaneAddresses([])).toThrow(TypeError);
  });

  it('fails as IO when no replica answers', async () => {
    const replicas = new ControlPlaneAddresses([
      `127.0.0.1:${await freePort()}`,
      `127.0.0.1:${await freePort()}`,
    ]);
    const result = await replicas.call('GET', '/v1/agent/bundle', {});
    expect(result.ok ? undefined : result.errors[0]?.code).toBe('IO');
  });
});

describe('envoy bootstrap with several replicas', () => {
  const bootstrap = (transport: 'ads' | 'rest' | 'delta') =>
    envoyBootstrap({
      nodeId: 'clinical/his/his-1',
      cluster: 'his',
      xdsServers: [
        { host: '127.0.0.1', port: 18000 },
        { host: '127.0.0.2', port: 18000 },
        { host: 'clinimesh.clinimesh-system.svc', port: 18000 },
      ],
      transport,
      adminPort: 0,
      tls: { sdsDir },
    });
  let sdsDir = '';

  it('lists every replica in the xDS cluster, which ejects one that refuses at once', () => {
    const b = bootstrap('ads') as unknown as Bootstrap & { static_resources: { clusters: object[] } };
    expect(socketAddresses(b)).toEqual([
      { address: '127.0.0.1', port_value: 18000 },
      { address: '127.0.0.2', port_value: 18000 },
      { address: 'clinimesh.clinimesh-system.svc', port_value: 18000 },
    ]);
    expect(b.static_resources.clusters[0]).toMatchObject({
      type: 'STRICT_DNS',
      outlier_detection: { consecutive_local_origin_failure: 1 },
    });
    expect(JSON.stringify(b)).toContain('"retry_back_off"');
  });

  it.runIf(envoyBin)('is accepted by envoy --mode validate for every transport', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clinimesh-bootstrap-'));
    sdsDir = dir;
    // Envoy checks that the agent's secret files exist; their contents are read at run time.
    for (const f of ['xds-client.json', 'xds-ca.json']) writeFileSync(join(dir, f), '{"resources":[]}');
    try {
      for (const transport of ['ads', 'rest', 'delta'] as const) {
        const file = join(dir, `${transport}.json`);
        writeFileSync(file, JSON.stringify(bootstrap(transport)));
        const { stdout } = await promisify(execFile)(envoyBin!, ['--mode', 'validate', '-c', file]);
        expect(stdout, transport).toContain('OK');
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('an agent of two replicas sharing one CA', () => {
  let a: RunningControlPlane;
  let b: RunningControlPlane;
  let caDir: string;
  let dir: string;
  const [his] = instances('his', 1) as [{ name: string; address: string }];
  const opts = () => ({ caDir, trustDomain: 'hospital.local', xdsPort: 0, xdsRestPort: 0, adminPort: 0 });

  beforeAll(async () => {
    caDir = await mkdtemp(join(tmpdir(), 'clinimesh-shared-ca-'));
    dir = await mkdtemp(join(tmpdir(), 'clinimesh-agent-failover-'));
    a = await startControlPlane(opts());
    b = await startControlPlane(opts());
    for (const cp of [a, b]) await applyYaml(cp, [meshManifest, hisManifest([his])].join('---\n'));
  });
  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    for (const d of [caDir, dir]) if (d) await rm(d, { recursive: true, force: true });
  });

  it('moves past a dead address and stays on the replica that answered', async () => {
    const replicas = new ControlPlaneAddresses([
      `127.0.0.1:${await freePort()}`,
      `${a.host}:${a.xdsRestPort}`,
    ]);
    expect((await replicas.call('GET', '/v1/agent/bundle', {})).ok).toBe(true);
    expect(replicas.current).toBe(`${a.host}:${a.xdsRestPort}`);
    // A refusal is an answer: the same state on every replica would refuse it too.
    const refused = await replicas.call('POST', '/v1/agent/attest', {}, { joinToken: 'cmjt.nothing' });
    expect(refused.ok).toBe(false);
    expect(replicas.current).toBe(`${a.host}:${a.xdsRestPort}`);
  });

  it('attests past a dead first address, names every replica in the bootstrap, and renews at A once B is gone', async () => {
    const dead = `127.0.0.1:${await freePort()}`;
    const agent = await startAgent({
      controlPlane: [dead, `${b.host}:${b.xdsRestPort}`, `${a.host}:${a.xdsRestPort}`],
      evidence: () => ({ joinToken: joinToken(b, 'his', his.name) }),
      outDir: dir,
      instance: his.name,
      log: () => undefined,
    });
    try {
      const written = JSON.parse(readFileSync(agent.bootstrapPath, 'utf8')) as Bootstrap;
      // ADS on port 18000 of each host unless told otherwise.
      expect(socketAddresses(written)).toHaveLength(3);
      // Now B (which answered) goes away: the next renewal is A's, with a credential B signed.
      await b.stop();
      const renewed = await agent.renewNow();
      expect(renewed.ok).toBe(true);
      expect(agent.status().renewals).toBe(1);
    } finally {
      agent.stop();
    }
  });
});
