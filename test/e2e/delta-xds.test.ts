// Incremental xDS (DELTA_GRPC) with real Envoy: EMR calls HIS through sidecars bootstrapped with
// `--transport delta`; an endpoint change reaches EMR's Envoy as one changed ClusterLoadAssignment and
// nothing else; nothing is NACKed and every Envoy stays connected.
import { readFile } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import { CLUSTER, ENDPOINT, LISTENER, ROUTE, type TypeUrl } from '../../src/xds/resources/type-urls.ts';
import { describeWithEnvoy, dumpLogsOnFailure, expectNoRejectedUpdates } from '../helpers/envoy.ts';
import {
  applyYaml,
  EMR_TO_HIS_PORT,
  HIS_MESH_PORT,
  hisManifest,
  instances,
  NS,
  type Sidecar,
  startEmrCallsHis,
} from '../helpers/mesh.ts';
import { httpRequest, type ServedBy, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

describeWithEnvoy('EMR calls HIS through Envoy sidecars configured over delta xDS', () => {
  let cp: RunningControlPlane;
  const envoys: Sidecar[] = [];
  const apps: Upstream[] = [];
  const his = instances('his', 2);
  const [emr] = instances('emr', 1) as [{ name: string; address: string }];
  const emrNode = `${NS}/emr/${emr.name}`;
  const hisCluster = `outbound|http|his.${NS}`;
  const emrEnvoy = () => envoys.find((e) => e.name === emr.name)!;
  const emrStatus = () => cp.statuses.all().find((s) => s.nodeId === emrNode);

  async function callHis(): Promise<{ status: number; servedBy?: string }> {
    const res = await httpRequest(`http://${emr.address}:${EMR_TO_HIS_PORT}/patients/42`, {
      timeoutMs: 5_000,
    });
    return {
      status: res.status,
      servedBy: res.status === 200 ? (JSON.parse(res.body) as ServedBy).served_by : undefined,
    };
  }

  beforeAll(async () => {
    cp = await startControlPlane({ trustDomain: 'hospital.local', xdsPort: 0, xdsRestPort: 0, adminPort: 0 });
    await startEmrCallsHis(cp, his, emr, { apps, envoys }, 'delta');
    await waitFor(async () => (await callHis()).status === 200, {
      what: "EMR's delta sidecar to route to HIS",
      timeoutMs: 20_000,
    });
  });

  afterEach(dumpLogsOnFailure(() => envoys));
  afterAll(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await Promise.all(apps.map((a) => a.close()));
    await cp?.stop();
  });

  it('carries traffic to both HIS instances; the bootstrap asks for DELTA_GRPC', async () => {
    const bootstrap = JSON.parse(await readFile(emrEnvoy().agent.bootstrapPath, 'utf8')) as {
      dynamic_resources?: { ads_config?: { api_type?: string } };
    };
    expect(bootstrap.dynamic_resources?.ads_config?.api_type).toBe('DELTA_GRPC');
    const seen = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const r = await callHis();
      expect(r.status).toBe(200);
      seen.add(r.servedBy!);
    }
    expect([...seen].sort()).toEqual(['his-1', 'his-2']);
  });

  it('reports every sidecar on a delta stream, in sync, with no NACK, and connected', async () => {
    await waitFor(
      async () => {
        const s = emrStatus();
        return (
          s && ([CLUSTER, ENDPOINT, LISTENER, ROUTE] as const).every((t) => s.types.get(t)?.ackedVersion)
        );
      },
      { what: 'EMR to ACK CDS, EDS, LDS and RDS over delta' },
    );
    const all = cp.statuses.all();
    expect(all).toHaveLength(3);
    for (const s of all) {
      expect(s.transport).toBe('delta');
      for (const t of s.types.values()) expect(t.lastNack).toBeUndefined();
    }
    for (const e of envoys) {
      const connected = await e.stats('control_plane.connected_state');
      expect(connected['control_plane.connected_state'], e.name).toBe(1);
    }
  });

  it('sends EMR only the changed ClusterLoadAssignment when his-2 goes away', async () => {
    const before = emrStatus()!;
    const pushes = (t: TypeUrl) => before.types.get(t)?.pushes ?? 0;
    const cds = pushes(CLUSTER);
    const lds = pushes(LISTENER);
    const rds = pushes(ROUTE);
    const eds = pushes(ENDPOINT);
    const cdsUpdates = (await emrEnvoy().stats('cluster_manager.cds.update_success'))[
      'cluster_manager.cds.update_success'
    ];
    await applyYaml(cp, hisManifest([his[0]!]));
    await waitFor(async () => (await emrEnvoy().clusterEndpoints(hisCluster)).length === 1, {
      what: "EMR's Envoy to hold one HIS host",
      timeoutMs: 10_000,
    });
    const hosts = await emrEnvoy().clusterEndpoints(hisCluster);
    expect(hosts.map((h) => h.address)).toEqual([`${his[0]!.address}:${HIS_MESH_PORT}`]);
    for (let i = 0; i < 10; i++) expect((await callHis()).servedBy).toBe('his-1');

    const after = emrStatus()!;
    expect(after.types.get(ENDPOINT)!.pushes).toBeGreaterThan(eds);
    expect(after.types.get(ENDPOINT)!.lastPush).toEqual({ resources: 1, removed: 0 });
    expect(after.types.get(CLUSTER)!.pushes).toBe(cds);
    expect(after.types.get(LISTENER)!.pushes).toBe(lds);
    expect(after.types.get(ROUTE)!.pushes).toBe(rds);
    expect(
      (await emrEnvoy().stats('cluster_manager.cds.update_success'))['cluster_manager.cds.update_success'],
    ).toBe(cdsUpdates);
    await waitFor(
      async () => emrStatus()!.types.get(ENDPOINT)!.ackedVersion === cp.cache.get(emrNode, ENDPOINT)!.version,
      {
        what: 'EMR to ACK the new endpoints',
      },
    );
  });

  it('finishes warming a cluster that changed while its endpoints did not', async () => {
    // A TrafficPolicy changes EMR's HIS cluster (load balancing), not HIS's endpoints: Envoy
    // re-creates the cluster and must get its assignment again to finish warming.
    await applyYaml(
      cp,
      `apiVersion: clinimesh.io/v1alpha1
kind: TrafficPolicy
metadata: { name: his-lb, namespace: ${NS} }
spec:
  destination: his
  loadBalancer: { policy: LEAST_REQUEST }
`,
    );
    await waitFor(
      async () =>
        JSON.stringify(await emrEnvoy().adminJson('/config_dump?resource=dynamic_active_clusters')).includes(
          'LEAST_REQUEST',
        ),
      { what: "EMR's Envoy to take the changed cluster", timeoutMs: 10_000 },
    );
    await waitFor(
      async () =>
        (await emrEnvoy().stats('cluster_manager.warming_clusters'))['cluster_manager.warming_clusters'] ===
        0,
      { what: "EMR's Envoy to finish warming it", timeoutMs: 5_000 },
    );
    expect((await callHis()).status).toBe(200);
  });

  it('never had an update rejected, and every Envoy is still connected', async () => {
    for (const s of cp.statuses.all()) for (const t of s.types.values()) expect(t.lastNack).toBeUndefined();
    await expectNoRejectedUpdates(envoys);
    for (const e of envoys) {
      expect((await e.stats('control_plane.connected_state'))['control_plane.connected_state']).toBe(1);
    }
  });
});
