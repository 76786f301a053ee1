// TCP between sidecars, authorized before anything reaches the application. Network RBAC decides on
// the caller's first bytes, after tcp_proxy has already connected upstream: a server-first backend
// (SMTP, MySQL, many HL7 engines) would greet a denied caller, and every denied attempt would open a
// backend connection. So, as Istio's ambient mode does with HBONE, mesh TCP rides in an HTTP/2
// CONNECT tunnel over the mTLS connection: the caller's tcp_proxy asks for a tunnel, the destination's
// HTTP connection manager authorizes the CONNECT with HTTP RBAC, and only then does its router open
// the connection to the application. A denied caller gets a 403 on the CONNECT, its tcp_proxy closes
// the application's connection, and the backend never sees it. Works on every Envoy we support
// (tcp_proxy's upstream_connect_mode, which would delay the connect instead, is too new).
import { anyJson } from '../resources/any-json.ts';
import type { AccessLogJson } from '../resources/gen/envoy/config/accesslog/v3/accesslog_pb.ts';
import type { ClusterJson } from '../resources/gen/envoy/config/cluster/v3/cluster_pb.ts';
import type { FilterJson } from '../resources/gen/envoy/config/listener/v3/listener_components_pb.ts';
import type {
  HttpConnectionManager_HcmAccessLogOptionsJson,
  HttpFilterJson,
} from '../resources/gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb.ts';
import type { TcpProxy_TcpAccessLogOptionsJson } from '../resources/gen/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy_pb.ts';
import { duration } from './durations.ts';

const TCP_PROXY = 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'envoy.extensions.filters.http.router.v3.Router';
const HTTP_PROTOCOL_OPTIONS = 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions';

/**
 * How long a tunnel may carry no byte before either side closes it: tcp_proxy's own default (1 h),
 * used on both ends so the HTTP layer never cuts a quiet broker connection (AMQP and Kafka hold
 * theirs open for hours, heartbeating every minute or so) before tcp_proxy would.
 */
export const TUNNEL_IDLE_TIMEOUT_MS = 3_600_000;

/** The CONNECT authority a caller asks for: the destination service and its mesh port. */
export function tunnelAuthority(service: { name: string; namespace: string }, port: number): string {
  return `${service.name}.${service.namespace}:${port}`;
}

export interface OutboundTcpOptions {
  readonly statPrefix: string;
  readonly cluster: string;
  /** Present under mTLS: the CONNECT authority (tunnelAuthority) the tunnel asks for. */
  readonly tunnel?: string;
  /** For an inbound tcp_proxy (the PERMISSIVE plaintext chain): its audit log and options. */
  readonly accessLog?: { readonly log: AccessLogJson; readonly options: TcpProxy_TcpAccessLogOptionsJson };
}

/**
 * The one tcp_proxy filter every TCP path is built with: an outbound listener (tunnelling to its
 * cluster when `tunnel` is set; that cluster must then speak HTTP/2, see tunnelClusterOptions), or
 * an inbound plaintext chain.
 */
export function tcpProxyFilter(o: OutboundTcpOptions): FilterJson {
  const config = anyJson({
    '@type': `type.googleapis.com/${TCP_PROXY}`,
    stat_prefix: o.statPrefix,
    cluster: o.cluster,
  });
  if (o.tunnel) {
    config.tunneling_config = { hostname: o.tunnel };
    config.idle_timeout = duration(TUNNEL_IDLE_TIMEOUT_MS);
  }
  if (o.accessLog) {
    config.access_log = [o.accessLog.log];
    config.access_log_options = o.accessLog.options;
  }
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: config };
}

/** What a tunnelling cluster adds: HTTP/2 to the destination's sidecar, tunnels multiplexed on it. */
export function tunnelClusterOptions(): ClusterJson {
  return {
    typed_extension_protocol_options: {
      [HTTP_PROTOCOL_OPTIONS]: anyJson({
        '@type': `type.googleapis.com/${HTTP_PROTOCOL_OPTIONS}`,
        explicit_http_config: { http2_protocol_options: {} },
      }),
    },
  };
}

export interface TunnelTerminationOptions {
  readonly statPrefix: string;
  readonly routeName: string;
  /** The local application's cluster (inbound|<port>). */
  readonly cluster: string;
  /** HTTP filters deciding on the CONNECT before the router runs (RBAC). */
  readonly filters: readonly HttpFilterJson[];
  readonly accessLog?: AccessLogJson;
}

/** Logged when the tunnel is up (for connections that live for days), every minute, and at its end. */
export const TUNNEL_AUDIT_OPTIONS: HttpConnectionManager_HcmAccessLogOptionsJson = {
  flush_log_on_tunnel_successfully_established: true,
  access_log_flush_interval: '60s',
};

/**
 * The destination's side: an HTTP/2 connection manager that accepts CONNECT, runs `filters` on it,
 * and lets its router terminate the tunnel into a plain TCP connection to the application. No
 * timeout of the HTTP layer may end a tunnel that is still in use: the route and request timeouts
 * are off, and a stream is idle only as long as tcp_proxy's idle timeout allows.
 */
export function tunnelTerminationFilter(o: TunnelTerminationOptions): FilterJson {
  const connect = { upgrade_type: 'CONNECT' };
  const config = anyJson({
    '@type': `type.googleapis.com/${HCM}`,
    stat_prefix: o.statPrefix,
    codec_type: 'HTTP2',
    http2_protocol_options: { allow_connect: true },
    upgrade_configs: [connect],
    stream_idle_timeout: duration(TUNNEL_IDLE_TIMEOUT_MS),
    request_timeout: '0s',
    route_config: {
      name: o.routeName,
      virtual_hosts: [
        {
          name: 'local',
          domains: ['*'],
          routes: [
            {
              name: 'tunnel',
              match: { connect_matcher: {} },
              route: {
                cluster: o.cluster,
                timeout: '0s',
                upgrade_configs: [{ ...connect, connect_config: {} }],
              },
            },
          ],
        },
      ],
    },
    http_filters: [
      ...o.filters,
      {
        name: 'envoy.filters.http.router',
        typed_config: anyJson({ '@type': `type.googleapis.com/${ROUTER}` }),
      },
    ],
  });
  if (o.accessLog) {
    config.access_log = [o.accessLog];
    config.access_log_options = TUNNEL_AUDIT_OPTIONS;
  }
  return { name: 'envoy.filters.network.http_connection_manager', typed_config: config };
}
