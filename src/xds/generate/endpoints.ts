// ClusterLoadAssignments: the endpoints of one upstream port, grouped by locality.
import { isIP } from 'node:net';
import type { Endpoint, EndpointSet } from '../../discovery/endpoints.ts';
import type { Locality } from '../../manifest/types.ts';
import type { JsonObject } from '../resources/json.ts';
import { ENDPOINT } from '../resources/type-urls.ts';
import type { Resource } from './types.ts';

/**
 * Unhealthy endpoints are left out rather than marked: a marked one could still take traffic in
 * Envoy's panic mode, and a clinical write must not reach an instance we know is failing. Degraded
 * ones (Consul `warning`) go to priority 1 as healthy: the fallback when too few of priority 0 are
 * left, for Envoy and gRPC alike (gRPC clients drop endpoints marked DEGRADED, so a service whose
 * instances all warn would get no proxyless traffic at all). A service with no routable endpoint gets
 * an empty assignment, never a missing one (that would stall warming).
 */
export function generateLoadAssignment(clusterName: string, portName: string, set: EndpointSet | undefined): Resource {
  const byLocality = new Map<string, { locality: Locality; priority: number; endpoints: Endpoint[] }>();
  // An address that is not an IP literal (a Consul node registered by host name) is left out: EDS takes
  // IP literals only, and one name would make Envoy reject the whole list.
  const routable = (set?.endpoints ?? []).filter((e) => e.health !== 'UNHEALTHY' && e.ports[portName] !== undefined && isIP(e.address) !== 0);
  // Priorities must start at 0 without gaps (gRPC rejects a gap): all degraded means degraded first.
  const fallback = routable.some((e) => e.health !== 'DEGRADED') ? 1 : 0;
  for (const e of routable) {
    const priority = e.health === 'DEGRADED' ? fallback : 0;
    const key = `${priority}/${e.locality.region ?? ''}/${e.locality.zone ?? ''}/${e.locality.subZone ?? ''}`;
    const group = byLocality.get(key) ?? { locality: e.locality, priority, endpoints: [] };
    group.endpoints.push(e);
    byLocality.set(key, group);
  }
  const localities = [...byLocality.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([, g]) => localityEndpoints(g.locality, g.endpoints, portName, g.priority));
  return { typeUrl: ENDPOINT, name: clusterName, body: { cluster_name: clusterName, endpoints: localities } };
}

function localityEndpoints(locality: Locality, endpoints: readonly Endpoint[], portName: string, priority: number): JsonObject {
  const sorted = [...endpoints].sort((a, b) => a.instance.localeCompare(b.instance));
  const loc: JsonObject = {};
  if (locality.region) loc.region = locality.region;
  if (locality.zone) loc.zone = locality.zone;
  if (locality.subZone) loc.sub_zone = locality.subZone;
  return {
    locality: loc,
    // grpc-js-xds ignores localities without a weight; Envoy uses it only for locality-weighted LB.
    load_balancing_weight: sorted.reduce((sum, e) => sum + e.weight, 0),
    ...(priority > 0 && { priority }),
    lb_endpoints: sorted.map((e) => ({
      endpoint: { address: { socket_address: { address: e.address, port_value: e.ports[portName] ?? 0 } } },
      health_status: e.health === 'DEGRADED' ? 'HEALTHY' : e.health,
      load_balancing_weight: e.weight,
      metadata: { filter_metadata: { clinimesh: { instance: e.instance } } },
    })),
  };
}
