// Prometheus metrics of a sidecar (Mesh `spec.metrics`): a listener on the instance's address that
// answers GET /stats/prometheus from Envoy's admin and 404 to everything else. The admin itself stays
// on loopback; only this one read-only page of it is reachable from the network. Stat names carry
// cluster and listener names, never a path, query or header, so no patient data leaves this way.
import type { Instance, Mesh, MeshMetrics } from '../../manifest/types.ts';
import type { ListenerJson } from '../resources/gen/envoy/config/listener/v3/listener_pb.ts';
import type { RouteConfigurationJson } from '../resources/gen/envoy/config/route/v3/route_pb.ts';
import { CLUSTER, LISTENER } from '../resources/type-urls.ts';
import { httpConnectionManager, socketAddress } from './listeners.ts';
import { ADMIN_CLUSTER, METRICS_LISTENER } from './names.ts';
import type { Resource, SidecarRef } from './types.ts';

export const PROMETHEUS_PATH = '/stats/prometheus';
/** The agent's default admin port; a sidecar whose admin listens elsewhere says so in node metadata. */
export const DEFAULT_ADMIN_PORT = 15000;

/** GET /stats/prometheus to the admin (a query such as `?usedonly` is the admin's to read); else 404. */
function metricsRoutes(): RouteConfigurationJson {
  return {
    name: METRICS_LISTENER,
    virtual_hosts: [
      {
        name: 'metrics',
        domains: ['*'],
        routes: [
          {
            name: 'prometheus',
            match: {
              path: PROMETHEUS_PATH,
              headers: [{ name: ':method', string_match: { exact: 'GET' } }],
            },
            route: { cluster: ADMIN_CLUSTER },
          },
          { name: 'not-found', match: { prefix: '/' }, direct_response: { status: 404 } },
        ],
      },
    ],
  };
}

function metricsListener(metrics: MeshMetrics, instance: Instance): Resource<typeof LISTENER> {
  const body: ListenerJson = {
    name: METRICS_LISTENER,
    address: socketAddress(instance.address, metrics.port),
    traffic_direction: 'INBOUND',
    // No audit log and no tracing: a scrape is not a clinical call.
    filter_chains: [{ filters: [httpConnectionManager('metrics', { route_config: metricsRoutes() })] }],
  };
  return { typeUrl: LISTENER, name: METRICS_LISTENER, body };
}

function adminCluster(adminPort: number): Resource<typeof CLUSTER> {
  return {
    typeUrl: CLUSTER,
    name: ADMIN_CLUSTER,
    body: {
      name: ADMIN_CLUSTER,
      type: 'STATIC',
      connect_timeout: '1s',
      load_assignment: {
        cluster_name: ADMIN_CLUSTER,
        endpoints: [
          {
            lb_endpoints: [{ endpoint: { address: socketAddress('127.0.0.1', adminPort) } }],
          },
        ],
      },
    },
  };
}

/**
 * The metrics listener and the cluster to the sidecar's own admin, when the Mesh asks for metrics.
 * None when the admin's port is unknown (an agent given port 0 lets Envoy pick it after start).
 */
export function generateMetrics(
  mesh: Mesh,
  instance: Instance,
  sidecar: SidecarRef,
): [Resource<typeof CLUSTER>, Resource<typeof LISTENER>] | [] {
  const adminPort = sidecar.adminPort ?? DEFAULT_ADMIN_PORT;
  if (!mesh.metrics || adminPort === 0) return [];
  return [adminCluster(adminPort), metricsListener(mesh.metrics, instance)];
}
