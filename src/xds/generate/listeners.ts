// Listeners: inbound (peers → this instance's app) per service port, outbound (app → upstream) per
// upstream. HTTP and gRPC go through the HTTP connection manager, TCP through tcp_proxy.
import type { Instance, Mesh, Protocol, Service, ServicePort, Upstream } from '../../manifest/types.ts';
import type { JsonObject } from '../resources/json.ts';
import { LISTENER } from '../resources/type-urls.ts';
import { configSource } from './config-source.ts';
import { inboundClusterName, inboundListenerName, outboundClusterName, outboundListenerName } from './names.ts';
import { routeAction, virtualHost } from './routes.ts';
import type { Resource, XdsTransport } from './types.ts';

const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'envoy.extensions.filters.http.router.v3.Router';
const TCP_PROXY = 'envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';

function socketAddress(address: string, port: number): JsonObject {
  return { socket_address: { address, port_value: port } };
}

function httpConnectionManager(statPrefix: string, routing: JsonObject): JsonObject {
  return {
    name: 'envoy.filters.network.http_connection_manager',
    typed_config: {
      '@type': `type.googleapis.com/${HCM}`,
      stat_prefix: statPrefix,
      codec_type: 'AUTO',
      ...routing,
      http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': `type.googleapis.com/${ROUTER}` } }],
    },
  };
}

function tcpProxy(statPrefix: string, cluster: string): JsonObject {
  return {
    name: 'envoy.filters.network.tcp_proxy',
    typed_config: { '@type': `type.googleapis.com/${TCP_PROXY}`, stat_prefix: statPrefix, cluster },
  };
}

function isHttp(p: Protocol): boolean {
  return p === 'http' || p === 'grpc';
}

export function generateInboundListener(port: ServicePort, instance: Instance, mesh: Mesh): Resource {
  const name = inboundListenerName(port);
  const cluster = inboundClusterName(port);
  const statPrefix = `inbound_${port.name}`;
  const filter = isHttp(port.protocol)
    ? httpConnectionManager(statPrefix, {
        route_config: { name, virtual_hosts: [virtualHost('local', routeAction(cluster, mesh, port.protocol, false))] },
      })
    : tcpProxy(statPrefix, cluster);
  return {
    typeUrl: LISTENER,
    name,
    body: {
      name,
      address: socketAddress(instance.address, port.port),
      traffic_direction: 'INBOUND',
      filter_chains: [{ filters: [filter] }],
    },
  };
}

export function generateOutboundListener(
  upstream: Upstream,
  target: Service,
  port: ServicePort,
  instance: Instance,
  transport: XdsTransport,
): Resource {
  const name = outboundListenerName(upstream);
  const cluster = outboundClusterName(upstream);
  const statPrefix = `outbound_${upstream.service}_${upstream.namespace}_${port.name}`;
  const filter = isHttp(port.protocol)
    ? httpConnectionManager(statPrefix, { rds: { config_source: configSource(transport), route_config_name: cluster } })
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
