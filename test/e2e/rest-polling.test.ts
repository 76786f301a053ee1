// A sidecar configured with api_type REST polls clinimesh over HTTP/JSON instead of streaming, and
// carries EMR → HIS traffic just the same; changes reach it through the long poll.
import { readFile } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import { describeWithEnvoy, dumpLogsOnFailure } from '../helpers/envoy.ts';
import {
  applyYaml,
  EMR_TO_HIS_PORT,
  emrManifest,
  HIS_APP_PORT,
  hisManifest,
  instances,
  meshManifest,
  NS,
  startSidecar,
  type Sidecar,
} from '../helpers/mesh.ts';
import { httpRequest, startHttpUpstream, type ServedBy, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';
import { credentialFor, restPoll } from '../helpers/xds-client.ts';

describeWithEnvoy('REST-JSON polling sidecars', () => {
  let cp: RunningControlPlane;
  const envoys: Sidecar[] = [];
  const apps: Upstream[] = [];
  const his = instances('his', 2);
  const [emr] = instances('emr', 1) as [{ name: string; address: string }];

  const servedBy = async (): Promise<string | undefined> => {
    const res = await httpRequest(`http://${emr.address}:${EMR_TO_HIS_PORT}/orders`, { timeoutMs: 5_000 });
    return res.status === 200 ? (JSON.parse(res.body) as ServedBy).served_by : undefined;
  };

  beforeAll(async () => {
    cp = await startControlPlane({
      trustDomain: 'hospital.local',
      xdsPort: 0,
      xdsRestPort: 0,
      adminPort: 0,
      longPollMs: 2_000,
    });
    await applyYaml(cp, [meshManifest, hisManifest(his), emrManifest(emr)].join('---\n'));
    for (const h of his)
      apps.push(await startHttpUpstream({ name: h.name, host: h.address, port: HIS_APP_PORT }));
    for (const h of his) envoys.push(await startSidecar(cp, 'his', h.name, 'rest'));
    envoys.push(await startSidecar(cp, 'emr', emr.name, 'rest'));
  });

  afterEach(dumpLogsOnFailure(() => envoys));
  afterAll(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await Promise.all(apps.map((a) => a.close()));
    await cp?.stop();
  });

  it('routes EMR to both HIS instances with config fetched over REST', async () => {
    const seen = new Set<string>();
    await waitFor(
      async () => {
        const s = await servedBy();
        if (s) seen.add(s);
        return seen.size === 2;
      },
      { what: 'EMR to reach both HIS instances', timeoutMs: 20_000 },
    );
    const emrStatus = cp.statuses.all().find((s) => s.nodeId === `${NS}/emr/${emr.name}`);
    expect(emrStatus?.transport).toBe('rest');
  });

  it('delivers an endpoint change through the long poll', async () => {
    await applyYaml(cp, hisManifest([his[0]!]));
    await waitFor(
      async () => {
        for (let i = 0; i < 6; i++) if ((await servedBy()) !== his[0]!.name) return false;
        return true;
      },
      { what: 'all traffic on his-1', timeoutMs: 15_000 },
    );
  });

  it('answers an up-to-date poll with 304 after the long poll expires', async () => {
    // The same node as EMR's sidecar, saying exactly what it says (its bootstrap's node metadata):
    // while the sidecar is connected, a poll claiming other metadata for its node is refused (409).
    const emrSidecar = envoys.find((e) => e.name === emr.name)!;
    const bootstrap = JSON.parse(await readFile(emrSidecar.agent.bootstrapPath, 'utf8')) as {
      node: { metadata: Record<string, unknown> };
    };
    const node = { id: `${NS}/emr/${emr.name}`, cluster: 'emr', metadata: bootstrap.node.metadata };
    const cred = credentialFor(cp, 'emr');
    const first = await restPoll(cp, 'clusters', { node }, cred);
    expect(first.status).toBe(200);
    const body = first.json as { version_info: string; resources: Array<{ '@type': string }> };
    expect(body.resources.every((r) => r['@type'].endsWith('envoy.config.cluster.v3.Cluster'))).toBe(true);
    const second = await restPoll(cp, 'clusters', { node, version_info: body.version_info }, cred);
    expect(second.status).toBe(304);
  });

  it('refuses a poll from a node that is not in the mesh', async () => {
    const res = await restPoll(
      cp,
      'clusters',
      { node: { id: `${NS}/radiology/rad-1` } },
      credentialFor(cp, 'radiology'),
    );
    expect(res.status).toBe(403);
  });

  it("refuses a workload that claims another workload's node id", async () => {
    const res = await restPoll(
      cp,
      'clusters',
      { node: { id: `${NS}/his/${his[0]!.name}` } },
      credentialFor(cp, 'emr'),
    );
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ code: 'PERMISSION_DENIED' });
  });
});
