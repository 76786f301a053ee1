// Route configurations. Outbound HTTP/gRPC traffic gets its own RouteConfiguration (served over RDS)
// so a routing change never rebuilds a listener; inbound routes are inline and trivial.
import type { Mesh, Protocol, ServiceRef, TrafficPolicy } from '../../manifest/types.ts';
import type {
  RouteActionJson,
  VirtualHostJson,
} from '../resources/gen/envoy/config/route/v3/route_components_pb.ts';
import { ROUTE } from '../resources/type-urls.ts';
import { routeAction } from './route-action.ts';
import { trafficRoutes } from './traffic.ts';
import type { Resource } from './types.ts';

export function virtualHost(name: string, action: RouteActionJson): VirtualHostJson {
  return { name, domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, route: action }] };
}

/** The route table of a caller's HTTP/gRPC upstream: the TrafficPolicy's routes when one governs it. */
export function generateOutboundRoute(
  name: string,
  protocol: Protocol,
  mesh: Mesh,
  policy?: TrafficPolicy,
  clusterOf?: (ref: ServiceRef) => string | undefined,
): Resource<typeof ROUTE> {
  const host = policy
    ? { name, domains: ['*'], routes: trafficRoutes(policy, { cluster: name, mesh, protocol, clusterOf }) }
    : virtualHost(name, routeAction(name, mesh, protocol, true));
  return { typeUrl: ROUTE, name, body: { name, virtual_hosts: [host], validate_clusters: false } };
}
