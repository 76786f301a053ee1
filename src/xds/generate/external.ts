// Egress to ExternalServices (partners outside the mesh). Only a Service that lists one among its
// upstreams gets anything for it: a listener on its application's local port, and a cluster of the
// partner's endpoints (STRICT_DNS when any is a host name, which the sidecar resolves; STATIC for IP
// literals) that originates TLS and verifies the partner's certificate against the ExternalService's
// CA file and names. The partner has no sidecar of ours, so the caller's sidecar writes the audit line.
import { isIP } from 'node:net';
import { spiffeId } from '../../ca/spiffe.ts';
import type { Problem } from '../../errors.ts';
import {
  isExternalUpstream,
  serviceKey,
  type ExternalService,
  type ExternalUpstream,
  type Instance,
  type Mesh,
  type Service,
} from '../../manifest/types.ts';
import { anyJson } from '../resources/any-json.ts';
import type { TransportSocketJson } from '../resources/gen/envoy/config/core/v3/base_pb.ts';
import type { FilterJson } from '../resources/gen/envoy/config/listener/v3/listener_components_pb.ts';
import { CLUSTER, LISTENER } from '../resources/type-urls.ts';
import {
  auditPathOf,
  egressHttpAuditLog,
  egressTcpAuditLog,
  TCP_AUDIT_OPTIONS,
  type EgressTarget,
} from './audit.ts';
import { protocolOptions } from './clusters.ts';
import { duration } from './durations.ts';
import { httpConnectionManager, socketAddress } from './listeners.ts';
import { outboundListenerName } from './names.ts';
import { routeAction } from './route-action.ts';
import { virtualHost } from './routes.ts';
import { tcpProxyFilter } from './tcp-tunnel.ts';
import type { MeshView, Resource, SidecarRef } from './types.ts';

/**
 * The roots a partner is verified with when its ExternalService names no caFile: the system bundle
 * on the sidecar's host (Debian and Ubuntu's path, which Envoy's images use).
 */
export const SYSTEM_ROOTS_FILE = '/etc/ssl/certs/ca-certificates.crt';

const UPSTREAM_TLS = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext';

/** `external|reference-lab.clinical`: never a mesh cluster's name (those start `outbound|`/`inbound|`). */
export function externalClusterName(e: { name: string; namespace: string }): string {
  return `external|${serviceKey(e)}`;
}

/** `external:clinical/reference-lab`: how the audit trail names the partner. */
export const externalAuditName = (e: { name: string; namespace: string }): string =>
  `external:${e.namespace}/${e.name}`;

function originateTls(e: ExternalService): TransportSocketJson | undefined {
  if (e.tls.mode !== 'ORIGINATE') return undefined;
  const sans = e.tls.subjectAltNames.map((name) => ({
    san_type: isIP(name) ? ('IP_ADDRESS' as const) : ('DNS' as const),
    matcher: { exact: name },
  }));
  return {
    name: 'envoy.transport_sockets.tls',
    typed_config: anyJson({
      '@type': UPSTREAM_TLS,
      ...(e.tls.sni !== undefined && { sni: e.tls.sni }),
      common_tls_context: {
        tls_params: { tls_minimum_protocol_version: 'TLSv1_2' },
        ...(e.protocol === 'grpc' && { alpn_protocols: ['h2'] }),
        validation_context: {
          // Inline when the manifest holds the CA: a file a sidecar's host lacks would make its
          // Envoy refuse the whole cluster update, every other cluster's change with it.
          trusted_ca:
            e.tls.caCertificates !== undefined
              ? { inline_string: e.tls.caCertificates }
              : { filename: e.tls.caFile ?? SYSTEM_ROOTS_FILE },
          match_typed_subject_alt_names: sans,
        },
      },
    }),
  };
}

