// TrafficPolicy resilience with real Envoy, counted at the backends: retries that never repeat a
// clinical write (a POST without Idempotency-Key is executed at most once under upstream resets; a
// keyed POST, a GET and a PUT are retried and succeed), a circuit breaker at 10 concurrent requests
// that answers the 11th with 503 at once (and counts it in Envoy's stats), a per-route timeout, and a
// local rate limit enforced by the destination's sidecar.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeWithEnvoy, dumpLogsOnFailure, expectNoRejectedUpdates } from '../helpers/envoy.ts';
import { loopbackAddress } from '../helpers/ports.ts';
import {
  BACKEND_HEADERS,
  failures,
  httpServiceYaml,
  labelledInstances,
  nacks,
  runLoad,
  shoot,
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
const EMR_TO_LAB = 9003;
const SLOW_MS = 1_500;
const ROUTE_TIMEOUT_MS = 400;

const hisPolicy = trafficPolicyYaml(
  'his-resilience',
  `destination: his
port: http
subsets:
  - { name: all, labels: { app: his } }
routes:
  - match: { path: { prefix: /reports/slow } }
    to: [{ subset: all }]
    timeout: ${ROUTE_TIMEOUT_MS}ms
  - to: [{ subset: all }]
    timeout: 5s
    retries: { attempts: 3, on: [connect-failure, reset, 5xx], perTryTimeout: 2s }
connectionPool: { maxConnections: 100, maxPendingRequests: 1, maxRequests: 10, maxRetries: 3 }
idempotencyHeader: Idempotency-Key
`,
);

const RATE = { requestsPerSecond: 5, burst: 5 };
const labPolicy = trafficPolicyYaml(
  'lab-rate-limit',
  `destination: lab
rateLimit: { requestsPerSecond: ${RATE.requestsPerSecond}, burst: ${RATE.burst} }
`,
);

describeWithEnvoy(
  'TrafficPolicy: safe retries, circuit breaking, timeouts and rate limiting (Envoy sidecars, counted at the backends)',
  () => {
    const mesh = new TrafficMesh();
    const his = labelledInstances('his', [{ app: 'his' }, { app: 'his' }]);
    const lab = labelledInstances('lab', [{ app: 'lab' }]);
    const emr: MeshInstance = { name: 'emr-1', address: loopbackAddress() };
    const nodes = [
      TrafficMesh.node('emr', emr.name),
      ...his.map((h) => TrafficMesh.node('his', h.name)),
      ...lab.map((l) => TrafficMesh.node('lab', l.name)),
    ];
    const hisUrl = (path: string) => `http://${emr.address}:${EMR_TO_HIS}${path}`;
    const labUrl = (path: string) => `http://${emr.address}:${EMR_TO_LAB}${path}`;
    let seq = 0;
    const testId = (what: string) => `${what}-${++seq}`;

    beforeAll(async () => {
      await mesh.start({
        yaml: [
          httpServiceYaml('his', his, { meshPort: 15001, appPort: APP_PORT }),
          httpServiceYaml('lab', lab, { meshPort: 15031, appPort: APP_PORT }),
          httpServiceYaml('emr', [emr], {
            meshPort: 15011,
            appPort: APP_PORT,
            upstreams: [
              `{ service: his, port: http, localPort: ${EMR_TO_HIS} }`,
              `{ service: lab, port: http, localPort: ${EMR_TO_LAB} }`,
            ],
          }),
        ].join('---\n'),
        sidecars: [
          ...his.map((instance) => ({ service: 'his', instance })),
          ...lab.map((instance) => ({ service: 'lab', instance })),
          { service: 'emr', instance: emr },
        ],
        backends: [
          ...his.map((instance) => ({ service: 'his', instance, port: APP_PORT })),
          ...lab.map((instance) => ({ service: 'lab', instance, port: APP_PORT })),
        ],
      });
      await waitFor(
        async () =>
          (await shoot(hisUrl('/warm-up'))).status === 200 &&
          (await shoot(labUrl('/warm-up'))).status === 200,
        {
          what: "EMR's sidecar to route to HIS and lab",
          timeoutMs: 20_000,
        },
      );
      await mesh.apply([hisPolicy, labPolicy].join('---\n'));
      await mesh.waitForSync(nodes);
    });

    afterEach(dumpLogsOnFailure(() => mesh.envoys()));
    afterAll(() => mesh.stop());

    /** A request the backends reset on its first execution, and answer on any later one. */
    async function underOneReset(
      method: string,
      headers: Record<string, string> = {},
    ): Promise<{ shot: Shot; executions: number }> {
      const id = testId(`reset-${method}`);
      const shot = await shoot(hisUrl('/orders'), {
        method,
        headers: {
          ...headers,
          [BACKEND_HEADERS.testId]: id,
          [BACKEND_HEADERS.resetFirst]: '1',
          'content-type': 'application/json',
        },
        ...(method === 'GET' ? {} : { body: JSON.stringify({ order: 'CBC', patient: 'P100042' }) }),
      });
      return { shot, executions: mesh.ledger.forTest(id).length };
    }

    it.each([['POST'], ['PATCH']])(
      'executes a %s without Idempotency-Key at most once under an upstream reset, and the caller sees the failure',
      async (method) => {
        const { shot, executions } = await underOneReset(method);
        expect(executions, `backend executions; client saw ${shot.status} ${shot.body}`).toBe(1);
        expect(shot.status).not.toBe(200);
      },
    );

    it.each([
      ['POST with Idempotency-Key', 'POST', { 'Idempotency-Key': 'order-7f3c' }],
      ['PATCH with Idempotency-Key', 'PATCH', { 'idempotency-key': 'order-7f3d' }],
      ['GET', 'GET', {}],
      ['PUT', 'PUT', {}],
      ['DELETE', 'DELETE', {}],
    ] as const)(
      'retries a %s after an upstream reset and succeeds (2 executions at the backends)',
      async (_what, method, headers) => {
        const { shot, executions } = await underOneReset(method, headers);
        expect(shot.status, shot.body).toBe(200);
        expect(executions).toBe(2);
      },
    );

    it('answers the 11th concurrent request with 503 at once while 10 slow ones are in flight, and counts the overflow', async () => {
      const emrEnvoy = mesh.sidecar(emr.name);
      // max_requests overflows count as upstream_rq_active_overflow (pending ones as ..._pending_overflow).
      const overflowRe = 'cluster\\..*his.*\\.upstream_rq_(active_|pending_)?overflow$';
      const before = await statSum(emrEnvoy, overflowRe);
      const inFlight = () => his.reduce((n, h) => n + mesh.backend(h.name).inFlight, 0);
      const slowIds = Array.from({ length: 10 }, () => testId('slow'));
      // One at a time: each needs its own upstream connection (HTTP/1.1), and while it is being made the
      // request is pending; with maxPendingRequests: 1 a burst of 10 on cold connections would overflow.
      const slow: Array<Promise<Shot>> = [];
      try {
        for (const [k, id] of slowIds.entries()) {
          slow.push(
            shoot(hisUrl('/reports/ward-7'), {
              headers: { [BACKEND_HEADERS.testId]: id, [BACKEND_HEADERS.delayMs]: String(SLOW_MS) },
            }),
          );
          await waitFor(async () => inFlight() === k + 1, {
            what: `${k + 1} slow requests in flight at the backends`,
            timeoutMs: 1_000,
            intervalMs: 5,
          });
        }
        const id = testId('eleventh');
        const eleventh = await shoot(hisUrl('/reports/ward-7'), {
          headers: { [BACKEND_HEADERS.testId]: id },
        });
        const stillInFlight = inFlight();
        expect(eleventh.status, `${eleventh.body} ${JSON.stringify(eleventh.headers)}`).toBe(503);
        expect(eleventh.ms, 'the 11th must be refused at once, not queued behind the slow ones').toBeLessThan(
          SLOW_MS / 3,
        );
        expect(stillInFlight).toBe(10);
        expect(mesh.ledger.forTest(id), 'the 11th must not reach a backend').toEqual([]);
        const after = await statSum(emrEnvoy, overflowRe);
        expect(after.sum - before.sum, JSON.stringify(after.stats)).toBeGreaterThanOrEqual(1);
        // The breaker is open while the 10 are in flight.
        const open = await statSum(emrEnvoy, 'cluster\\..*his.*\\.circuit_breakers\\.default\\.rq_open$');
        expect(open.sum, JSON.stringify(open.stats)).toBeGreaterThanOrEqual(1);
      } finally {
        const done = await Promise.all(slow);
        expect(failures(done)).toEqual([]);
      }
      for (const id of slowIds) expect(mesh.ledger.forTest(id)).toHaveLength(1);
    });

    it('ends a request at the route timeout with 504', async () => {
      const id = testId('timeout');
      const shot = await shoot(hisUrl('/reports/slow/ward-7'), {
        headers: { [BACKEND_HEADERS.testId]: id, [BACKEND_HEADERS.delayMs]: '2000' },
      });
      expect(shot.status, shot.body).toBe(504);
      expect(shot.ms).toBeGreaterThanOrEqual(ROUTE_TIMEOUT_MS - 20);
      expect(shot.ms).toBeLessThan(1_500);
      expect(mesh.ledger.forTest(id).length).toBeGreaterThanOrEqual(1);
    });

    it("answers over the destination's rate limit with 429, executed only what it let through, and lets requests through again once the bucket refills", async () => {
      const id = testId('rate');
      const start = Date.now();
      const shots = await runLoad(
        () => shoot(labUrl('/results/CBC'), { headers: { [BACKEND_HEADERS.testId]: id } }),
        { total: 40, concurrency: 10, maxMs: 10_000 },
      );
      const elapsedS = (Date.now() - start) / 1000;
      const statuses = tally(shots, (s) => String(s.status));
      const ok = statuses.get('200') ?? 0;
      const limited = statuses.get('429') ?? 0;
      expect(ok + limited, JSON.stringify(Object.fromEntries(statuses))).toBe(40);
      expect(limited, JSON.stringify(Object.fromEntries(statuses))).toBeGreaterThanOrEqual(10);
      expect(ok).toBeGreaterThanOrEqual(1);
      expect(ok).toBeLessThanOrEqual(RATE.burst + Math.ceil(RATE.requestsPerSecond * elapsedS) + 1);
      // Counted at the backend: only what the sidecar let through was executed.
      expect(mesh.ledger.forTest(id)).toHaveLength(ok);
      // Enforced by lab's own sidecar (the destination), not by the caller's.
      const labStats = await statSum(mesh.sidecar(lab[0]!.name), 'rate_limited');
      expect(labStats.sum, JSON.stringify(labStats.stats)).toBeGreaterThanOrEqual(limited);
      await waitFor(async () => (await shoot(labUrl('/results/CBC'))).status === 200, {
        what: 'lab to answer 200 again once the bucket refills',
        timeoutMs: 5_000,
        intervalMs: 250,
      });
    });

    it('left Envoy with no rejected update and no NACK', async () => {
      await expectNoRejectedUpdates(mesh.envoys());
      expect(nacks(mesh.controlPlane, nodes)).toEqual([]);
    });
  },
);
