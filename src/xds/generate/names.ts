// Resource names. One place decides them, so listeners, routes and clusters always agree.
import type { ServicePort, ServiceUpstream } from '../../manifest/types.ts';

/** `outbound|http|his.clinical`: the cluster (and its ClusterLoadAssignment) of one upstream port. */
export function outboundClusterName(u: Pick<ServiceUpstream, 'service' | 'namespace' | 'port'>): string {
  return `outbound|${u.port}|${u.service}.${u.namespace}`;
}

/**
 * `outbound|kafka#1|kafka.imaging`: the cluster (and assignment) of the instance with ordinal 1 on a
 * port with instancePorts. `#` is never in a port name, so it cannot collide with another port's.
 */
export function instanceClusterName(
  u: Pick<ServiceUpstream, 'service' | 'namespace' | 'port'>,
  ordinal: number,
): string {
  return outboundClusterName(instanceUpstream(u, ordinal, 0));
}

/** The upstream as seen by one instance's listener: its cluster and its local port base+k. */
export function instanceUpstream<U extends Pick<ServiceUpstream, 'service' | 'namespace' | 'port'>>(
  u: U,
  ordinal: number,
  base: number,
): U & { localPort: number } {
  return { ...u, port: `${u.port}#${ordinal}`, localPort: base + ordinal };
}

/** The route configuration for an HTTP/gRPC upstream is named like its cluster. */
export const outboundRouteName = outboundClusterName;

export function outboundListenerName(u: Pick<ServiceUpstream, 'localPort'>): string {
  return `outbound|${u.localPort}`;
}

/** `inbound|http`: the local application behind this sidecar, one per service port. */
export function inboundClusterName(p: Pick<ServicePort, 'name'>): string {
  return `inbound|${p.name}`;
}

export function inboundListenerName(p: Pick<ServicePort, 'port'>): string {
  return `inbound|${p.port}`;
}

/** The cluster a REST-polling sidecar's bootstrap defines for reaching the control plane. */
export const XDS_CLUSTER = 'clinimesh-xds';

/** The listener serving a sidecar's Prometheus metrics (Mesh `spec.metrics`); `|` keeps it apart. */
export const METRICS_LISTENER = 'metrics|prometheus';

/** The cluster to the sidecar's own Envoy admin on loopback, which only the metrics listener routes to. */
export const ADMIN_CLUSTER = 'clinimesh-admin';

/** The cluster of the mesh's trace collector (Mesh `spec.tracing`). */
export const TRACING_CLUSTER = 'clinimesh-tracing';
