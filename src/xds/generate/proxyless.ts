// Resources for a proxyless gRPC client (a gRPC application that speaks xDS itself, such as
// @grpc/grpc-js-xds): per gRPC upstream, the client-side API listener that `xds:///<service>.<namespace>`
// resolves, its RouteConfiguration, the EDS cluster and its ClusterLoadAssignment. No inbound or
// outbound socket listeners: there is no sidecar in the path.
//
// gRPC validates these more strictly than Envoy and differently: the router filter must be last and
// carry a typed_config; EDS and RDS must come over ADS; a cluster's TLS must name certificate
// provider instances (gRPC has no SDS) and must not set tls_params; SANs are matched with
// match_subject_alt_names (match_typed_subject_alt_names is ignored).
import { spiffeId } from '../../ca/spiffe.ts';
import { fail, ok, type Problem, type Result } from '../../errors.ts';
import {
  serviceKey,
  serviceUpstreams,
  type Instance,
  type Mesh,
  type Service,
  type ServiceRef,
  type TrafficPolicy,
  type ServiceUpstream,
} from '../../manifest/types.ts';
import { anyJson } from '../resources/any-json.ts';
import type { ClusterJson } from '../resources/gen/envoy/config/cluster/v3/cluster_pb.ts';
import type { TransportSocketJson } from '../resources/gen/envoy/config/core/v3/base_pb.ts';
import type { ConfigSourceJson } from '../resources/gen/envoy/config/core/v3/config_source_pb.ts';
import type {
  RetryPolicyJson,
  RouteJson,
} from '../resources/gen/envoy/config/route/v3/route_components_pb.ts';
import { CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, type TypeUrl } from '../resources/type-urls.ts';
import { duration } from './durations.ts';
import { renameEdsCluster } from './clusters.ts';
import {
  applyClusterPolicy,
  callerPolicy,
  faultFilter,
  needsFaultFilter,
  subsetClusterName,
  routeTargetProblems,
  trafficRoutes,
  upstreamAssignments,
  upstreamClusters,
} from './traffic.ts';
import { outboundClusterName, outboundRouteName } from './names.ts';
import type { MeshView, Resource, SidecarResources } from './types.ts';

/**
 * The certificate provider instance a proxyless client's bootstrap must define (plugin
 * `file_watcher`, with certificate, key and CA files): its identity and the mesh's trust bundle.
 */
export const PROXYLESS_CERT_PROVIDER = 'clinimesh';

const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'envoy.extensions.filters.http.router.v3.Router';
const UPSTREAM_TLS = 'envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';
/** gRPC fetches EDS and RDS only over the ADS stream (or `self`); never REST. */
const ADS: ConfigSourceJson = { ads: {}, resource_api_version: 'V3' };

/** `imaging.clinical`: the listener a client dialing `xds:///imaging.clinical` asks for. */
export function proxylessListenerName(target: Pick<Service, 'name' | 'namespace'>): string {
  return serviceKey(target);
}

export function generateProxyless(
  view: MeshView,
  service: Service,
  instance: Instance,
  options: { mtls: boolean },
): Result<SidecarResources> {
  const out: { [T in TypeUrl]: Resource<T>[] } = {
    [CLUSTER]: [],
    [ENDPOINT]: [],
    [LISTENER]: [],
    [ROUTE]: [],
    [SECRET]: [],
  };
  const problems: Problem[] = [];
  const targets = new Set<string>();
  // A proxyless client has no sidecar to originate TLS to a partner: external upstreams are a sidecar's.
  for (const upstream of serviceUpstreams(service)) {
    const target = view.services.get(serviceKey({ name: upstream.service, namespace: upstream.namespace }));
    const port = target?.ports.find((p) => p.name === upstream.port);
    const resource = `proxyless ${serviceKey(service)}`;
    if (!target || !port) {
      problems.push({
        code: 'REFERENCE',
        resource,
        message: `upstream ${upstream.service}.${upstream.namespace}:${upstream.port} does not exist`,
      });
      continue;
    }
    // A proxyless client speaks only gRPC; its HTTP and TCP upstreams are for a sidecar, not for it.
    if (port.protocol !== 'grpc') continue;
    const listener = proxylessListenerName(target);
    if (targets.has(listener)) {
      problems.push({
        code: 'CONFLICT',
        resource,
        message: `two gRPC upstreams of ${listener}: xds:///${listener} can name only one port`,
      });
      continue;
    }
    targets.add(listener);
    const name = outboundClusterName(upstream);
    const tls = options.mtls
      ? spiffeId(view.mesh.trustDomain, { namespace: target.namespace, service: target.name })
      : undefined;
    const policy = callerPolicy(view, service, target, port);
    const endpoints = view.endpoints.get(serviceKey(target));
    const cluster = edsCluster(name, view.mesh, tls, policy);
    out[LISTENER].push(apiListener(listener, upstream, needsFaultFilter(policy)));
    const clusterOf = upstreamClusters(service, view, 'grpc');
    problems.push(...routeTargetProblems(policy, clusterOf, service, 'grpc', resource));
    out[ROUTE].push(clientRoute(upstream, view.mesh, policy, clusterOf));
    out[CLUSTER].push(cluster);
    // Same name and generator as a sidecar's, so the reconciler's EDS-only pushes reach proxyless clients.
    out[ENDPOINT].push(...upstreamAssignments(name, port.name, endpoints, policy, instance.locality));
    for (const subset of policy?.subsets ?? [])
      out[CLUSTER].push(renameEdsCluster(cluster, subsetClusterName(name, subset.name)));
  }
  return problems.length ? fail(problems) : ok(out);
}

