// Clusters: one EDS cluster per upstream port, one static cluster per local application port.
import type { Instance, Mesh, Protocol, ServicePort, TrafficPolicy } from '../../manifest/types.ts';
import { anyJson } from '../resources/any-json.ts';
import type { ClusterJson } from '../resources/gen/envoy/config/cluster/v3/cluster_pb.ts';
import { CLUSTER } from '../resources/type-urls.ts';
import { configSource } from './config-source.ts';
import { duration } from './durations.ts';
import { upstreamTls } from './secrets.ts';
import { tunnelClusterOptions } from './tcp-tunnel.ts';
import { inboundClusterName } from './names.ts';
import { applyClusterPolicy } from './traffic.ts';
import type { Resource, XdsTransport } from './types.ts';

const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

export function protocolOptions(protocol: Protocol): ClusterJson {
  if (protocol !== 'grpc') return {};
  return {
    typed_extension_protocol_options: {
      [HTTP_PROTOCOL_OPTIONS]: anyJson({
        '@type': `type.googleapis.com/${HTTP_PROTOCOL_OPTIONS}`,
        explicit_http_config: { http2_protocol_options: {} },
      }),
    },
  };
}

/** `tls` carries the target's SPIFFE ID and SNI when the mesh encrypts (always, outside plain tests). */
export function generateOutboundCluster(
  name: string,
  protocol: Protocol,
  mesh: Mesh,
  transport: XdsTransport,
  tls?: { spiffeId: string; sni: string; sdsDir?: string },
  policy?: TrafficPolicy,
): Resource<typeof CLUSTER> {
  const tunnel = protocol === 'tcp' && tls !== undefined;
  const body: ClusterJson = {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: configSource(transport), service_name: name },
    connect_timeout: duration(mesh.defaults.connectTimeoutMs),
    lb_policy: 'ROUND_ROBIN',
    // Endpoints we route to are already filtered by health; never fall back to unhealthy ones. The
    // localities' weights (the sum of their instances' weights) take effect.
    common_lb_config: { healthy_panic_threshold: { value: 0 }, locality_weighted_lb_config: {} },
    // Passive health: an instance failing in a row is taken out for a while, but never more than
    // half of them, so a bad deploy cannot eject a whole service.
    outlier_detection: {
      consecutive_5xx: 5,
      interval: '10s',
      base_ejection_time: '30s',
      max_ejection_percent: 50,
    },
    // Mesh TCP rides in HTTP/2 CONNECT tunnels to the destination's sidecar (tcp-tunnel.ts).
    ...(tunnel ? tunnelClusterOptions() : protocolOptions(protocol)),
  };
  if (tls) {
    const sources = { transport, sdsDir: tls.sdsDir };
    body.transport_socket = upstreamTls(tls.spiffeId, tls.sni, sources, tunnel ? ['h2'] : []);
  }
  return { typeUrl: CLUSTER, name, body: policy ? applyClusterPolicy(body, policy) : body };
}

/** The same EDS cluster under another name, fed by the assignment of that name (a subset). */
export function renameEdsCluster(cluster: Resource<typeof CLUSTER>, name: string): Resource<typeof CLUSTER> {
  const eds = cluster.body.eds_cluster_config;
  return {
    typeUrl: CLUSTER,
    name,
    body: { ...cluster.body, name, eds_cluster_config: { ...eds, service_name: name } },
  };
}

export function generateInboundCluster(
  port: ServicePort,
  instance: Instance,
  mesh: Mesh,
): Resource<typeof CLUSTER> {
  const name = inboundClusterName(port);
  return {
    typeUrl: CLUSTER,
    name,
    body: {
      name,
      type: 'STATIC',
      connect_timeout: duration(mesh.defaults.connectTimeoutMs),
      load_assignment: {
        cluster_name: name,
        endpoints: [
          {
            lb_endpoints: [
              {
                endpoint: {
                  address: { socket_address: { address: instance.appAddress, port_value: port.targetPort } },
                },
              },
            ],
          },
        ],
      },
      ...protocolOptions(port.protocol),
    },
  };
}
