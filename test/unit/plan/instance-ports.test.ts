// Per-instance ports through the control plane: a Consul-discovered Kafka whose brokers move. Each
// caller has one cluster per broker ordinal; a broker's new address reaches callers as an EDS-only
// update of that ordinal's assignment (listeners and clusters depend on manifests only).
import { describe, expect, it } from 'vitest';
import type { Endpoint, EndpointSet } from '../../../src/discovery/endpoints.ts';
import { parseManifestText, type Manifest } from '../../../src/manifest/index.ts';
import { StateStore } from '../../../src/store/store.ts';
import { SnapshotCache } from '../../../src/xds/cache/snapshot.ts';
import { ControlPlane } from '../../../src/xds/plan/control-plane.ts';
import { Reconciler } from '../../../src/xds/plan/reconciler.ts';
import { CLUSTER, ENDPOINT, LISTENER } from '../../../src/xds/resources/type-urls.ts';
import { assignedAddresses } from './fixtures.ts';

const PACS = 'imaging/pacs/pacs-1';
const BROKER = (k: number) => `outbound|kafka#${k}|kafka.imaging`;

function manifests(): Manifest[] {
  const parsed = parseManifestText(
    `apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: kafka, namespace: imaging }
spec:
  ports:
    - { name: kafka, port: 19092, targetPort: 9092, protocol: tcp, instancePorts: { base: 29092, count: 3 } }
  discovery: { mode: consul }
---
apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: pacs, namespace: imaging }
spec:
  ports: [{ name: http, port: 15061, targetPort: 8080, protocol: http }]
  instances: [{ name: pacs-1, address: 127.0.0.61, appAddress: 127.0.0.61 }]
  upstreams: [{ service: kafka, port: kafka, localPort: 9092 }]
`,
    'imaging.yaml',
  );
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.value;
}

const broker = (id: string, address: string, extra: Partial<Endpoint> = {}): Endpoint => ({
  instance: id,
  address,
  ports: { kafka: 19092 },
  health: 'HEALTHY',
  locality: {},
  weight: 1,
  tags: [],
  meta: {},
  ...extra,
});

const kafka = (...endpoints: Endpoint[]): EndpointSet => ({
  service: 'kafka.imaging',
  endpoints,
  source: 'consul',
});

async function started(): Promise<{ cp: ControlPlane; cache: SnapshotCache }> {
  const cache = new SnapshotCache();
  const cp = new ControlPlane(new StateStore(), new Reconciler(cache));
  await cp.start();
  expect((await cp.apply(manifests())).ok).toBe(true);
  return { cp, cache };
}

const versions = (cache: SnapshotCache) =>
  ([CLUSTER, LISTENER, ENDPOINT] as const).map((t) => cache.get(PACS, t)?.version);

describe('per-instance ports of a Consul-discovered service', () => {
  it('give each ordinal its own assignment, and a moved broker is an EDS-only update of its ordinal', async () => {
    const { cp, cache } = await started();
    await cp.updateEndpoints(
      kafka(
        broker('kafka.imaging-kafka-0', '10.0.0.10'),
        broker('kafka.imaging-kafka-1', '10.0.0.11'),
        broker('b-two', '10.0.0.12', { meta: { ordinal: '2' } }),
      ),
    );
    expect([0, 1, 2].map((k) => assignedAddresses(cache, PACS, BROKER(k)))).toEqual([
      ['10.0.0.10'],
      ['10.0.0.11'],
      ['10.0.0.12'],
    ]);
    expect(assignedAddresses(cache, PACS, 'outbound|kafka|kafka.imaging').sort()).toEqual([
      '10.0.0.10',
      '10.0.0.11',
      '10.0.0.12',
    ]);
    const [cds, lds, eds] = versions(cache);

    await cp.updateEndpoints(
      kafka(
        broker('kafka.imaging-kafka-0', '10.0.0.10'),
        broker('kafka.imaging-kafka-1', '10.0.0.21'),
        broker('b-two', '10.0.0.12', { meta: { ordinal: '2' } }),
      ),
    );
    expect(assignedAddresses(cache, PACS, BROKER(1))).toEqual(['10.0.0.21']);
    expect(assignedAddresses(cache, PACS, BROKER(0))).toEqual(['10.0.0.10']);
    const after = versions(cache);
    expect(after.slice(0, 2)).toEqual([cds, lds]);
    expect(after[2]).not.toBe(eds);
    // A full re-plan from the same state gives the very same EDS version as the narrow path.
    await cp.refresh();
    expect(cache.get(PACS, ENDPOINT)?.version).toBe(after[2]);
  });

  it('route an ordinal to one instance only: a healthy replacement over a lingering degraded one', async () => {
    const { cp, cache } = await started();
    await cp.updateEndpoints(
      kafka(
        broker('old/kafka-1', '10.0.0.11', { health: 'DEGRADED' }),
        broker('new/kafka-1', '10.0.0.31'),
        broker('kafka-2', '10.0.0.12', { health: 'UNHEALTHY' }),
      ),
    );
    expect(assignedAddresses(cache, PACS, BROKER(1))).toEqual(['10.0.0.31']);
    // No instance with ordinal 0, and ordinal 2's is unhealthy: empty assignments, never missing ones.
    expect(assignedAddresses(cache, PACS, BROKER(0))).toEqual([]);
    expect(assignedAddresses(cache, PACS, BROKER(2))).toEqual([]);
    expect(
      [0, 1, 2].map((k) => [...(cache.get(PACS, ENDPOINT)?.resources.keys() ?? [])].includes(BROKER(k))),
    ).toEqual([true, true, true]);
  });
});