function apiListener(name: string, upstream: ServiceUpstream, faults: boolean): Resource<typeof LISTENER> {
  const hcm = anyJson({
    '@type': `type.googleapis.com/${HCM}`,
    stat_prefix: `proxyless_${upstream.service}_${upstream.namespace}`,
    rds: { config_source: ADS, route_config_name: outboundRouteName(upstream) },
    http_filters: [
      ...(faults ? [faultFilter()] : []),
      {
        name: 'envoy.filters.http.router',
        typed_config: anyJson({ '@type': `type.googleapis.com/${ROUTER}` }),
      },
    ],
  });
  return { typeUrl: LISTENER, name, body: { name, api_listener: { api_listener: hcm } } };
}

/**
 * Without a TrafficPolicy, no retry policy: gRPC reads `retry_on` as gRPC status names, and every
 * one of them can follow a request the server already received; a clinical write must not be sent
 * twice. gRPC's own transparent retry covers streams that never left the client. Deadlines are the
 * caller's. With one, its routes as gRPC reads them (see proxylessRoute).
 */
function clientRoute(
  upstream: ServiceUpstream,
  mesh: Mesh,
  policy: TrafficPolicy | undefined,
  clusterOf: (ref: ServiceRef) => string | undefined,
): Resource<typeof ROUTE> {
  const name = outboundRouteName(upstream);
  const cluster = outboundClusterName(upstream);
  const routes = policy
    ? trafficRoutes(policy, { cluster, mesh, protocol: 'grpc', clusterOf }).map(proxylessRoute)
    : [{ name: 'default', match: { prefix: '' }, route: { cluster } }];
  return { typeUrl: ROUTE, name, body: { name, virtual_hosts: [{ name, domains: ['*'], routes }] } };
}

const GRPC_RETRY_CODES = new Set([
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
]);

/**
 * A route as gRPC's xDS client supports it: retries only on gRPC statuses (none left: no retry
 * policy, which is also what a write without the idempotency key gets), no host predicates and no
 * mirroring (gRPC has neither).
 */
function proxylessRoute(route: RouteJson): RouteJson {
  const action = { ...route.route };
  delete action.request_mirror_policies;
  const retry = action.retry_policy;
  delete action.retry_policy;
  const codes = String(retry?.retry_on ?? '')
    .split(',')
    .filter((c) => GRPC_RETRY_CODES.has(c));
  if (retry && codes.length) {
    const policy: RetryPolicyJson = { retry_on: codes.join(',') };
    if (retry.num_retries !== undefined) policy.num_retries = retry.num_retries;
    if (retry.per_try_timeout !== undefined) policy.per_try_timeout = retry.per_try_timeout;
    action.retry_policy = policy;
  }
  return { ...route, route: action };
}

/**
 * grpc-js-xds balances round robin or ring hash: MAGLEV becomes ring hash (affinity kept, on the
 * same header), LEAST_REQUEST and RANDOM round robin.
 */
const GRPC_LB = new Set(['ROUND_ROBIN', 'RING_HASH']);

function edsCluster(
  name: string,
  mesh: Mesh,
  targetSpiffeId: string | undefined,
  policy?: TrafficPolicy,
): Resource<typeof CLUSTER> {
  const body: ClusterJson = {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: ADS, service_name: name },
    connect_timeout: duration(mesh.defaults.connectTimeoutMs),
    lb_policy: 'ROUND_ROBIN',
  };
  if (targetSpiffeId) body.transport_socket = proxylessUpstreamTls(targetSpiffeId);
  if (!policy) return { typeUrl: CLUSTER, name, body };
  const tuned = applyClusterPolicy(body, policy);
  if (tuned.lb_policy === 'MAGLEV') {
    tuned.lb_policy = 'RING_HASH';
    tuned.ring_hash_lb_config = { minimum_ring_size: '1024' };
  } else if (!GRPC_LB.has(String(tuned.lb_policy))) tuned.lb_policy = 'ROUND_ROBIN';
  delete tuned.maglev_lb_config;
  return { typeUrl: CLUSTER, name, body: tuned };
}

/** Mutual TLS to the target's sidecar, from files the client's bootstrap names: only its exact SPIFFE ID passes. */
function proxylessUpstreamTls(targetSpiffeId: string): TransportSocketJson {
  const provider = { instance_name: PROXYLESS_CERT_PROVIDER };
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: anyJson({
      '@type': `type.googleapis.com/${UPSTREAM_TLS}`,
      common_tls_context: {
        tls_certificate_provider_instance: provider,
        validation_context: {
          ca_certificate_provider_instance: provider,
          match_subject_alt_names: [{ exact: targetSpiffeId }],
        },
      },
    }),
  };
}
