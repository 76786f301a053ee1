// Listeners: inbound (peers → this instance's app) per service port, outbound (app → upstream) per
// upstream. HTTP and gRPC go through the HTTP connection manager, TCP through tcp_proxy. Inbound
// listeners terminate mutual TLS, enforce authorization and write the audit trail.
import { spiffeId } from '../../ca/spiffe.ts';
import type {
  AccessPolicy,
  Instance,
  Mesh,
  Protocol,
  Service,
  ServicePort,
  TrafficPolicy,
  Upstream,
} from '../../manifest/types.ts';
import type { JsonObject } from '../resources/json.ts';
import { LISTENER } from '../resources/type-urls.ts';
import { httpAuditLog, TCP_AUDIT_OPTIONS, tcpAuditLog } from './audit.ts';
import { configSource } from './config-source.ts';
import {
  inboundClusterName,
  inboundListenerName,
  outboundClusterName,
  outboundListenerName,
} from './names.ts';
import { httpRbacFilter, needsRbac, networkRbacFilter } from './rbac.ts';
import { routeAction } from './route-action.ts';
import { virtualHost } from './routes.ts';
import { downstreamTls } from './secrets.ts';
import { faultFilter, rateLimitFilters } from './traffic.ts';
import type { Resource, SidecarRef } from './types.ts';

const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'envoy.extensions.filters.http.router.v3.Router';
const TCP_PROXY = 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const TLS_INSPECTOR = 'envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector';

function socketAddress(address: string, port: number): JsonObject {
  return { socket_address: { address, port_value: port } };
}

function httpConnectionManager(
  statPrefix: string,
  routing: JsonObject,
  extra: { filters?: JsonObject[]; accessLog?: JsonObject; inbound?: boolean } = {},
): JsonObject {
  const config: JsonObject = {
    '@type': `type.googleapis.com/${HCM}`,
    stat_prefix: statPrefix,
    codec_type: 'AUTO',
    ...routing,
    http_filters: [
      ...(extra.filters ?? []),
      { name: 'envoy.filters.http.router', typed_config: { '@type': `type.googleapis.com/${ROUTER}` } },
    ],
  };
  if (extra.accessLog) config.access_log = [extra.accessLog];
  if (extra.inbound) {
    // Tell the application who called it (the verified SPIFFE ID), and never trust a caller's copy.
    config.forward_client_cert_details = 'SANITIZE_SET';
    config.set_current_client_cert_details = { uri: true };
    // RBAC matches the path the application will see: `/patients/../admin` must not pass as
    // `/patients/`. Normalise, merge slashes, and refuse escaped slashes outright.
    config.normalize_path = true;
    config.merge_slashes = true;
    config.path_with_escaped_slashes_action = 'REJECT_REQUEST';
  }
  return { name: 'envoy.filters.network.http_connection_manager', typed_config: config };
}

function tcpProxy(statPrefix: string, cluster: string, accessLog?: JsonObject): JsonObject {
  const config: JsonObject = {
    '@type': `type.googleapis.com/${TCP_PROXY}`,
    stat_prefix: statPrefix,
    cluster,
  };
  if (accessLog) {
    config.access_log = [accessLog];
    config.access_log_options = TCP_AUDIT_OPTIONS;
  }
  return { name: 'envoy.filters.network.tcp_proxy', typed_config: config };
}

function isHttp(p: Protocol): boolean {
  return p === 'http' || p === 'grpc';
}

export interface InboundContext {
  readonly mesh: Mesh;
  readonly service: Service;
  readonly instance: Instance;
  readonly policies: readonly AccessPolicy[];
  /** TrafficPolicies whose destination is this service: their rate limits are enforced here. */
  readonly traffic: readonly TrafficPolicy[];
  readonly sidecar: SidecarRef;
  /** Without identity material there is no TLS (only for tests of plain generation). */
  readonly mtls: boolean;
}

function inboundFilters(port: ServicePort, c: InboundContext, name: string): JsonObject[] {
  const cluster = inboundClusterName(port);
  const statPrefix = `inbound_${port.name}`;
  const enforced = needsRbac(c.mesh, c.policies);
  const auditPath = c.mesh.audit.enabled ? (c.sidecar.auditLogPath ?? c.mesh.audit.path) : undefined;
  const destination = spiffeId(c.mesh.trustDomain, {
    namespace: c.service.namespace,
    service: c.service.name,
  });
  if (isHttp(port.protocol)) {
    return [
      httpConnectionManager(
        statPrefix,
        {
          route_config: {
            name,
            virtual_hosts: [virtualHost('local', routeAction(cluster, c.mesh, port.protocol, false))],
            // Only Envoy may claim a request's original path; a caller's copy is dropped.
            request_headers_to_remove: ['x-envoy-original-path'],
          },
        },
        {
          filters: [
            ...(enforced ? [httpRbacFilter(c.mesh, c.policies)] : []),
            ...rateLimitFilters(port, c.traffic, statPrefix),
          ],
          accessLog: auditPath ? httpAuditLog(auditPath, destination, enforced) : undefined,
          inbound: c.mtls,
        },
      ),
    ];
  }
  return [
    ...(enforced ? [networkRbacFilter(c.mesh, c.policies, statPrefix)] : []),
    tcpProxy(statPrefix, cluster, auditPath ? tcpAuditLog(auditPath, destination, enforced) : undefined),
  ];
}

export function generateInboundListener(port: ServicePort, c: InboundContext): Resource {
  const name = inboundListenerName(port);
  const filters = inboundFilters(port, c, name);
  const body: JsonObject = {
    name,
    address: socketAddress(c.instance.address, port.port),
    traffic_direction: 'INBOUND',
    filter_chains: [{ filters }],
  };
  if (c.mtls) {
    const tls = { filters, transport_socket: downstreamTls(c.mesh.trustDomain, c.sidecar) };
    if (c.mesh.mtls.mode === 'STRICT') body.filter_chains = [tls];
    else {
      // PERMISSIVE, for migrating a service into the mesh: TLS when the client speaks it, else plaintext.
      body.listener_filters = [
        {
          name: 'envoy.filters.listener.tls_inspector',
          typed_config: { '@type': `type.googleapis.com/${TLS_INSPECTOR}` },
        },
      ];
      body.filter_chains = [
        { name: 'mtls', filter_chain_match: { transport_protocol: 'tls' }, ...tls },
        { name: 'plaintext', filter_chain_match: { transport_protocol: 'raw_buffer' }, filters },
      ];
    }
  }
  return { typeUrl: LISTENER, name, body };
}

/** `faults`: the route table injects faults (drills), so the HCM carries the fault filter. */
export function generateOutboundListener(
  upstream: Upstream,
  target: Service,
  port: ServicePort,
  instance: Instance,
  sidecar: SidecarRef,
  faults = false,
): Resource {
  const name = outboundListenerName(upstream);
  const cluster = outboundClusterName(upstream);
  const statPrefix = `outbound_${upstream.service}_${upstream.namespace}_${port.name}`;
  const filter = isHttp(port.protocol)
    ? httpConnectionManager(
        statPrefix,
        { rds: { config_source: configSource(sidecar.transport), route_config_name: cluster } },
        { filters: faults ? [faultFilter()] : [] },
      )
    : tcpProxy(statPrefix, cluster);
  return {
    typeUrl: LISTENER,
    name,
    body: {
      name,
      address: socketAddress(instance.appAddress, upstream.localPort),
      traffic_direction: 'OUTBOUND',
      filter_chains: [{ filters: [filter] }],
      metadata: { filter_metadata: { clinimesh: { upstream: `${target.name}.${target.namespace}` } } },
    },
  };
}
