// The Envoy bootstrap a sidecar starts from: who it is (node), where its control plane is, and
// whether it streams (ADS over gRPC, state of the world or incremental) or polls (REST-JSON).
// Everything else arrives over xDS.
import type { JsonObject } from '../xds/resources/json.ts';
import { configSource } from '../xds/generate/config-source.ts';
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
  readonly xdsHost: string;
  /** The gRPC port for ADS, the REST port for polling. */
  readonly xdsPort: number;
  readonly transport: BootstrapTransport;
  readonly adminAddress?: string;
  /** 0 lets the OS pick; Envoy then reports it through --admin-address-path. */
  readonly adminPort?: number;
  readonly metadata?: JsonObject;
  /** Mutual TLS to the control plane with the credential the node agent keeps in `sdsDir`. */
  readonly tls?: BootstrapTls;
}

/** The secrets the agent writes for Envoy's own connection to the control plane (renewed in place). */
export const XDS_CLIENT_SECRET = 'xds-client';
export const XDS_CA_SECRET = 'xds-ca';
/** Node metadata naming the agent's secret directory; the control plane points listeners at it. */
export const SDS_DIR_METADATA = 'clinimesh.sds_dir';
export const CONTROL_PLANE_SAN_REGEX = '^spiffe://[^/]+/ns/clinimesh-system/sa/control-plane$';

export interface BootstrapTls {
  /** The node agent's secret directory (absolute): Envoy watches it and reloads what the agent renews. */
  readonly sdsDir: string;
}

const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

function xdsCluster(o: BootstrapOptions): JsonObject {
  const cluster: JsonObject = {
    name: XDS_CLUSTER,
    type: 'STRICT_DNS',
    connect_timeout: '1s',
    load_assignment: {
      cluster_name: XDS_CLUSTER,
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: o.xdsHost, port_value: o.xdsPort } } } },
          ],
        },
      ],
    },
  };
  if (o.tls) {
    cluster.transport_socket = {
      name: 'envoy.transport_sockets.tls',
      typed_config: {
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
      },
    };
  }
  if (o.transport !== 'rest') {
    cluster.typed_extension_protocol_options = {
      [HTTP_PROTOCOL_OPTIONS]: {
        '@type': `type.googleapis.com/${HTTP_PROTOCOL_OPTIONS}`,
        explicit_http_config: { http2_protocol_options: {} },
      },
    };
  }
  return cluster;
}

function dynamicResources(transport: BootstrapTransport): JsonObject {
  if (transport !== 'rest') {
    const ads = { ads: {}, resource_api_version: 'V3' };
    return {
      ads_config: {
        api_type: transport === 'delta' ? 'DELTA_GRPC' : 'GRPC',
        transport_api_version: 'V3',
        grpc_services: [{ envoy_grpc: { cluster_name: XDS_CLUSTER } }],
        set_node_on_first_message_only: true,
      },
      cds_config: ads,
      lds_config: ads,
    };
  }
  const rest = configSource('rest');
  return { cds_config: rest, lds_config: rest };
}

export function envoyBootstrap(o: BootstrapOptions): JsonObject {
  return {
    node: {
      id: o.nodeId,
      cluster: o.cluster,
      metadata: { ...(o.metadata ?? {}), ...(o.tls && { [SDS_DIR_METADATA]: o.tls.sdsDir }) },
    },
    admin: {
      address: {
        socket_address: { address: o.adminAddress ?? '127.0.0.1', port_value: o.adminPort ?? 15000 },
      },
    },
    dynamic_resources: dynamicResources(o.transport),
    static_resources: { clusters: [xdsCluster(o)] },
  };
}
