// Distributed tracing (Mesh `spec.tracing`): every HTTP connection manager of a sidecar, inbound and
// outbound, reports spans to the mesh's Zipkin collector, so one request through EMR's and HIS's
// sidecars is one trace. Spans must never carry patient data: each is named after the destination
// service and port (a route decorator; never the path, which often holds a patient id), the
// `http.url` tag is cut to scheme and host, and a caller cannot name a span itself.
import { isIP } from 'node:net';
import type { MeshTracing } from '../../manifest/types.ts';
import { anyJson } from '../resources/any-json.ts';
import type { ClusterJson } from '../resources/gen/envoy/config/cluster/v3/cluster_pb.ts';
import type { RouteJson } from '../resources/gen/envoy/config/route/v3/route_components_pb.ts';
import type { HttpConnectionManager_TracingJson } from '../resources/gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb.ts';
import { CLUSTER } from '../resources/type-urls.ts';
import { TRACING_CLUSTER } from './names.ts';
import type { Resource } from './types.ts';

const ZIPKIN = 'type.googleapis.com/envoy.config.trace.v3.ZipkinConfig';

/**
 * Envoy lets a request name its own server span with this header; it is dropped on the way out of
 * every sidecar (outbound routes), so no application can put a path or a name into a span.
 */
export const SPAN_NAME_HEADER = 'x-envoy-decorator-operation';

/** Span tags Envoy fills from request headers (User-Agent, x-envoy-downstream-service-cluster). */
export const CALLER_HEADER_TAGS = ['user_agent', 'downstream_cluster'] as const;

/** The HCM's tracing: the mesh's sampling, the Zipkin provider, and `http.url` without its path. */
export function hcmTracing(t: MeshTracing): HttpConnectionManager_TracingJson {
  return {
    random_sampling: { value: t.samplingPercent },
    // `http.url` is scheme://host + the path cut to this length: none of the path at all.
    max_path_tag_length: 0,
    // Envoy copies these two request headers into every span; an application may put anything in
    // them. A tag set here is written after Envoy's own and takes its place.
    custom_tags: CALLER_HEADER_TAGS.map((tag) => ({ tag, literal: { value: '-' } })),
    provider: {
      name: 'envoy.tracers.zipkin',
      typed_config: anyJson({
        '@type': ZIPKIN,
        collector_cluster: TRACING_CLUSTER,
        collector_endpoint: t.zipkin.path,
        collector_endpoint_version: 'HTTP_JSON',
        trace_id_128bit: true,
        // The caller's client span and the callee's server span each get their own id.
        shared_span_context: false,
      }),
    },
  };
}

/** `his.clinical:http`: what a span of a call to that port is named, by caller and callee alike. */
export function spanName(service: { name: string; namespace: string }, port: string): string {
  return `${service.name}.${service.namespace}:${port}`;
}

/** Every route names its spans `operation` (`his.clinical:http`); never propagated downstream. */
export function withSpanName(routes: readonly RouteJson[], operation: string): RouteJson[] {
  return routes.map((r) => ({ ...r, decorator: { operation, propagate: false } }));
}

/** The collector: an IP literal as a static endpoint, a name resolved by DNS (and re-resolved). */
export function generateTracingCluster(t: MeshTracing): Resource<typeof CLUSTER> {
  const { host, port } = t.zipkin;
  const body: ClusterJson = {
    name: TRACING_CLUSTER,
    type: isIP(host) ? 'STATIC' : 'STRICT_DNS',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: TRACING_CLUSTER,
      endpoints: [
        {
          lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: port } } } }],
        },
      ],
    },
  };
  return { typeUrl: CLUSTER, name: TRACING_CLUSTER, body };
}
