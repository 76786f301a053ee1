// TrafficPolicy drills with real Envoy, measured at the backends: an abort (503, 100 %) injected only
// for requests carrying x-fault-drill never reaches a backend while other requests pass; a fixed
// delay is measured by the caller; and every request served by the stable subset is mirrored to the
// canary subset (seen there with Envoy's `-shadow` host suffix), the caller seeing only stable's answer.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeWithEnvoy, dumpLogsOnFailure, expectNoRejectedUpdates } from '../helpers/envoy.ts';
import { loopbackAddress } from '../helpers/ports.ts';
import {
  BACKEND_HEADERS,
  failures,
  httpServiceYaml,
  labelledInstances,
  nacks,
  outcome,
  runLoad,
  shoot,
  statSum,
  tally,
  TrafficMesh,
  trafficPolicyYaml,
  type MeshInstance,
} from '../helpers/traffic.ts';
import { waitFor } from '../helpers/wait.ts';

const APP_PORT = 8080;
const EMR_TO_HIS = 9001;
const DELAY_MS = 300;

const policy = trafficPolicyYaml(
  'his-drills',
  `destination: his
port: http
subsets:
  - { name: stable, labels: { version: v1 } }
  - { name: canary, labels: { version: v2 } }
routes:
  - match: { path: { prefix: /drill/slow } }
    to: [{ subset: stable }]
    fault: { delay: { fixed: ${DELAY_MS}ms, percent: 100 } }
  - to: [{ subset: stable }]
    fault: { abort: { status: 503, percent: 100 }, onlyWithHeader: x-fault-drill }
    mirror: { subset: canary, percent: 100 }
`,
);

describeWithEnvoy(
  'TrafficPolicy: fault injection and mirroring (Envoy sidecars, measured at the backends)',
  () => {
    const mesh = new TrafficMesh();
    const his = labelledInstances('his', [{ version: 'v1' }, { version: 'v2' }]);
    const [stable, canary] = his as [MeshInstance, MeshInstance];
    const emr: MeshInstance = { name: 'emr-1', address: loopbackAddress() };
    const nodes = [TrafficMesh.node('emr', emr.name), ...his.map((h) => TrafficMesh.node('his', h.name))];
    const url = (path: string) => `http://${emr.address}:${EMR_TO_HIS}${path}`;
    let seq = 0;
    const testId = (what: string) => `${what}-${++seq}`;

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
        sidecars: [
          ...his.map((instance) => ({ service: 'his', instance })),
          { service: 'emr', instance: emr },
        ],
        backends: his.map((instance) => ({ service: 'his', instance, port: APP_PORT })),
      });
      await waitFor(async () => (await shoot(url('/warm-up'))).status === 200, {
        what: "EMR's sidecar to route to HIS",
        timeoutMs: 20_000,
      });
      await mesh.apply(policy);
      await mesh.waitForSync(nodes);
    });

    afterEach(dumpLogsOnFailure(() => mesh.envoys()));
    afterAll(() => mesh.stop());

    it('aborts requests carrying x-fault-drill with 503 before any backend sees them; others pass to stable', async () => {
      const drill = testId('drill');
      const drilled = await runLoad(
        () =>
          shoot(url('/orders/1'), { headers: { 'x-fault-drill': 'true', [BACKEND_HEADERS.testId]: drill } }),
        { total: 20, concurrency: 4, maxMs: 10_000 },
      );
      expect(tally(drilled, (s) => String(s.status))).toEqual(new Map([['503', 20]]));
      expect(mesh.ledger.forTest(drill), 'aborted requests must reach no backend (nor be mirrored)').toEqual(
        [],
      );

      const plain = testId('plain');
      const passed = await runLoad(
        () => shoot(url('/orders/1'), { headers: { [BACKEND_HEADERS.testId]: plain } }),
        { total: 20, concurrency: 4, maxMs: 10_000 },
      );
      expect(tally(passed, outcome)).toEqual(new Map([[stable.name, 20]]));
      await waitFor(
        async () => mesh.ledger.forTest(plain).filter((e) => e.backend === stable.name).length === 20,
        { what: 'stable to have executed the 20 plain requests', timeoutMs: 5_000 },
      );

      const injected = await statSum(mesh.sidecar(emr.name), 'fault\\..*aborts_injected');
      expect(injected.sum, JSON.stringify(injected.stats)).toBeGreaterThanOrEqual(20);
    });

    it(`delays requests on the drill route by at least ${DELAY_MS} ms`, async () => {
      const fast = await runLoad(() => shoot(url('/orders/1')), { total: 5, concurrency: 1, maxMs: 10_000 });
      const id = testId('delay');
      const slow = await runLoad(
        () => shoot(url('/drill/slow/orders/1'), { headers: { [BACKEND_HEADERS.testId]: id } }),
        { total: 10, concurrency: 2, maxMs: 20_000 },
      );
      expect(failures(slow)).toEqual([]);
      expect(tally(slow, outcome)).toEqual(new Map([[stable.name, 10]]));
      for (const s of slow) expect(s.ms).toBeGreaterThanOrEqual(DELAY_MS - 5);
      expect(Math.max(...fast.map((s) => s.ms)), 'requests off the drill route are not delayed').toBeLessThan(
        DELAY_MS,
      );
      expect(mesh.ledger.forTest(id)).toHaveLength(10);
      const injected = await statSum(mesh.sidecar(emr.name), 'fault\\..*delays_injected');
      expect(injected.sum, JSON.stringify(injected.stats)).toBeGreaterThanOrEqual(10);
    });

    it('mirrors every request served by stable to canary, with a -shadow host, and answers from stable only', async () => {
      const ids = Array.from({ length: 50 }, () => testId('mirror'));
      const shots = await runLoad(
        (i) => shoot(url(`/patients/${i}`), { headers: { [BACKEND_HEADERS.testId]: ids[i]! } }),
        { total: ids.length, concurrency: 5, maxMs: 15_000 },
      );
      expect(tally(shots, outcome)).toEqual(new Map([[stable.name, ids.length]]));
      const shadows = await waitFor(
        async () => {
          const seen = ids.map((id) => mesh.ledger.forTest(id).filter((e) => e.backend === canary.name));
          return seen.every((s) => s.length === 1) ? seen.flat() : undefined;
        },
        { what: `canary to see each of the ${ids.length} requests once (mirrored)`, timeoutMs: 5_000 },
      );
      for (const e of shadows) expect(e.host).toMatch(/-shadow(:\d+)?$/);
      for (const id of ids)
        expect(mesh.ledger.forTest(id).filter((e) => e.backend === stable.name)).toHaveLength(1);
      // Since the policy, nothing reached canary except shadows (the warm-up before it carries no test id).
      expect(
        mesh.ledger
          .all()
          .filter((e) => e.backend === canary.name && e.testId !== undefined && !e.host.includes('-shadow')),
      ).toEqual([]);
    });

    it('left Envoy with no rejected update and no NACK', async () => {
      await expectNoRejectedUpdates(mesh.envoys());
      expect(nacks(mesh.controlPlane, nodes)).toEqual([]);
    });
  },
);
