// TrafficPolicy for a proxyless gRPC client (grpc-js-xds), with real calls counted at the imaging
// servers (behind real Envoy sidecars in STRICT mTLS): an 80/20 split between subsets, and ring hash
// on a metadata header so that every call about one patient reaches one instance.
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeWithEnvoy, dumpLogsOnFailure } from '../helpers/envoy.ts';
import { dropConnectionsTo, startImagingServer, type GrpcUpstream } from '../helpers/grpc.ts';
import { startNodeAgent } from '../helpers/mesh.ts';
import { loopbackAddress } from '../helpers/ports.ts';
import {
  httpServiceYaml,
  labelledInstances,
  nacks,
  percentOf,
  tally,
  TrafficMesh,
  trafficPolicyYaml,
  type MeshInstance,
  type ProxylessCaller,
  proxylessCaller,
} from '../helpers/traffic.ts';
import { waitFor } from '../helpers/wait.ts';

const IMAGING_MESH_PORT = 15041;
const IMAGING_APP_PORT = 50051;
const CALLS = 800;
const PATIENTS = 60;

const SUBSETS = `subsets:
  - { name: stable, labels: { version: v1 } }
  - { name: canary, labels: { version: v2 } }`;

describeWithEnvoy(
  'TrafficPolicy for a proxyless gRPC client (grpc-js-xds): weighted split and ring hash',
  () => {
    const mesh = new TrafficMesh();
    const imaging = labelledInstances('imaging', [{ version: 'v1' }, { version: 'v1' }, { version: 'v2' }]);
    const stable = imaging.filter((i) => i.meta?.version === 'v1').map((i) => i.name);
    const canary = imaging.filter((i) => i.meta?.version === 'v2').map((i) => i.name);
    const emr: MeshInstance = { name: 'emr-1', address: loopbackAddress() };
    const emrNode = TrafficMesh.node('emr', emr.name);
    const servers: GrpcUpstream[] = [];
    let client: ProxylessCaller | undefined;

    /** `calls` calls, 8 at a time, bounded in time; metadata per call. */
    async function callMany(
      calls: number,
      metadata: (i: number) => Record<string, string> = () => ({}),
    ): Promise<Array<{ servedBy: string; md: Record<string, string> }>> {
      const out: Array<{ servedBy: string; md: Record<string, string> }> = [];
      const errors: string[] = [];
      const deadline = Date.now() + 30_000;
      let next = 0;
      const worker = async () => {
        while (next < calls && Date.now() < deadline) {
          const i = next++;
          const md = metadata(i);
          try {
            out.push({ servedBy: (await client!.query(`study-${i}`, md)).served_by, md });
          } catch (err) {
            errors.push((err as Error).message);
          }
        }
      };
      await Promise.all(Array.from({ length: 8 }, worker));
      expect(errors).toEqual([]);
      expect(out).toHaveLength(calls);
      return out;
    }

    beforeAll(async () => {
      await mesh.start({
        yaml: [
          httpServiceYaml('imaging', imaging, {
            meshPort: IMAGING_MESH_PORT,
            appPort: IMAGING_APP_PORT,
            protocol: 'grpc',
          }),
          httpServiceYaml('emr', [emr], {
            meshPort: 15011,
            appPort: 8080,
            upstreams: ['{ service: imaging, port: grpc, localPort: 9201 }'],
          }),
        ].join('---\n'),
        sidecars: imaging.map((instance) => ({ service: 'imaging', instance })),
      });
      for (const i of imaging)
        servers.push(await startImagingServer({ name: i.name, host: i.address, port: IMAGING_APP_PORT }));
      mesh.onStop(() => Promise.all(servers.map((s) => s.close())));
      const agent = await startNodeAgent(mesh.controlPlane, 'emr', emr.name, { proxyless: true });
      mesh.onStop(() => {
        client?.close();
        if (agent.xdsProxyPort) dropConnectionsTo(agent.xdsProxyPort);
        agent.stop();
      });
      client = proxylessCaller(
        'imaging.clinical',
        JSON.parse(await readFile(agent.bootstrapPath, 'utf8')) as object,
      );
      await waitFor(async () => (await client!.query('warm-up', {}, 2_000)).served_by, {
        what: 'the proxyless client to reach imaging',
        timeoutMs: 20_000,
      });
    });

    afterEach(dumpLogsOnFailure(() => mesh.envoys()));
    afterAll(() => mesh.stop());

    it(`follows an 80/20 split between subsets over ${CALLS} calls within ±5 points`, async () => {
      await mesh.apply(
        trafficPolicyYaml(
          'imaging-canary',
          `destination: imaging
${SUBSETS}
routes:
  - to: [{ subset: stable, weight: 80 }, { subset: canary, weight: 20 }]
`,
        ),
      );
      await mesh.waitForSync([emrNode]);
      const countsBefore = servers.map((s) => s.count);
      const calls = await callMany(CALLS);
      const bySubset = tally(calls, (c) =>
        stable.includes(c.servedBy) ? 'stable' : canary.includes(c.servedBy) ? 'canary' : c.servedBy,
      );
      const share = percentOf(bySubset, ['canary']);
      expect(share, JSON.stringify(Object.fromEntries(bySubset))).toBeGreaterThanOrEqual(15);
      expect(share, JSON.stringify(Object.fromEntries(bySubset))).toBeLessThanOrEqual(25);
      // Counted at the servers as well as by the answers.
      const served = servers.map((s, i) => s.count - countsBefore[i]!);
      const canaryServed = servers.reduce((n, s, i) => n + (canary.includes(s.name) ? served[i]! : 0), 0);
      expect(served.reduce((a, b) => a + b, 0)).toBe(CALLS);
      expect(canaryServed).toBe(bySubset.get('canary') ?? 0);
      expect(nacks(mesh.controlPlane, [emrNode])).toEqual([]);
    });

    it('aborts calls carrying x-fault-drill with UNAVAILABLE before any server sees them; others pass', async () => {
      await mesh.apply(
        trafficPolicyYaml(
          'imaging-canary',
          `destination: imaging
routes:
  - fault: { abort: { status: 503, percent: 100 }, onlyWithHeader: x-fault-drill }
`,
        ),
      );
      await mesh.waitForSync([emrNode]);
      const before = servers.reduce((n, s) => n + s.count, 0);
      const drilled: string[] = [];
      for (let i = 0; i < 10; i++) {
        try {
          await client!.query(`drill-${i}`, { 'x-fault-drill': 'true' });
          drilled.push('OK');
        } catch (err) {
          drilled.push(String((err as { code?: number }).code));
        }
      }
      // HTTP 503 maps to gRPC UNAVAILABLE (14).
      expect(drilled).toEqual(Array.from({ length: 10 }, () => String(grpc.status.UNAVAILABLE)));
      expect(
        servers.reduce((n, s) => n + s.count, 0),
        'aborted calls must reach no server',
      ).toBe(before);
      const passed = await callMany(10);
      expect(passed).toHaveLength(10);
      expect(servers.reduce((n, s) => n + s.count, 0)).toBe(before + 10);
    });

    it('sends every call with one x-patient-id to one instance under ring hash', async () => {
      await mesh.apply(
        trafficPolicyYaml(
          'imaging-canary',
          `destination: imaging
loadBalancer: { policy: RING_HASH, hashHeader: x-patient-id }
`,
        ),
      );
      await mesh.waitForSync([emrNode]);
      const calls = await callMany(PATIENTS * 5, (i) => ({ 'x-patient-id': `P${100_000 + (i % PATIENTS)}` }));
      const byPatient = new Map<string, Set<string>>();
      for (const c of calls) {
        const p = c.md['x-patient-id']!;
        byPatient.set(p, (byPatient.get(p) ?? new Set()).add(c.servedBy));
      }
      const split = [...byPatient.entries()]
        .filter(([, s]) => s.size > 1)
        .map(([p, s]) => `${p}: ${[...s].join(',')}`);
      expect(split, 'patients served by more than one instance').toEqual([]);
      const used = new Set(calls.map((c) => c.servedBy));
      expect(used.size, `instances used: ${[...used].join(',')}`).toBeGreaterThanOrEqual(2);
      expect(nacks(mesh.controlPlane, [emrNode])).toEqual([]);
    });
  },
);
