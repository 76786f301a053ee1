// TrafficPolicy with real Envoy and real traffic, counted at the backends: a canary split of HIS
// (95/5 measured over 2000 requests), moved to 50/50 by apply while a request loop runs without a
// failed request, and routing by match (path, header, method) to a subset.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeWithEnvoy, dumpLogsOnFailure, expectNoRejectedUpdates } from '../helpers/envoy.ts';
import { NS } from '../helpers/mesh.ts';
import { loopbackAddress } from '../helpers/ports.ts';
import {
  BACKEND_HEADERS,
  failures,
  httpServiceYaml,
  labelledInstances,
  nacks,
  outcome,
  percentOf,
  routeConfigs,
  runLoad,
  shoot,
  startLoop,
  tally,
  TrafficMesh,
  trafficPolicyYaml,
  type MeshInstance,
  type Shot,
} from '../helpers/traffic.ts';
import { waitFor } from '../helpers/wait.ts';

const HIS_MESH_PORT = 15001;
const HIS_APP_PORT = 8080;
const EMR_TO_HIS = 9001;

const SUBSETS = `subsets:
  - { name: stable, labels: { version: v1 } }
  - { name: canary, labels: { version: v2 } }`;

const split = (stable: number, canary: number) =>
  trafficPolicyYaml(
    'his-canary',
    `destination: his
port: http
from: [{ service: emr }]
${SUBSETS}
routes:
  - to: [{ subset: stable, weight: ${stable} }, { subset: canary, weight: ${canary} }]
`,
  );

