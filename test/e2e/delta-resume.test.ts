// Delta xDS resume with real Envoy: the control plane restarts on its data dir while EMR keeps
// calling HIS. Envoy reconnects saying what it holds (`initial_resource_versions`); since versions
// are content hashes that survive a restart, the restarted control plane sends nothing that Envoy
// already holds: no CDS or LDS update, no listener drained, traffic never stops. When the state
// changed while it was down, the resume carries only the one changed ClusterLoadAssignment.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import { PUSH_ORDER, shortName } from '../../src/xds/resources/type-urls.ts';
import { describeWithEnvoy, dumpLogsOnFailure, expectNoRejectedUpdates } from '../helpers/envoy.ts';
import {
  EMR_TO_HIS_PORT,
  hisManifest,
  instances,
  NS,
  type Sidecar,
  startEmrCallsHis,
} from '../helpers/mesh.ts';
import { freePort } from '../helpers/ports.ts';
import { httpRequest, type ServedBy, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

/** Envoy counters that move when it takes new clusters or listeners, or drains a listener. */
const CONFIG_STATS = [
  'cluster_manager.cds.update_success',
  'cluster_manager.cluster_modified',
  'cluster_manager.cluster_added',
  'listener_manager.lds.update_success',
  'listener_manager.listener_modified',
  'listener_manager.listener_added',
  'listener_manager.listener_in_place_updated',
  'listener_manager.total_listeners_draining',
] as const;

describeWithEnvoy('delta xDS resume: a restarted control plane re-sends nothing Envoy holds', () => {
  let cp: RunningControlPlane;
  let dataDir: string;
  const ports = { xdsPort: 0, xdsRestPort: 0 };
  const envoys: Sidecar[] = [];
  const apps: Upstream[] = [];
  const his = instances('his', 2);
  const [emr] = instances('emr', 1) as [{ name: string; address: string }];
  const emrNode = `${NS}/emr/${emr.name}`;
  const emrEnvoy = () => envoys.find((e) => e.name === emr.name)!;

  const start = (manifests?: readonly string[]) =>
    startControlPlane({ trustDomain: 'hospital.local', dataDir, ...ports, adminPort: 0, manifests });

  async function callHis(): Promise<{ status: number; servedBy?: string }> {
    const res = await httpRequest(`http://${emr.address}:${EMR_TO_HIS_PORT}/patients/42`, {
      timeoutMs: 5_000,
    }).catch(() => ({ status: 0, body: '' }));
    return {
      status: res.status,
      servedBy: res.status === 200 ? (JSON.parse(res.body) as ServedBy).served_by : undefined,
    };
  }

  /** Calls HIS through EMR's sidecar every 50 ms until stopped; counts answers by status. */
  function keepCalling(): { stop: () => Promise<Map<number, number>> } {
    const counts = new Map<number, number>();
    let running = true;
    const loop = (async () => {
      while (running) {
        const { status } = await callHis();
        counts.set(status, (counts.get(status) ?? 0) + 1);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    return {
      stop: async () => {
        running = false;
        await loop;
        return counts;
      },
    };
  }

  async function configStats(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const name of CONFIG_STATS) out[name] = (await emrEnvoy().stats(name))[name] ?? 0;
    return out;
  }

  /** Every sidecar on the current control plane has every type it subscribes to in sync. */
  async function allInSync(): Promise<boolean> {
    const streams = cp.statuses.all();
    if (streams.length !== 3) return false;
    return streams.every((s) =>
      [...s.types].every(([t, v]) => {
        const version = cp.cache.get(s.nodeId, t)?.version;
        return version !== undefined && (v.ackedVersion === version || v.heldVersion === version);
      }),
    );
  }

  /** Stops the control plane, lets Envoy see it gone, and starts it again on the same data dir. */
  async function restart(manifests?: readonly string[]): Promise<void> {
    await cp.stop();
    await waitFor(
      async () =>
        (await emrEnvoy().stats('control_plane.connected_state'))['control_plane.connected_state'] === 0,
      { what: "EMR's Envoy to notice the control plane is gone", timeoutMs: 10_000 },
    );
    cp = await start(manifests);
    await waitFor(async () => cp.statuses.all().length === 3 && (await allInSync()), {
      what: 'every sidecar to reconnect to the restarted control plane and be in sync',
      timeoutMs: 30_000,
    });
  }

  /** Pushes the current control plane made to EMR, per type, by short name. */
  const emrPushes = () => {
    const s = cp.statuses.all().find((x) => x.nodeId === emrNode)!;
    return Object.fromEntries(PUSH_ORDER.map((t) => [shortName(t), s.types.get(t)?.pushes ?? 0]));
  };

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'clinimesh-delta-resume-'));
    // Envoy's bootstrap names the xDS port: the restarted control plane must listen where it did.
    ports.xdsPort = await freePort();
    ports.xdsRestPort = await freePort();
    cp = await start();
    await startEmrCallsHis(cp, his, emr, { apps, envoys }, 'delta');
    await waitFor(async () => (await callHis()).status === 200, {
      what: "EMR's delta sidecar to route to HIS",
      timeoutMs: 20_000,
    });
    await waitFor(allInSync, { what: 'every sidecar to ACK its first config', timeoutMs: 20_000 });
  });

  afterEach(dumpLogsOnFailure(() => envoys));
  afterAll(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await Promise.all(apps.map((a) => a.close()));
    await cp?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('resumes after a restart without sending anything: no CDS or LDS update, no drain, no failed call', async () => {
    const before = await configStats();
    const calls = keepCalling();
    await restart();
    // The reconnect is answered with nothing at all: every type is held, none was pushed.
    const pushes = await cp.metrics.pushes.get();
    expect(pushes.values.filter((v) => v.value > 0)).toEqual([]);
    expect(emrPushes()).toEqual({ SDS: 0, CDS: 0, EDS: 0, LDS: 0, RDS: 0 });
    const emrStatus = cp.statuses.all().find((s) => s.nodeId === emrNode)!;
    for (const [t, v] of emrStatus.types)
      expect(v.heldVersion, `EMR ${shortName(t)}`).toBe(cp.cache.get(emrNode, t)!.version);
    // Envoy took no new clusters or listeners and drained nothing.
    for (let i = 0; i < 5; i++) expect((await callHis()).status).toBe(200);
    const counts = await calls.stop();
    expect(await configStats()).toEqual(before);
    expect([...counts.keys()]).toEqual([200]);
    expect(counts.get(200)).toBeGreaterThan(5);
  });

  it('resumes after a restart that changed HIS: only the changed ClusterLoadAssignment is sent', async () => {
    const before = await configStats();
    const edsStat = 'cluster.outbound|http|his.clinical.update_success';
    const edsUpdates = async () => (await emrEnvoy().stats('his.clinical.update_success'))[edsStat] ?? 0;
    const edsBefore = await edsUpdates();
    // While it is down, the operator changes HIS (weights only): applied as the control plane starts.
    const changed = join(dataDir, 'his-weights.yaml');
    await writeFile(
      changed,
      hisManifest(his).replace(
        `{ name: ${his[0]!.name}, address: ${his[0]!.address},`,
        `{ name: ${his[0]!.name}, weight: 3, address: ${his[0]!.address},`,
      ),
    );
    const calls = keepCalling();
    await restart([changed]);
    expect(emrPushes()).toEqual({ SDS: 0, CDS: 0, EDS: 1, LDS: 0, RDS: 0 });
    const eds = cp.statuses.all().find((s) => s.nodeId === emrNode)!.types;
    expect([...eds].find(([t]) => shortName(t) === 'EDS')![1].lastPush).toEqual({ resources: 1, removed: 0 });
    await waitFor(async () => (await edsUpdates()) > edsBefore, {
      what: "EMR's Envoy to take the new HIS assignment",
    });
    await waitFor(
      async () =>
        (await emrEnvoy().clusterEndpoints('outbound|http|his.clinical')).some((h) => h.weight === 3),
      { what: "EMR's Envoy to hold his-1 with weight 3" },
    );
    const counts = await calls.stop();
    expect(await configStats()).toEqual(before);
    expect([...counts.keys()]).toEqual([200]);
  });

  it('never had an update rejected, and every Envoy is connected', async () => {
    await expectNoRejectedUpdates(envoys);
    for (const e of envoys) {
      expect((await e.stats('control_plane.connected_state'))['control_plane.connected_state']).toBe(1);
    }
  });
});
