// A small mesh for control-plane tests: EMR (static, one instance) calls HIS (discovered through
// Consul), and a way to make HIS's endpoint sets and read back what EMR's sidecar was given.
import type { Endpoint, EndpointSet } from '../../../src/discovery/endpoints.ts';
import type { Manifest } from '../../../src/manifest/index.ts';
import { parseManifestText } from '../../../src/manifest/index.ts';
import type { SnapshotCache } from '../../../src/xds/cache/snapshot.ts';
import { ENDPOINT } from '../../../src/xds/resources/type-urls.ts';

export const EMR_NODE = 'clinical/emr/emr-1';
export const HIS = 'his.clinical';

/** A TrafficPolicy on HIS with two subsets chosen by the instance meta `version`. */
export const HIS_SUBSETS = `---
apiVersion: clinimesh.io/v1alpha1
kind: TrafficPolicy
metadata: { name: his-canary, namespace: clinical }
spec:
  destination: his
  subsets:
    - { name: stable, labels: { version: v1 } }
    - { name: canary, labels: { version: v2 } }
`;

export function meshManifests(emrRack = 'r1', extra = ''): Manifest[] {
  const text = `apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: his, namespace: clinical }
spec:
  ports: [{ name: http, port: 15001, targetPort: 8080, protocol: http }]
  discovery: { mode: consul }
---
apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: emr, namespace: clinical }
spec:
  ports: [{ name: http, port: 15011, targetPort: 8080, protocol: http }]
  instances:
    - { name: emr-1, address: 127.0.0.21, appAddress: 127.0.0.21, meta: { rack: ${emrRack} } }
  upstreams:
    - { service: his, port: http, localPort: 9001 }
${extra}`;
  const parsed = parseManifestText(text, 'mesh.yaml');
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  return parsed.value;
}

/** HIS's endpoints from Consul; `address` is what tests look for in EMR's assignment. */
export function hisEndpoints(
  address: string,
  instance = 'his-1',
  meta: Record<string, string> = {},
): EndpointSet {
  const endpoint: Endpoint = {
    instance,
    address,
    ports: { http: 15001 },
    health: 'HEALTHY',
    locality: {},
    weight: 1,
    tags: [],
    meta,
  };
  return { service: HIS, endpoints: [endpoint], source: 'consul' };
}

/** Every address in the ClusterLoadAssignments a node's cache holds (or in the one named `cluster`). */
export function assignedAddresses(cache: SnapshotCache, node: string, cluster?: string): string[] {
  const eds = cache.get(node, ENDPOINT);
  const resources = [...(eds?.resources.values() ?? [])].filter(
    (r) => cluster === undefined || r.name === cluster,
  );
  const text = JSON.stringify(resources.map((r) => r.json()));
  return [...text.matchAll(/"address":"([^"]+)"/g)].map((m) => m[1]!);
}
