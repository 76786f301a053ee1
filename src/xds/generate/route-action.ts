// The route action every outbound and inbound route starts from: the cluster, the mesh's request
// timeout (gRPC: the caller's deadline), and retries only where the request never reached the
// upstream. TrafficPolicy routes (traffic.ts) build on it.
import type { Mesh, Protocol } from '../../manifest/types.ts';
import { anyJson } from '../resources/any-json.ts';
import type { RouteActionJson } from '../resources/gen/envoy/config/route/v3/route_components_pb.ts';
import { duration } from './durations.ts';

/**
 * Only failures where the request provably never reached the upstream are retried, so a
 * non-idempotent clinical write (POST an order, a result) is never sent twice.
 */
export const SAFE_RETRY_ON = 'connect-failure,refused-stream,reset-before-request';

const PREVIOUS_HOSTS =
  'type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate';

export function routeAction(
  cluster: string,
  mesh: Mesh,
  protocol: Protocol,
  retries: boolean,
): RouteActionJson {
  const action: RouteActionJson = { cluster, timeout: duration(mesh.defaults.requestTimeoutMs) };
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
        {
          name: 'envoy.retry_host_predicates.previous_hosts',
          typed_config: anyJson({ '@type': PREVIOUS_HOSTS }),
        },
      ],
      host_selection_retry_max_attempts: 3,
    };
  }
  return action;
}
