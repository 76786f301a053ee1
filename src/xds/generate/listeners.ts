// Listeners: inbound (peers → this instance's app) per service port, outbound (app → upstream) per
// upstream. HTTP and gRPC go through the HTTP connection manager, TCP through tcp_proxy (between
// sidecars under mTLS, inside an HTTP/2 CONNECT tunnel: tcp-tunnel.ts). Inbound listeners terminate
// mutual TLS, enforce authorization and write the audit trail.
import { spiffeId } from '../../ca/spiffe.ts';
import type {
  AccessPolicy,
  Instance,
  Mesh,
  MeshTracing,
  Protocol,
  Service,
  ServicePort,
  TrafficPolicy,
  ServiceUpstream,
} from '../../manifest/types.ts';
import { anyJson } from '../resources/any-json.ts';
import type { AccessLogJson } from '../resources/gen/envoy/config/accesslog/v3/accesslog_pb.ts';
import type { AddressJson } from '../resources/gen/envoy/config/core/v3/address_pb.ts';
import type { FilterJson } from '../resources/gen/envoy/config/listener/v3/listener_components_pb.ts';
import type { ListenerJson } from '../resources/gen/envoy/config/listener/v3/listener_pb.ts';
import type {
  HttpConnectionManager_TracingJson,
  HttpConnectionManagerJson,
  HttpFilterJson,
} from '../resources/gen/envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager_pb.ts';
import { LISTENER } from '../resources/type-urls.ts';
import { auditPathOf, httpAuditLog, TCP_AUDIT_OPTIONS, tcpAuditLog } from './audit.ts';
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
import { tcpProxyFilter, tunnelAuthority, tunnelTerminationFilter } from './tcp-tunnel.ts';
import { hcmTracing, spanName, withSpanName } from './tracing.ts';
import { faultFilter, rateLimitFilters } from './traffic.ts';
import type { Resource, SidecarRef } from './types.ts';

const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'envoy.extensions.filters.http.router.v3.Router';
const TLS_INSPECTOR = 'envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector';

export function socketAddress(address: string, port: number): AddressJson {
  return { socket_address: { address, port_value: port } };
}

