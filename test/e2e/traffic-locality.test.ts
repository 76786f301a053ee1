// TrafficPolicy locality failover with real Envoy, counted at the backends: EMR in zone a prefers HIS
// in zone a; when zone a's applications stop, a running loop of GETs moves to zone b without a failed
// request (retries and outlier detection feed the failover); when they come back, traffic returns.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeWithEnvoy, dumpLogsOnFailure } from '../helpers/envoy.ts';
import { loopbackAddress } from '../helpers/ports.ts';
import {
  failures,
  httpServiceYaml,
  nacks,
  outcome,
  routeConfigs,
  runLoad,
  shoot,
  startLoop,
  statSum,
  tally,
  TrafficMesh,
  trafficPolicyYaml,
  type MeshInstance,
  type Shot,
} from '../helpers/traffic.ts';
import { waitFor } from '../helpers/wait.ts';

const APP_PORT = 8080;
const EMR_TO_HIS = 9001;

const policy = trafficPolicyYaml(
  'his-zones',
  `destination: his
localityFailover: true
routes:
  - retries: { attempts: 3, on: [connect-failure, reset, 5xx], perTryTimeout: 2s }
outlierDetection: { consecutive5xx: 2, interval: 1s, baseEjectionTime: 2s, maxEjectionPercent: 50 }
`,
);

describeWithEnvoy('TrafficPolicy: zone failover (Envoy sidecars, counted at the backends)', () => {
  const mesh = new TrafficMesh();
  const zone = (name: string, z: 'a' | 'b'): MeshInstance => ({
    name,
    address: loopbackAddress(),
    locality: { region: 'r1', zone: z },
  });
  const his = [zone('his-a1', 'a'), zone('his-a2', 'a'), zone('his-b1', 'b'), zone('his-b2', 'b')];
  const zoneA = his.filter((h) => h.locality?.zone === 'a').map((h) => h.name);
  const zoneB = his.filter((h) => h.locality?.zone === 'b').map((h) => h.name);
  const emr: MeshInstance = {
    name: 'emr-1',
    address: loopbackAddress(),
    locality: { region: 'r1', zone: 'a' },
  };
  const nodes = [TrafficMesh.node('emr', emr.name)];
  const get = (): Promise<Shot> => shoot(`http://${emr.address}:${EMR_TO_HIS}/patients/42`);
  const zoneOf = (s: Shot) =>
    s.status !== 200
      ? outcome(s)
      : zoneA.includes(s.servedBy ?? '')
        ? 'a'
        : zoneB.includes(s.servedBy ?? '')
          ? 'b'
          : `? ${s.servedBy}`;

  beforeAll(async () => {
    await mesh.start({
      yaml: [
        httpServiceYaml('his', his, { meshPort: 15001, appPort: APP_PORT }),
        httpServiceYaml('emr', [emr], {
          meshPort: 15011,
          appPort: APP_PORT,
          upstreams: [`{ service: his, port: http, localPort: ${EMR_TO_HIS} }`],
        }),
      ].join('---\n'),
      sidecars: [...his.map((instance) => ({ service: 'his', instance })), { service: 'emr', instance: emr }],
      backends: his.map((instance) => ({ service: 'his', instance, port: APP_PORT })),
    });
    await waitFor(async () => (await get()).status === 200, {
      what: "EMR's sidecar to route to HIS",
      timeoutMs: 20_000,
    });
    await mesh.apply(policy);
    await mesh.waitForSync(nodes);
  });

  afterEach(dumpLogsOnFailure(() => mesh.envoys()));
  afterAll(() => mesh.stop());

  it("keeps EMR's calls in its own zone while zone a is healthy", async () => {
    const shots = await runLoad(get, { total: 100, concurrency: 4, maxMs: 10_000 });
    expect(failures(shots)).toEqual([]);
    expect(tally(shots, zoneOf)).toEqual(new Map([['a', 100]]));
    expect(new Set(shots.map((s) => s.servedBy))).toEqual(new Set(zoneA));
  });

  it('fails over to zone b without a failed GET when zone a stops, and comes back when it returns', async () => {
    const loop = startLoop(get, { total: 20_000, concurrency: 4, maxMs: 45_000 });
    const recent = (n: number) => loop.shots.slice(-n);
    let stoppedAt = -1;
    let restoredAt = -1;
    try {
      await waitFor(async () => loop.shots.length >= 50, {
        what: '50 GETs before zone a stops',
        timeoutMs: 10_000,
      });
      await Promise.all(zoneA.map((name) => mesh.stopBackend(name)));
      stoppedAt = loop.shots.length;
      await waitFor(
        async () => loop.shots.length >= stoppedAt + 100 && recent(100).every((s) => zoneOf(s) === 'b'),
        { what: '100 GETs in a row served by zone b', timeoutMs: 15_000 },
      );
      await Promise.all(zoneA.map((name) => mesh.restartBackend(name)));
      restoredAt = loop.shots.length;
      await waitFor(
        async () => loop.shots.length >= restoredAt + 100 && recent(100).every((s) => zoneOf(s) === 'a'),
        { what: '100 GETs in a row served by zone a again', timeoutMs: 20_000 },
      );
    } finally {
      await loop.stop();
    }
    const all = loop.shots;
    if (failures(all).length > 0) {
      // Where the failures fell (shot index relative to the stop and the restore) and what Envoy did.
      const at = all.flatMap((s, i) => (s.status === 200 ? [] : [i]));
      const emrEnvoy = mesh.sidecar(emr.name);
      const stats = await statSum(
        emrEnvoy,
        'cluster\\.outbound.*his.*\\.(upstream_rq_retry.*|retry_or_shadow_abandoned|outlier_detection\\.ejections_(active|enforced_total|enforced_consecutive_5xx)|upstream_rq_5xx)$',
      );
      const retry = JSON.stringify(
        (await routeConfigs(emrEnvoy)).map((r) =>
          JSON.stringify(r).match(/"retry_policy":\{[^}]*\}[^}]*\}/g),
        ),
      );
      console.error(
        `zone a stopped at shot ${stoppedAt}, restored at ${restoredAt}; failed shots ${at[0]}..${at.at(-1)}\n${JSON.stringify(stats.stats)}\n${retry}`,
      );
    }
    expect(
      failures(all),
      `${failures(all).length} of ${all.length} GETs failed; by zone: ${JSON.stringify(Object.fromEntries(tally(all, zoneOf)))}`,
    ).toEqual([]);
    expect(nacks(mesh.controlPlane, nodes)).toEqual([]);
  });
});
