// Three control-plane replicas (child processes, so SIGKILL is real) behind real Envoy sidecars,
// each joined through a join token and an agent that names every replica. EMR calls HIS in a loop
// while the replica EMR's sidecar streams from is killed: no request fails, the sidecar is on
// another replica within 5 s, and since versions are content hashes it is sent nothing new — no CDS
// or LDS update, no listener drained.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeWithEnvoy, dumpLogsOnFailure, type EnvoyHandle } from '../helpers/envoy.ts';
import {
  EMR_TO_HIS_PORT,
  emrManifest,
  HIS_APP_PORT,
  hisManifest,
  instances,
  meshManifest,
} from '../helpers/mesh.ts';
import {
  connectedReplica,
  startHaSidecar,
  startReplica,
  type HaSidecar,
  type Replica,
} from '../helpers/replicas.ts';
import { failures, shoot, startLoop } from '../helpers/traffic.ts';
import { startHttpUpstream, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const [his1, his2] = instances('his', 2) as [
  { name: string; address: string },
  { name: string; address: string },
];
const [emr] = instances('emr', 1) as [{ name: string; address: string }];

/** What says "new config arrived": update counts, the versions held, listeners changed or draining. */
async function configCounters(envoy: EnvoyHandle) {
  const stats = await envoy.stats(
    '^(cluster_manager\\.cds\\.update_success|listener_manager\\.lds\\.update_success|listener_manager\\.listener_modified|listener_manager\\.total_listeners_draining)$',
  );
  const text = await envoy.admin('/stats?filter=version_text');
  const versions = [
    ...text.matchAll(/^(cluster_manager\.cds|listener_manager\.lds)\.version_text: "?([^"\n]*)"?$/gm),
  ].map((m) => `${m[1]}=${m[2]}`);
  return { ...stats, versions: versions.sort().join(' ') };
}

describeWithEnvoy('three control-plane replicas: sidecars fail over without a blip', () => {
  let work: string;
  const replicas: Replica[] = [];
  const sidecars: HaSidecar[] = [];
  const apps: Upstream[] = [];
  const url = `http://${emr.address}:${EMR_TO_HIS_PORT}/patients/1`;

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'clinimesh-ha-'));
    const manifests = join(work, 'mesh.yaml');
    await writeFile(manifests, [meshManifest, hisManifest([his1, his2]), emrManifest(emr)].join('---\n'));
    const args = ['--ca-dir', join(work, 'ca'), '-f', manifests];
    // The first makes the CA; the others open it.
    replicas.push(await startReplica({ name: 'cp-0', args }));
    replicas.push(...(await Promise.all([1, 2].map((i) => startReplica({ name: `cp-${i}`, args })))));
    for (const h of [his1, his2])
      apps.push(await startHttpUpstream({ name: h.name, host: h.address, port: HIS_APP_PORT }));
    for (const [service, inst] of [
      ['his', his1.name],
      ['his', his2.name],
      ['emr', emr.name],
    ] as const)
      sidecars.push(await startHaSidecar(replicas, service, inst));
    await waitFor(async () => (await shoot(url, { timeoutMs: 2_000 })).status === 200, {
      what: 'EMR to reach HIS through the mesh',
      timeoutMs: 30_000,
    });
  }, 120_000);
  afterEach(dumpLogsOnFailure(() => sidecars));
  afterAll(async () => {
    await Promise.all(sidecars.map((s) => s.stop()));
    await Promise.all(apps.map((a) => a.close()));
    await Promise.all(replicas.map((r) => r.stop()));
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('SIGKILL of the replica a sidecar streams from: 0 failed requests, another replica within 5 s, no new CDS/LDS', async () => {
    const sidecar = sidecars.at(-1)!;
    const before = await waitFor(() => connectedReplica(sidecar, replicas), {
      what: 'EMR sidecar to be connected to a replica',
    });
    const counters = await configCounters(sidecar);
    expect(counters.versions).toMatch(/cds=\w+.*lds=\w+/);
    const loop = startLoop(() => shoot(url, { timeoutMs: 5_000 }), {
      total: 100_000,
      concurrency: 2,
      maxMs: 30_000,
    });
    await waitFor(async () => loop.shots.length >= 20, { what: 'the request loop to run' });
    const killedAt = Date.now();
    await before.kill();
    const after = await waitFor(
      async () => {
        const r = await connectedReplica(sidecar, replicas);
        return r && r !== before ? r : undefined;
      },
      { what: 'EMR sidecar to reconnect to another replica', timeoutMs: 10_000, intervalMs: 50 },
    );
    const reconnectMs = Date.now() - killedAt;
    // Requests keep flowing for a while on the new stream.
    const seen = loop.shots.length;
    await waitFor(async () => loop.shots.length >= seen + 50, { what: 'more requests after the failover' });
    const shots = await loop.stop();
    console.info(
      `failover: ${before.name} killed, ${sidecar.name} on ${after.name} after ${reconnectMs} ms; ${shots.length} requests`,
    );
    expect(failures(shots)).toEqual([]);
    expect(reconnectMs).toBeLessThan(5_000);
    expect((await sidecar.stats('^control_plane\\.connected_state$'))['control_plane.connected_state']).toBe(
      1,
    );
    expect(await configCounters(sidecar)).toEqual(counters);
  }, 90_000);
});
