// ClusterLoadAssignments: the endpoints of one upstream port, grouped by locality.
import type { Endpoint, EndpointSet } from '../../discovery/endpoints.ts';
import type { Locality } from '../../manifest/types.ts';
import type { JsonObject } from '../resources/json.ts';
import { ENDPOINT } from '../resources/type-urls.ts';
import type { Resource } from './types.ts';

/**
 * Unhealthy endpoints are left out rather than marked: a marked one could still take traffic in
 * Envoy's panic mode, and a clinical write must not reach an instance we know is failing. A service
 * with no routable endpoint gets an empty assignment, never a missing one (that would stall warming).
 */
export function generateLoadAssignment(clusterName: string, portName: string, set: EndpointSet | undefined): Resource {
  const byLocality = new Map<string, { locality: Locality; endpoints: Endpoint[] }>();
  for (const e of set?.endpoints ?? []) {
    if (e.health === 'UNHEALTHY' || e.ports[portName] === undefined) continue;
    const key = `${e.locality.region ?? ''}/${e.locality.zone ?? ''}/${e.locality.subZone ?? ''}`;
    const group = byLocality.get(key) ?? { locality: e.locality, endpoints: [] };
    group.endpoints.push(e);
    byLocality.set(key, group);
  }
  const localities = [...byLocality.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([, g]) => localityEndpoints(g.locality, g.endpoints, portName));
  return { typeUrl: ENDPOINT, name: clusterName, body: { cluster_name: clusterName, endpoints: localities } };
}

function localityEndpoints(locality: Locality, endpoints: readonly Endpoint[], portName: string): JsonObject {
  const sorted = [...endpoints].sort((a, b) => a.instance.localeCompare(b.instance));
  const loc: JsonObject = {};
  if (locality.region) loc.region = locality.region;
  if (locality.zone) loc.zone = locality.zone;
  if (locality.subZone) loc.sub_zone = locality.subZone;
  return {
    locality: loc,
    // grpc-js-xds ignores localities without a weight; Envoy uses it only for locality-weighted LB.
    load_balancing_weight: sorted.reduce((sum, e) => sum + e.weight, 0),
    lb_endpoints: sorted.map((e) => ({
      endpoint: { address: { socket_address: { address: e.address, port_value: e.ports[portName] ?? 0 } } },
      health_status: e.health,
      load_balancing_weight: e.weight,
      metadata: { filter_metadata: { clinimesh: { instance: e.instance } } },
    })),
  };
}