export function httpConnectionManager(
  statPrefix: string,
  routing: HttpConnectionManagerJson,
  extra: {
    filters?: HttpFilterJson[];
    accessLog?: AccessLogJson;
    inbound?: boolean;
    tracing?: HttpConnectionManager_TracingJson;
  } = {},
): FilterJson {
  const config = anyJson({
    '@type': `type.googleapis.com/${HCM}`,
    stat_prefix: statPrefix,
    codec_type: 'AUTO',
    ...routing,
    http_filters: [
      ...(extra.filters ?? []),
      {
        name: 'envoy.filters.http.router',
        typed_config: anyJson({ '@type': `type.googleapis.com/${ROUTER}` }),
      },
    ],
  });
  if (extra.accessLog) config.access_log = [extra.accessLog];
  if (extra.tracing) config.tracing = extra.tracing;
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

interface InboundPlan {
  readonly cluster: string;
  readonly statPrefix: string;
  readonly enforced: boolean;
  readonly auditPath?: string;
  readonly destination: string;
}

function inboundPlan(port: ServicePort, c: InboundContext): InboundPlan {
  return {
    cluster: inboundClusterName(port),
    statPrefix: `inbound_${port.name}`,
    enforced: needsRbac(c.mesh, c.policies),
    auditPath: auditPathOf(c.mesh, c.sidecar),
    destination: spiffeId(c.mesh.trustDomain, { namespace: c.service.namespace, service: c.service.name }),
  };
}

function inboundHttpFilters(port: ServicePort, c: InboundContext, name: string): FilterJson[] {
  const p = inboundPlan(port, c);
  const host = virtualHost('local', routeAction(p.cluster, c.mesh, port.protocol, false));
  if (c.mesh.tracing) host.routes = withSpanName(host.routes ?? [], spanName(c.service, port.name));
  return [
    httpConnectionManager(
      p.statPrefix,
      {
        route_config: {
          name,
          virtual_hosts: [host],
          // Only Envoy may claim a request's original path; a caller's copy is dropped.
          request_headers_to_remove: ['x-envoy-original-path'],
        },
      },
      {
        filters: [
          ...(p.enforced ? [httpRbacFilter(c.mesh, c.policies, port)] : []),
          ...rateLimitFilters(port, c.traffic, p.statPrefix),
        ],
        accessLog: p.auditPath ? httpAuditLog(p.auditPath, p.destination, p.enforced) : undefined,
        inbound: c.mtls,
        tracing: c.mesh.tracing && hcmTracing(c.mesh.tracing),
      },
    ),
  ];
}

/** Mesh callers of a TCP port: CONNECT tunnels, authorized before the application is connected. */
function inboundTunnelFilters(port: ServicePort, c: InboundContext, name: string): FilterJson[] {
  const p = inboundPlan(port, c);
  const target = { destination: p.destination, port: port.name };
  return [
    tunnelTerminationFilter({
      statPrefix: p.statPrefix,
      routeName: name,
      cluster: p.cluster,
      filters: p.enforced ? [httpRbacFilter(c.mesh, c.policies, port)] : [],
      accessLog: p.auditPath ? tcpAuditLog(p.auditPath, target, p.enforced, true) : undefined,
    }),
  ];
}

/**
 * Raw TCP to a TCP port: without mTLS (plain generation) and for PERMISSIVE's plaintext chain. Its
 * network RBAC decides after the application is connected, so it cannot be leak-free; callers in
 * the mesh never take this path.
 */
function inboundRawTcpFilters(port: ServicePort, c: InboundContext): FilterJson[] {
  const p = inboundPlan(port, c);
  const target = { destination: p.destination, port: port.name };
  return [
    ...(p.enforced ? [networkRbacFilter(c.mesh, c.policies, port, p.statPrefix)] : []),
    tcpProxyFilter({
      statPrefix: p.statPrefix,
      cluster: p.cluster,
      accessLog: p.auditPath
        ? { log: tcpAuditLog(p.auditPath, target, p.enforced, false), options: TCP_AUDIT_OPTIONS }
        : undefined,
    }),
  ];
}

export function generateInboundListener(port: ServicePort, c: InboundContext): Resource<typeof LISTENER> {
  const name = inboundListenerName(port);
  const http = isHttp(port.protocol);
  const plain = http ? inboundHttpFilters(port, c, name) : inboundRawTcpFilters(port, c);
  const body: ListenerJson = {
    name,
    address: socketAddress(c.instance.address, port.port),
    traffic_direction: 'INBOUND',
    filter_chains: [{ filters: plain }],
  };
  if (c.mtls) {
    const tls = {
      filters: http ? plain : inboundTunnelFilters(port, c, name),
      transport_socket: downstreamTls(c.mesh.trustDomain, c.sidecar, http ? [] : ['h2']),
    };
    if (c.mesh.mtls.mode === 'STRICT') body.filter_chains = [tls];
    else {
      // PERMISSIVE, for migrating a service into the mesh: TLS when the client speaks it, else plaintext.
      body.listener_filters = [
        {
          name: 'envoy.filters.listener.tls_inspector',
          typed_config: anyJson({ '@type': `type.googleapis.com/${TLS_INSPECTOR}` }),
        },
      ];
      body.filter_chains = [
        { name: 'mtls', filter_chain_match: { transport_protocol: 'tls' }, ...tls },
        { name: 'plaintext', filter_chain_match: { transport_protocol: 'raw_buffer' }, filters: plain },
      ];
    }
  }
  return { typeUrl: LISTENER, name, body };
}

export interface OutboundOptions {
  /** The route table injects faults (drills), so the HCM carries the fault filter. */
  readonly faults?: boolean;
  /** The mesh encrypts: TCP goes through a CONNECT tunnel to the destination's sidecar. */
  readonly mtls?: boolean;
  /** The mesh traces: HTTP and gRPC calls report client spans (their names come with the routes). */
  readonly tracing?: MeshTracing;
}

export function generateOutboundListener(
  upstream: ServiceUpstream,
  target: Service,
  port: ServicePort,
  instance: Instance,
  sidecar: SidecarRef,
  { faults = false, mtls = false, tracing }: OutboundOptions = {},
): Resource<typeof LISTENER> {
  const name = outboundListenerName(upstream);
  const cluster = outboundClusterName(upstream);
  const statPrefix = `outbound_${upstream.service}_${upstream.namespace}_${port.name}`;
  const filter = isHttp(port.protocol)
    ? httpConnectionManager(
        statPrefix,
        { rds: { config_source: configSource(sidecar.transport), route_config_name: cluster } },
        { filters: faults ? [faultFilter()] : [], tracing: tracing && hcmTracing(tracing) },
      )
    : tcpProxyFilter({
        statPrefix,
        cluster,
        tunnel: mtls ? tunnelAuthority(target, port.port) : undefined,
      });
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