export function generateExternalCluster(e: ExternalService, mesh: Mesh): Resource<typeof CLUSTER> {
  const name = externalClusterName(e);
  const dns = e.endpoints.some((p) => isIP(p.address) === 0);
  const transport_socket = originateTls(e);
  return {
    typeUrl: CLUSTER,
    name,
    body: {
      name,
      type: dns ? 'STRICT_DNS' : 'STATIC',
      ...(dns && { dns_lookup_family: 'V4_PREFERRED' as const }),
      connect_timeout: duration(mesh.defaults.connectTimeoutMs),
      lb_policy: 'ROUND_ROBIN',
      load_assignment: {
        cluster_name: name,
        endpoints: [
          {
            lb_endpoints: e.endpoints.map((p) => ({
              endpoint: { address: socketAddress(p.address, p.port) },
            })),
          },
        ],
      },
      ...protocolOptions(e.protocol),
      ...(transport_socket && { transport_socket }),
    },
  };
}

/** The Host a partner expects: its SNI name, else its first host name; an IP-only partner keeps the app's. */
function partnerHost(e: ExternalService): string | undefined {
  if (e.tls.mode === 'ORIGINATE' && e.tls.sni !== undefined) return e.tls.sni;
  return e.endpoints.find((p) => isIP(p.address) === 0)?.address;
}

interface ListenerContext {
  readonly mesh: Mesh;
  readonly instance: Instance;
  readonly sidecar: SidecarRef;
  readonly audit?: { readonly path: string; readonly target: EgressTarget };
}

export function generateExternalListener(
  upstream: ExternalUpstream,
  e: ExternalService,
  c: ListenerContext,
): Resource<typeof LISTENER> {
  const name = outboundListenerName(upstream);
  const cluster = externalClusterName(e);
  const statPrefix = `egress_${e.name}_${e.namespace}`;
  let filter: FilterJson;
  if (e.protocol === 'tcp') {
    const log = c.audit && egressTcpAuditLog(c.audit.path, c.audit.target);
    filter = tcpProxyFilter({
      statPrefix,
      cluster,
      ...(log && { accessLog: { log, options: TCP_AUDIT_OPTIONS } }),
    });
  } else {
    const host = partnerHost(e);
    const action = {
      ...routeAction(cluster, c.mesh, e.protocol, true),
      ...(host && { host_rewrite_literal: host }),
    };
    filter = httpConnectionManager(
      statPrefix,
      // Inline: nothing (no TrafficPolicy) reshapes a partner's routes, so no RDS resource is needed.
      { route_config: { name: cluster, virtual_hosts: [virtualHost(e.name, action)] } },
      { accessLog: c.audit && egressHttpAuditLog(c.audit.path, c.audit.target) },
    );
  }
  return {
    typeUrl: LISTENER,
    name,
    body: {
      name,
      address: socketAddress(c.instance.appAddress, upstream.localPort),
      traffic_direction: 'OUTBOUND',
      filter_chains: [{ filters: [filter] }],
      metadata: { filter_metadata: { clinimesh: { external: serviceKey(e) } } },
    },
  };
}

/** A sidecar's listeners and clusters for the ExternalServices its service lists (none for others). */
export function generateExternalUpstreams(
  view: MeshView,
  service: Service,
  instance: Instance,
  sidecar: SidecarRef,
): { resources: Resource[]; problems: Problem[] } {
  const resources: Resource[] = [];
  const problems: Problem[] = [];
  const clusters = new Set<string>();
  const auditPath = auditPathOf(view.mesh, sidecar);
  const source = spiffeId(view.mesh.trustDomain, { namespace: service.namespace, service: service.name });
  for (const u of service.upstreams) {
    if (!isExternalUpstream(u)) continue;
    const e = view.externals?.get(serviceKey({ name: u.external, namespace: u.namespace }));
    if (!e) {
      problems.push({
        code: 'REFERENCE',
        resource: `sidecar ${sidecar.nodeId}`,
        message: `external upstream ${u.namespace}/${u.external} does not exist`,
      });
      continue;
    }
    // Two local ports for one partner share its cluster.
    if (!clusters.has(externalClusterName(e))) {
      clusters.add(externalClusterName(e));
      resources.push(generateExternalCluster(e, view.mesh));
    }
    const audit = auditPath
      ? { path: auditPath, target: { source, destination: externalAuditName(e) } }
      : undefined;
    resources.push(
      generateExternalListener(u, e, { mesh: view.mesh, instance, sidecar, ...(audit && { audit }) }),
    );
  }
  return { resources, problems };
}
