// Route configurations. Outbound HTTP/gRPC traffic gets its own RouteConfiguration (served over RDS)
// so a routing change never rebuilds a listener; inbound routes are inline and trivial.
import type { Mesh, Protocol, ServiceRef, TrafficPolicy } from '../../manifest/types.ts';
import type { JsonObject } from '../resources/json.ts';
import { ROUTE } from '../resources/type-urls.ts';
import { duration } from './durations.ts';
import { trafficRoutes } from './traffic.ts';
import type { Resource } from './types.ts';

/**
 * Only failures where the request provably never reached the upstream are retried, so a
 * non-idempotent clinical write (POST an order, a result) is never sent twice.
 */
export const SAFE_RETRY_ON = 'connect-failure,refused-stream,reset-before-request';

const PREVIOUS_HOSTS =
  'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate';

export function routeAction(cluster: string, mesh: Mesh, protocol: Protocol, retries: boolean): JsonObject {
  const action: JsonObject = { cluster, timeout: duration(mesh.defaults.requestTimeoutMs) };
  // gRPC streams may be long-lived; the caller's deadline (grpc-timeout) bounds them, which Envoy
  // honours only when grpc_timeout_header_max is set.
  if (protocol === 'grpc') {
    action.timeout = '0s';
    action.max_stream_duration = { grpc_timeout_header_max: '0s' };
  }
  // A retry goes to another host than the one that just failed.
  if (retries) {
    action.retry_policy = {
      retry_on: SAFE_RETRY_ON,
      num_retries: 2,
      retry_host_predicate: [
        { name: 'envoy.retry_host_predicates.previous_hosts', typed_config: { '@type': PREVIOUS_HOSTS } },
      ],
      host_selection_retry_max_attempts: 3,
    };
  }
  return action;
}

export function virtualHost(name: string, action: JsonObject): JsonObject {
  return { name, domains: ['*'], routes: [{ name: 'default', match: { prefix: '/' }, route: action }] };
}

/** The route table of a caller's HTTP/gRPC upstream: the TrafficPolicy's routes when one governs it. */
export function generateOutboundRoute(
  name: string,
  protocol: Protocol,
  mesh: Mesh,
  policy?: TrafficPolicy,
  clusterOf?: (ref: ServiceRef) => string | undefined,
): Resource {
  const host = policy
    ? { name, domains: ['*'], routes: trafficRoutes(policy, { cluster: name, mesh, protocol, clusterOf }) }
    : virtualHost(name, routeAction(name, mesh, protocol, true));
  return { typeUrl: ROUTE, name, body: { name, virtual_hosts: [host], validate_clusters: false } };
}
