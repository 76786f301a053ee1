// ClusterLoadAssignments: the endpoints of one upstream port, grouped by locality.
import { isIP } from 'node:net';
import type { Endpoint, EndpointSet } from '../../discovery/endpoints.ts';
import type { Locality } from '../../manifest/types.ts';
import type { LocalityJson } from '../resources/gen/envoy/config/core/v3/base_pb.ts';
import type { LocalityLbEndpointsJson } from '../resources/gen/envoy/config/endpoint/v3/endpoint_components_pb.ts';
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
export function generateLoadAssignment(
  clusterName: string,
  portName: string,
  set: EndpointSet | undefined,
  caller?: Locality,
): Resource<typeof ENDPOINT> {
  const byLocality = new Map<string, { locality: Locality; priority: number; endpoints: Endpoint[] }>();
  // An address that is not an IP literal (a Consul node registered by host name) is left out: EDS takes
  // IP literals only, and one name would make Envoy reject the whole list.
  const routable = (set?.endpoints ?? []).filter(
    (e) => e.health !== 'UNHEALTHY' && e.ports[portName] !== undefined && isIP(e.address) !== 0,
  );
  const priorityOf = priorities(routable, caller);
  for (const e of routable) {
    const priority = priorityOf(e);
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

/**
 * Priority levels, most preferred first: with a caller's locality (locality failover), its own zone,
 * then its region, then the rest; within each, passing before degraded. Levels are numbered from 0
 * without gaps (gRPC rejects a gap), so an empty level never exists.
 */
function priorities(endpoints: readonly Endpoint[], caller: Locality | undefined): (e: Endpoint) => number {
  const rank = (e: Endpoint): number => {
    const distance = !caller
      ? 0
      : e.locality.region !== caller.region
        ? 2
        : e.locality.zone !== caller.zone
          ? 1
          : 0;
    return distance * 2 + (e.health === 'DEGRADED' ? 1 : 0);
  };
  const levels = [...new Set(endpoints.map(rank))].sort((a, b) => a - b);
  return (e) => levels.indexOf(rank(e));
}

function localityEndpoints(
  locality: Locality,
  endpoints: readonly Endpoint[],
  portName: string,
  priority: number,
): LocalityLbEndpointsJson {
  const sorted = [...endpoints].sort((a, b) => a.instance.localeCompare(b.instance));
  const loc: LocalityJson = {};
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
