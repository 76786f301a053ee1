// Route configurations. Outbound HTTP/gRPC traffic gets its own RouteConfiguration (served over RDS)
// so a routing change never rebuilds a listener; inbound routes are inline and trivial.
import type { Mesh, Protocol, ServiceRef, TrafficPolicy } from '../../manifest/types.ts';
import type {
  RouteActionJson,
  VirtualHostJson,
} from '../resources/gen/envoy/config/route/v3/route_components_pb.ts';
import type { RouteConfigurationJson } from '../resources/gen/envoy/config/route/v3/route_pb.ts';
import { ROUTE } from '../resources/type-urls.ts';
import { SPAN_NAME_HEADER, withSpanName } from './tracing.ts';
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
  /** The name of this upstream's spans (`his.clinical:http`), when the mesh traces. */
  spans?: string,
): Resource<typeof ROUTE> {
  const host = policy
    ? { name, domains: ['*'], routes: trafficRoutes(policy, { cluster: name, mesh, protocol, clusterOf }) }
    : virtualHost(name, routeAction(name, mesh, protocol, true));
  const body: RouteConfigurationJson = { name, virtual_hosts: [host], validate_clusters: false };
  if (mesh.tracing && spans) {
    host.routes = withSpanName(host.routes ?? [], spans);
    // The callee's sidecar would take this header as its span's name: the application's is dropped.
    body.request_headers_to_remove = [SPAN_NAME_HEADER];
  }
  return { typeUrl: ROUTE, name, body };
}
