// The Envoy bootstrap a sidecar starts from: who it is (node), where its control plane is, and
// whether it streams (ADS over gRPC, state of the world or incremental) or polls (REST-JSON).
// Everything else arrives over xDS. The control plane may be several replicas (or one DNS name in
// front of them): the xDS cluster lists them all and is tuned to leave a dead one within seconds.
import type { StructJson } from '@bufbuild/protobuf/wkt';
import { anyJson } from '../xds/resources/any-json.ts';
import type {
  Bootstrap_DynamicResourcesJson,
  BootstrapJson,
} from '../xds/resources/gen/envoy/config/bootstrap/v3/bootstrap_pb.ts';
import type { ClusterJson } from '../xds/resources/gen/envoy/config/cluster/v3/cluster_pb.ts';
import type { ConfigSourceJson } from '../xds/resources/gen/envoy/config/core/v3/config_source_pb.ts';
import type { RetryPolicyJson } from '../xds/resources/gen/envoy/config/core/v3/base_pb.ts';
import type { TagSpecifierJson } from '../xds/resources/gen/envoy/config/metrics/v3/stats_pb.ts';
import { configSource } from '../xds/generate/config-source.ts';
import { DEFAULT_ADMIN_PORT } from '../xds/generate/metrics.ts';
import { XDS_CLUSTER } from '../xds/generate/names.ts';
import { fileSecretSource } from '../xds/generate/secrets.ts';
import type { XdsTransport } from '../xds/generate/types.ts';

/**
 * How an Envoy talks to the control plane. 'delta' is ADS with incremental (DELTA_GRPC) messages;
 * the config it is sent is the same as for 'ads', so generators only know 'ads' and 'rest'.
 */
export type BootstrapTransport = XdsTransport | 'delta';

export interface BootstrapOptions {
  readonly nodeId: string;
  /** Envoy's node.cluster: the service name. */
  readonly cluster: string;
  /**
   * Every control-plane replica (or one name a DNS lookup expands to all of them): the gRPC port for
   * ADS, the REST port for polling. Versions are content hashes, so any replica will do.
   */
  readonly xdsServers: readonly XdsServer[];
  readonly transport: BootstrapTransport;
  readonly adminAddress?: string;
  /** 0 lets the OS pick; Envoy then reports it through --admin-address-path. */
  readonly adminPort?: number;
  readonly metadata?: StructJson;
  /** Mutual TLS to the control plane with the credential the node agent keeps in `sdsDir`. */
  readonly tls?: BootstrapTls;
}

/** The secrets the agent writes for Envoy's own connection to the control plane (renewed in place). */
export const XDS_CLIENT_SECRET = 'xds-client';
export const XDS_CA_SECRET = 'xds-ca';
/** Node metadata naming the agent's secret directory; the control plane points listeners at it. */
export const SDS_DIR_METADATA = 'clinimesh.sds_dir';
/**
 * Node metadata naming the admin's port when it is not DEFAULT_ADMIN_PORT (0: Envoy picks it, and
 * the control plane cannot route the metrics listener to it).
 */
export const ADMIN_PORT_METADATA = 'clinimesh.admin_port';
export const CONTROL_PLANE_SAN_REGEX = '^spiffe://[^/]+/ns/clinimesh-system/sa/control-plane$';

export interface XdsServer {
  readonly host: string;
  readonly port: number;
}

export interface BootstrapTls {
  /** The node agent's secret directory (absolute): Envoy watches it and reloads what the agent renews. */
  readonly sdsDir: string;
}

const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/**
 * Leaving a dead replica quickly: a refused or timed-out connect ejects it at once (for a few seconds,
 * never for long, so a whole control plane coming back is found again soon); HTTP/2 and TCP keepalives
 * find a replica that vanished without closing its connections (a node lost, a partition).
 */
const FAILOVER: ClusterJson = {
  connect_timeout: '1s',
  lb_policy: 'ROUND_ROBIN',
  // A DNS name (a headless Kubernetes Service) is re-resolved every 5 s (Envoy's default), so
  // replicas that come and go are seen.
  outlier_detection: {
    split_external_local_origin_errors: true,
    consecutive_local_origin_failure: 1,
    enforcing_consecutive_local_origin_failure: 100,
    interval: '1s',
    base_ejection_time: '2s',
    max_ejection_time: '10s',
    max_ejection_percent: 100,
  },
  upstream_connection_options: {
    tcp_keepalive: { keepalive_probes: 3, keepalive_time: 10, keepalive_interval: 3 },
  },
};

