// `clinimesh apply --wait` with a real Envoy sidecar: a change the sidecar accepts exits 0 once it
// ACKed; a change it rejects exits 1 with Envoy's own error text. The rejection is provoked as in
// emr-calls-his: a route that passes our checks but whose regex Envoy refuses to compile, slipped
// into the sidecar's snapshot when the apply publishes it.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import type { SnapshotCache } from '../../src/xds/cache/snapshot.ts';
import { prepareResource } from '../../src/xds/resources/prepared.ts';
import { ROUTE } from '../../src/xds/resources/type-urls.ts';
import { describeWithEnvoy, dumpLogsOnFailure, type EnvoyHandle } from '../helpers/envoy.ts';
import {
  applyYaml,
  emrManifest,
  hisManifest,
  instances,
  meshManifest,
  NS,
  startSidecar,
} from '../helpers/mesh.ts';
import { adminRequest } from '../helpers/admin.ts';
import { waitFor } from '../helpers/wait.ts';
import { clinimesh } from '../unit/cli/run-cli.ts';

describeWithEnvoy('clinimesh apply --wait against an Envoy sidecar', () => {
  let cp: RunningControlPlane;
  let dataDir: string;
  let env: Record<string, string>;
  const envoys: EnvoyHandle[] = [];
  const his = instances('his', 3);
  const [emr] = instances('emr', 1) as [{ name: string; address: string }];
  const node = `${NS}/emr/${emr.name}`;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'clinimesh-cli-wait-'));
    cp = await startControlPlane({
      trustDomain: 'hospital.local',
      xdsPort: 0,
      xdsRestPort: 0,
      adminPort: 0,
      dataDir,
    });
    env = { CLINIMESH_CREDENTIAL: cp.adminCredentialPath! };
    await applyYaml(cp, [meshManifest, hisManifest(his.slice(0, 1)), emrManifest(emr)].join('---\n'));
    envoys.push(await startSidecar(cp, 'emr', emr.name));
    await waitFor(
      async () =>
        cp.statuses
          .all()
          .find((s) => s.nodeId === node)
          ?.types.get(ROUTE)?.ackedVersion !== undefined,
      { what: 'EMR to ACK its routes' },
    );
  });
  /** The nodes GET /v1/proxy-status?state=… lists. */
  const listed = async (state: string) => {
    const res = await adminRequest(cp, 'GET', `/v1/proxy-status?state=${state}`);
    expect(res.status, res.text).toBe(200);
    return (res.json as { sidecars: Array<{ node: string }> }).sidecars.map((s) => s.node);
  };

  afterEach(dumpLogsOnFailure(() => envoys));
  afterAll(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await cp?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('exits 0 once the affected sidecar ACKed the change', async () => {
    const run = await clinimesh(['apply', '--wait', '--timeout', '20s', '-f', '-'], {
      env,
      stdin: hisManifest(his.slice(0, 2)),
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(
      /Service clinical\/his applied\nrevision \d+\n1 sidecar\(s\) ACKed the new config\n$/,
    );
    // What the wait polls: only sidecars not in sync, so none now.
    expect(await listed('STALE,NACKED')).toEqual([]);
    expect(await listed('synced')).toEqual([node]);
  });

  it('answers an unknown state filter with 400 naming the field', async () => {
    const res = await adminRequest(cp, 'GET', '/v1/proxy-status?state=SYNCED,ACKED');
    expect(res.status).toBe(400);
    const [problem] = (res.json as { errors: Array<{ field: string; message: string }> }).errors;
    expect(problem?.field).toBe('state');
    expect(problem?.message).toMatch(/^unknown sync state "ACKED"/);
  });

  it("exits 1 with Envoy's error text when the sidecar NACKs the change", async () => {
    const good = [...cp.cache.get(node, ROUTE)!.resources.values()][0]!;
    const bad = prepareResource({
      typeUrl: ROUTE,
      name: good.name,
      body: {
        name: good.name,
        virtual_hosts: [
          {
            name: 'bad',
            domains: ['*'],
            routes: [{ match: { safe_regex: { regex: '((' } }, route: { cluster: 'x' } }],
          },
        ],
      },
    });
    if (!bad.ok) throw new Error(JSON.stringify(bad.errors));
    const cache: SnapshotCache = cp.cache;
    const set = cache.set.bind(cache);
    cache.set = (n, byType) => set(n, n === node ? { ...byType, [ROUTE]: [bad.value] } : byType);
    try {
      const run = await clinimesh(['apply', '--wait', '--timeout', '20s', '-f', '-'], {
        env,
        stdin: hisManifest(his),
      });
      expect(run.code).toBe(1);
      expect(run.stderr).not.toMatch(/^\s+at /m);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
      expect(run.stderr).toMatch(new RegExp(`^${node} rejected RDS version \\w+: .*\\(\\(`));
      expect(await listed('NACKED')).toEqual([node]);
    } finally {
      cache.set = set;
      cache.set(node, { [ROUTE]: [good] });
    }
  });
});
