// TrafficPolicy consistent hashing with real Envoy: every call about one patient (`x-patient-id`)
// reaches one instance, counted at the backends, and removing one of four instances moves only about
// a quarter of the patients. Once with RING_HASH (HIS) and once with MAGLEV (PACS), each on its own
// four instances so the two do not share a history.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { describeWithEnvoy, dumpLogsOnFailure } from '../helpers/envoy.ts';
import { loopbackAddress } from '../helpers/ports.ts';
import {
  BACKEND_HEADERS,
  failures,
  hostsOf,
  httpServiceYaml,
  labelledInstances,
  nacks,
  runLoad,
  shoot,
  TrafficMesh,
  trafficPolicyYaml,
  type MeshInstance,
} from '../helpers/traffic.ts';
import { waitFor } from '../helpers/wait.ts';

const APP_PORT = 8080;
const PATIENTS = 200;
const CALLS_PER_PATIENT = 5;

interface Destination {
  readonly service: 'his' | 'pacs';
  readonly policy: 'RING_HASH' | 'MAGLEV';
  readonly meshPort: number;
  readonly localPort: number;
  readonly instances: MeshInstance[];
}

describeWithEnvoy('TrafficPolicy: patient affinity by consistent hashing (Envoy sidecars, counted at the backends)', () => {
  const mesh = new TrafficMesh();
  const destinations: Destination[] = [
    { service: 'his', policy: 'RING_HASH', meshPort: 15001, localPort: 9001, instances: labelledInstances('his', [{}, {}, {}, {}]) },
    { service: 'pacs', policy: 'MAGLEV', meshPort: 15021, localPort: 9002, instances: labelledInstances('pacs', [{}, {}, {}, {}]) },
  ];
  const emr: MeshInstance = { name: 'emr-1', address: loopbackAddress() };
  const emrNode = TrafficMesh.node('emr', emr.name);
  const patient = (i: number) => `P${String(100_000 + i)}`;
  const serviceYaml = (d: Destination, instances = d.instances) => httpServiceYaml(d.service, instances, { meshPort: d.meshPort, appPort: APP_PORT });
  const policyYaml = (d: Destination) =>
    trafficPolicyYaml(
      `${d.service}-affinity`,
      `destination: ${d.service}
loadBalancer: { policy: ${d.policy}, hashHeader: x-patient-id }
`,
    );

  beforeAll(async () => {
    const all = destinations.flatMap((d) => d.instances.map((instance) => ({ service: d.service, instance })));
    await mesh.start({
      yaml: [
        ...destinations.map((d) => serviceYaml(d)),
        httpServiceYaml('emr', [emr], { meshPort: 15011, appPort: APP_PORT, upstreams: destinations.map((d) => `{ service: ${d.service}, port: http, localPort: ${d.localPort} }`) }),
      ].join('---\n'),
      sidecars: [...all, { service: 'emr', instance: emr }],
      backends: all.map((w) => ({ ...w, port: APP_PORT })),
    });
    for (const d of destinations) {
      await waitFor(async () => (await shoot(`http://${emr.address}:${d.localPort}/warm-up`)).status === 200, { what: `EMR's sidecar to route to ${d.service}`, timeoutMs: 20_000 });
    }
  });

  afterEach(dumpLogsOnFailure(() => mesh.envoys()));
  afterAll(() => mesh.stop());

  /** Calls `calls` times per patient (interleaved), tagged `phase`; returns patient → backends, from the ledger. */
  async function callPatients(d: Destination, phase: string, calls: number): Promise<Map<string, Set<string>>> {
    const shots = await runLoad(
      (i) =>
        shoot(`http://${emr.address}:${d.localPort}/patients/${patient(i % PATIENTS)}/studies`, {
          headers: { 'x-patient-id': patient(i % PATIENTS), [BACKEND_HEADERS.testId]: phase },
        }),
      { total: PATIENTS * calls, concurrency: 12, maxMs: 40_000 },
    );
    expect(shots).toHaveLength(PATIENTS * calls);
    expect(failures(shots)).toEqual([]);
    const byPatient = new Map<string, Set<string>>();
    for (const e of mesh.ledger.forTest(phase)) {
      const id = String(e.headers['x-patient-id']);
      byPatient.set(id, (byPatient.get(id) ?? new Set()).add(e.backend));
    }
    expect(byPatient.size).toBe(PATIENTS);
    return byPatient;
  }

  async function waitForHosts(d: Destination, n: number): Promise<void> {
    await waitFor(
      async () => {
        const hosts = await hostsOf(mesh.sidecar(emr.name), `${d.service}.`);
        const all = Object.values(hosts).flat();
        return all.length > 0 && Object.values(hosts).every((h) => h.length === n && h.every((a) => !a.includes('('))) ? hosts : undefined;
      },
      { what: `EMR's sidecar to hold ${n} healthy ${d.service} hosts`, timeoutMs: 15_000 },
    );
  }

  it.each(destinations)('$policy: all of a patient’s calls reach one instance; removing 1 of 4 instances moves at most 35 percent of patients', async (d) => {
    await mesh.apply(policyYaml(d));
    await mesh.waitForSync([emrNode]);
    await waitForHosts(d, 4);

    const before = await callPatients(d, `${d.policy}-before`, CALLS_PER_PATIENT);
    const split = [...before.entries()].filter(([, backends]) => backends.size !== 1);
    expect(split.map(([p, b]) => `${p}: ${[...b].join(',')}`), 'patients served by more than one instance').toEqual([]);
    const perInstance = new Map<string, number>();
    for (const [, backends] of before) for (const b of backends) perInstance.set(b, (perInstance.get(b) ?? 0) + 1);
    // Hashing spreads the patients: every instance has some (25 % each ideally).
    expect([...perInstance.keys()].sort(), JSON.stringify(Object.fromEntries(perInstance))).toEqual(d.instances.map((i) => i.name).sort());
    expect(Math.min(...perInstance.values()), JSON.stringify(Object.fromEntries(perInstance))).toBeGreaterThanOrEqual(PATIENTS / 10);

    const removed = d.instances[3]!;
    await mesh.apply(serviceYaml(d, d.instances.slice(0, 3)));
    await mesh.waitForSync([emrNode]);
    await waitForHosts(d, 3);

    const after = await callPatients(d, `${d.policy}-after`, 2);
    const stillSplit = [...after.entries()].filter(([, backends]) => backends.size !== 1);
    expect(stillSplit.map(([p, b]) => `${p}: ${[...b].join(',')}`), 'patients served by more than one instance after the removal').toEqual([]);
    expect([...after.values()].some((b) => b.has(removed.name)), `${removed.name} still served`).toBe(false);
    const moved = [...after.entries()].filter(([p, b]) => [...b][0] !== [...before.get(p)!][0]);
    const onRemoved = [...before.values()].filter((b) => b.has(removed.name)).length;
    const movedShare = (100 * moved.length) / PATIENTS;
    expect(movedShare, `${moved.length} of ${PATIENTS} patients moved (${onRemoved} were on ${removed.name})`).toBeLessThanOrEqual(35);
    // Every patient of the removed instance had to move; ideally nobody else did.
    expect(moved.length).toBeGreaterThanOrEqual(onRemoved);
    expect(nacks(mesh.controlPlane, [emrNode])).toEqual([]);
  });
});