function xdsCluster(o: BootstrapOptions): ClusterJson {
  if (o.xdsServers.length === 0) throw new TypeError('a bootstrap needs at least one xDS server');
  const cluster: ClusterJson = {
    name: XDS_CLUSTER,
    type: 'STRICT_DNS',
    ...FAILOVER,
    load_assignment: {
      cluster_name: XDS_CLUSTER,
      endpoints: [
        {
          lb_endpoints: o.xdsServers.map((s) => ({
            endpoint: { address: { socket_address: { address: s.host, port_value: s.port } } },
          })),
        },
      ],
    },
  };
  if (o.tls) {
    cluster.transport_socket = {
      name: 'envoy.transport_sockets.tls',
      typed_config: anyJson({
        '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
        common_tls_context: {
          tls_certificate_sds_secret_configs: [
            { name: XDS_CLIENT_SECRET, sds_config: fileSecretSource(o.tls.sdsDir, XDS_CLIENT_SECRET) },
          ],
          combined_validation_context: {
            // The control plane's identity in any trust domain the CA signs (only the CA can, and it never
            // issues clinimesh-system identities to workloads), so a trust-domain migration keeps Envoy connected.
            default_validation_context: {
              match_typed_subject_alt_names: [
                { san_type: 'URI', matcher: { safe_regex: { regex: CONTROL_PLANE_SAN_REGEX } } },
              ],
            },
            validation_context_sds_secret_config: {
              name: XDS_CA_SECRET,
              sds_config: fileSecretSource(o.tls.sdsDir, XDS_CA_SECRET),
            },
          },
          // gRPC needs h2 negotiated; REST polling is HTTP/1.1.
          alpn_protocols: o.transport === 'rest' ? ['http/1.1'] : ['h2'],
        },
      }),
    };
  }
  if (o.transport !== 'rest') {
    cluster.typed_extension_protocol_options = {
      [HTTP_PROTOCOL_OPTIONS]: anyJson({
        '@type': `type.googleapis.com/${HTTP_PROTOCOL_OPTIONS}`,
        explicit_http_config: {
          // A stream to a replica that stopped answering is closed within ~15 s and re-opened elsewhere.
          http2_protocol_options: { connection_keepalive: { interval: '10s', timeout: '5s' } },
        },
      }),
    };
  }
  return cluster;
}

/**
 * Envoy's default tag for a cluster's stats takes the name up to its first dot, so
 * `cluster.outbound|http|his.clinical.upstream_rq` would reach Prometheus as the metric
 * `envoy_cluster_clinical_upstream_rq{envoy_cluster_name="outbound|http|his"}`. This extractor knows
 * our outbound names (`outbound|<port>|<service>.<namespace>[|<subset>]`) and egress ones
 * (`external|<name>.<namespace>`), made of DNS labels without dots.
 * It has no prefix token (the `(?:cluster)`), so Envoy runs it before the default one of the same
 * name, which then skips the stat; any other name keeps the default.
 */
export const CLUSTER_NAME_TAG: TagSpecifierJson = {
  tag_name: 'envoy.cluster_name',
  regex: '^(?:cluster)\\.((outbound\\|[^|.]+\\|[^|.]+\\.[^|.]+(?:\\|[^|.]+)?|external\\|[^|.]+\\.[^|.]+)\\.)',
};

/** Re-opening the ADS stream after a replica died: soon (Envoy's default waits up to 30 s), jittered. */
const STREAM_RETRY: RetryPolicyJson = {
  retry_back_off: { base_interval: '0.25s', max_interval: '2s' },
};

function dynamicResources(transport: BootstrapTransport): Bootstrap_DynamicResourcesJson {
  if (transport !== 'rest') {
    const ads: ConfigSourceJson = { ads: {}, resource_api_version: 'V3' };
    return {
      ads_config: {
        api_type: transport === 'delta' ? 'DELTA_GRPC' : 'GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: XDS_CLUSTER, retry_policy: STREAM_RETRY } }],
        set_node_on_first_message_only: true,
      },
      cds_config: ads,
      lds_config: ads,
    };
  }
  const rest = configSource('rest');
  return { cds_config: rest, lds_config: rest };
}

export function envoyBootstrap(o: BootstrapOptions): BootstrapJson {
  const adminPort = o.adminPort ?? DEFAULT_ADMIN_PORT;
  return {
    node: {
      id: o.nodeId,
      cluster: o.cluster,
      metadata: {
        ...(o.metadata ?? {}),
        ...(o.tls && { [SDS_DIR_METADATA]: o.tls.sdsDir }),
        ...(adminPort !== DEFAULT_ADMIN_PORT && { [ADMIN_PORT_METADATA]: adminPort }),
      },
    },
    admin: {
      address: { socket_address: { address: o.adminAddress ?? '127.0.0.1', port_value: adminPort } },
    },
    dynamic_resources: dynamicResources(o.transport),
    stats_config: { stats_tags: [CLUSTER_NAME_TAG] },
    static_resources: { clusters: [xdsCluster(o)] },
  };
}