describeWithEnvoy(
  'TrafficPolicy: canary split and routing by match (Envoy sidecars, counted at the backends)',
  () => {
    const mesh = new TrafficMesh();
    const his = labelledInstances('his', [{ version: 'v1' }, { version: 'v1' }, { version: 'v2' }]);
    const stable = his.filter((h) => h.meta?.version === 'v1').map((h) => h.name);
    const canary = his.filter((h) => h.meta?.version === 'v2').map((h) => h.name);
    const emr: MeshInstance = { name: 'emr-1', address: loopbackAddress() };
    // A second caller the canary policy does not name in `from`: it keeps plain round robin over all of HIS.
    const portal: MeshInstance = { name: 'portal-1', address: loopbackAddress() };
    const nodes = [
      TrafficMesh.node('emr', emr.name),
      TrafficMesh.node('portal', portal.name),
      ...his.map((h) => TrafficMesh.node('his', h.name)),
    ];
    const url = (path: string) => `http://${emr.address}:${EMR_TO_HIS}${path}`;
    const get = (
      path = '/patients/42',
      headers: Record<string, string> = {},
      method = 'GET',
    ): Promise<Shot> => shoot(url(path), { method, headers });
    const subsetOf = (s: Shot) =>
      s.status !== 200
        ? outcome(s)
        : stable.includes(s.servedBy ?? '')
          ? 'stable'
          : canary.includes(s.servedBy ?? '')
            ? 'canary'
            : `? ${s.servedBy}`;

    beforeAll(async () => {
      await mesh.start({
        yaml: [
          httpServiceYaml('his', his, { meshPort: HIS_MESH_PORT, appPort: HIS_APP_PORT }),
          httpServiceYaml('emr', [emr], {
            meshPort: 15011,
            appPort: 8080,
            upstreams: [`{ service: his, port: http, localPort: ${EMR_TO_HIS} }`],
          }),
          httpServiceYaml('portal', [portal], {
            meshPort: 15051,
            appPort: 8080,
            upstreams: [`{ service: his, port: http, localPort: ${EMR_TO_HIS} }`],
          }),
        ].join('---\n'),
        sidecars: [
          ...his.map((instance) => ({ service: 'his', instance })),
          { service: 'emr', instance: emr },
          { service: 'portal', instance: portal },
        ],
        backends: his.map((instance) => ({ service: 'his', instance, port: HIS_APP_PORT })),
      });
      await waitFor(async () => (await get()).status === 200, {
        what: "EMR's sidecar to route to HIS",
        timeoutMs: 20_000,
      });
      await waitFor(
        async () => (await shoot(`http://${portal.address}:${EMR_TO_HIS}/warm-up`)).status === 200,
        { what: "the portal's sidecar to route to HIS", timeoutMs: 20_000 },
      );
    });

    afterEach(dumpLogsOnFailure(() => mesh.envoys()));
    afterAll(() => mesh.stop());

    async function applyAndSync(yaml: string): Promise<void> {
      await mesh.apply(yaml);
      await mesh.waitForSync(nodes);
    }

    it('splits 95/5 between stable and canary over 2000 requests within ±2 points', async () => {
      await applyAndSync(split(95, 5));
      const shots = await runLoad(() => get(), { total: 2000, concurrency: 16, maxMs: 40_000 });
      const bySubset = tally(shots, subsetOf);
      expect(shots).toHaveLength(2000);
      expect(failures(shots)).toEqual([]);
      const canaryShare = percentOf(bySubset, ['canary']);
      expect(canaryShare, JSON.stringify(Object.fromEntries(bySubset))).toBeGreaterThanOrEqual(3);
      expect(canaryShare, JSON.stringify(Object.fromEntries(bySubset))).toBeLessThanOrEqual(7);
      // Counted at the backends too: every 200 was executed by the instance that answered it.
      const executed = mesh.ledger.byBackend();
      expect([...executed.keys()].sort()).toEqual(his.map((h) => h.name).sort());
      expect(nacks(mesh.controlPlane, nodes)).toEqual([]);
    });

    it('leaves a caller the policy does not name in `from` on plain round robin over every instance', async () => {
      const shots = await runLoad(() => shoot(`http://${portal.address}:${EMR_TO_HIS}/patients/42`), {
        total: 150,
        concurrency: 6,
        maxMs: 20_000,
      });
      expect(failures(shots)).toEqual([]);
      const bySubset = tally(shots, subsetOf);
      // Round robin over 2 stable + 1 canary instances: a third to canary, far from the policy's 5 %.
      expect(
        percentOf(bySubset, ['canary']),
        JSON.stringify(Object.fromEntries(bySubset)),
      ).toBeGreaterThanOrEqual(20);
      expect(new Set(shots.map((s) => s.servedBy))).toEqual(new Set(his.map((h) => h.name)));
    });

    it('moves the split to 50/50 by apply during a running request loop without a failed request', async () => {
      const loop = startLoop(() => get(), { total: 20_000, concurrency: 8, maxMs: 40_000 });
      try {
        await waitFor(async () => loop.shots.length >= 300, {
          what: '300 requests before the apply',
          timeoutMs: 15_000,
        });
        await applyAndSync(split(50, 50));
        const atSync = loop.shots.length;
        await waitFor(async () => loop.shots.length >= atSync + 300, {
          what: '300 more requests after the sidecars ACKed',
          timeoutMs: 15_000,
        });
      } finally {
        await loop.stop();
      }
      const all = loop.shots;
      expect(all.length).toBeGreaterThanOrEqual(600);
      expect(failures(all), `${failures(all).length} of ${all.length} requests failed`).toEqual([]);

      const after = await runLoad(() => get(), { total: 1000, concurrency: 16, maxMs: 30_000 });
      const bySubset = tally(after, subsetOf);
      expect(failures(after)).toEqual([]);
      expect(
        percentOf(bySubset, ['canary']),
        JSON.stringify(Object.fromEntries(bySubset)),
      ).toBeGreaterThanOrEqual(45);
      expect(
        percentOf(bySubset, ['canary']),
        JSON.stringify(Object.fromEntries(bySubset)),
      ).toBeLessThanOrEqual(55);
    });

    it('routes by path prefix, header and method to the canary subset, everything else to stable', async () => {
      await applyAndSync(
        trafficPolicyYaml(
          'his-canary',
          `destination: his
${SUBSETS}
routes:
  - match: { path: { prefix: /orders }, headers: [{ name: x-canary, exact: "true" }], methods: [GET] }
    to: [{ subset: canary }]
  - to: [{ subset: stable }]
`,
        ),
      );
      const cases: Array<{
        what: string;
        path: string;
        headers: Record<string, string>;
        method: string;
        expected: 'stable' | 'canary';
      }> = [
        {
          what: 'GET /orders with x-canary: true',
          path: '/orders/17',
          headers: { 'x-canary': 'true' },
          method: 'GET',
          expected: 'canary',
        },
        {
          what: 'GET /orders without the header',
          path: '/orders/17',
          headers: {},
          method: 'GET',
          expected: 'stable',
        },
        {
          what: 'GET /orders with x-canary: false',
          path: '/orders/17',
          headers: { 'x-canary': 'false' },
          method: 'GET',
          expected: 'stable',
        },
        {
          what: 'POST /orders with x-canary: true (method not matched)',
          path: '/orders',
          headers: { 'x-canary': 'true' },
          method: 'POST',
          expected: 'stable',
        },
        {
          what: 'GET /patients with x-canary: true (path not matched)',
          path: '/patients/42',
          headers: { 'x-canary': 'true' },
          method: 'GET',
          expected: 'stable',
        },
      ];
      for (const c of cases) {
        const before = mesh.ledger.all().length;
        const shots = await runLoad(
          () => get(c.path, { ...c.headers, [BACKEND_HEADERS.testId]: `match-${c.what}` }, c.method),
          { total: 20, concurrency: 4, maxMs: 10_000 },
        );
        expect(tally(shots, subsetOf), c.what).toEqual(new Map([[c.expected, 20]]));
        // Counted at the backends: the 20 executions are on the expected subset's instances.
        const executed = mesh.ledger.all().slice(before);
        const names = c.expected === 'canary' ? canary : stable;
        expect(executed.filter((e) => names.includes(e.backend)).length, c.what).toBe(20);
      }
    });

    it('routes by exact path and by regex path to a subset', async () => {
      await applyAndSync(
        trafficPolicyYaml(
          'his-canary',
          `destination: his
${SUBSETS}
routes:
  - match: { path: { exact: /admin/version } }
    to: [{ subset: canary }]
  - match: { path: { regex: "^/patients/[0-9]+/images$" } }
    to: [{ subset: canary }]
  - to: [{ subset: stable }]
`,
        ),
      );
      const cases: Array<[string, 'stable' | 'canary']> = [
        ['/admin/version', 'canary'],
        ['/admin/version/2', 'stable'],
        ['/patients/42/images', 'canary'],
        ['/patients/abc/images', 'stable'],
        ['/patients/42/images/1', 'stable'],
      ];
      for (const [path, expected] of cases) {
        const shots = await runLoad(() => get(path), { total: 10, concurrency: 2, maxMs: 10_000 });
        expect(tally(shots, subsetOf), path).toEqual(new Map([[expected, 10]]));
      }
    });

    it('left Envoy with no rejected update and the policy in its routes', async () => {
      const emrEnvoy = mesh.sidecar(emr.name);
      await expectNoRejectedUpdates(mesh.envoys());
      const routes = JSON.stringify(await routeConfigs(emrEnvoy));
      expect(routes).toContain(`his.${NS}`);
    });
  },
);
