// The audit trail: who called what, and what was decided. One JSON line per inbound request (per
// connection for TCP), written by the destination's sidecar; for calls to partners outside the mesh
// (ExternalServices), which have no sidecar of ours, by the caller's sidecar (`direction: egress`). Deliberately absent: bodies, query
// strings and headers other than the request id, any of which can carry patient data.
import { anyJson } from '../resources/any-json.ts';
import type { AccessLogJson } from '../resources/gen/envoy/config/accesslog/v3/accesslog_pb.ts';
import type { TypedExtensionConfigJson } from '../resources/gen/envoy/config/core/v3/extension_pb.ts';
import type { TcpProxy_TcpAccessLogOptionsJson } from '../resources/gen/envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy_pb.ts';
import type { SubstitutionFormatStringJson } from '../resources/gen/envoy/config/core/v3/substitution_format_string_pb.ts';
import type { StructJson } from '@bufbuild/protobuf/wkt';
import type { Mesh } from '../../manifest/types.ts';
import { HTTP_RBAC, NETWORK_RBAC } from './rbac.ts';
import type { SidecarRef } from './types.ts';

const FILE_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';

function decision(filter: string, enforced: boolean): StructJson {
  return enforced
    ? {
        authz: `%DYNAMIC_METADATA(${filter}:shadow_engine_result)%`,
        authz_policy: `%DYNAMIC_METADATA(${filter}:shadow_effective_policy_id)%`,
      }
    : { authz: 'allowed', authz_policy: 'mesh-default-allow' };
}

const WITHOUT_QUERY: TypedExtensionConfigJson = {
  name: 'envoy.formatter.req_without_query',
  typed_config: anyJson({
    '@type': 'type.googleapis.com/envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery',
  }),
};

function fileLog(
  path: string,
  fields: StructJson,
  formatters: TypedExtensionConfigJson[] = [],
): AccessLogJson {
  const log_format: SubstitutionFormatStringJson = { json_format: fields };
  if (formatters.length) log_format.formatters = formatters;
  return {
    name: 'envoy.access_loggers.file',
    typed_config: anyJson({ '@type': FILE_LOG, path, log_format }),
  };
}

/** Where a sidecar writes its audit trail: its agent's path, else the mesh's; none when auditing is off. */
export function auditPathOf(mesh: Mesh, sidecar: SidecarRef): string | undefined {
  return mesh.audit.enabled ? (sidecar.auditLogPath ?? mesh.audit.path) : undefined;
}

export function httpAuditLog(path: string, destination: string, enforced: boolean): AccessLogJson {
  return fileLog(
    path,
    {
      time: '%START_TIME%',
      source: '%DOWNSTREAM_PEER_URI_SAN%',
      destination,
      method: '%REQ(:METHOD)%',
      // The query string can carry identifiers (MRN, name); the path is logged without it. Only
      // :PATH, never x-envoy-original-path, which a caller could set to lie to the audit trail.
      path: '%REQ_WITHOUT_QUERY(:PATH)%',
      status: '%RESPONSE_CODE%',
      // A denied gRPC call is HTTP 200 with grpc-status 7: log both.
      grpc_status: '%GRPC_STATUS%',
      duration_ms: '%DURATION%',
      // Caller-supplied; bounded so it cannot flood the trail.
      request_id: '%REQ(X-REQUEST-ID):64%',
      ...decision(HTTP_RBAC, enforced),
    },
    [WITHOUT_QUERY],
  );
}

/** What a caller's sidecar knows of a call to a partner: who it is and which ExternalService it meant. */
export interface EgressTarget {
  /** The caller's SPIFFE ID: the sidecar writes it, no peer certificate names it. */
  readonly source: string;
  /** `external:clinical/reference-lab`. */
  readonly destination: string;
}

/** The partner's address and why its connection failed (a certificate refused reads here). */
const EGRESS_UPSTREAM: StructJson = {
  upstream_host: '%UPSTREAM_HOST%',
  upstream_failure: '%UPSTREAM_TRANSPORT_FAILURE_REASON%',
};

export function egressHttpAuditLog(path: string, target: EgressTarget): AccessLogJson {
  return fileLog(
    path,
    {
      time: '%START_TIME%',
      direction: 'egress',
      source: target.source,
      destination: target.destination,
      method: '%REQ(:METHOD)%',
      path: '%REQ_WITHOUT_QUERY(:PATH)%',
      status: '%RESPONSE_CODE%',
      grpc_status: '%GRPC_STATUS%',
      duration_ms: '%DURATION%',
      request_id: '%REQ(X-REQUEST-ID):64%',
      ...EGRESS_UPSTREAM,
    },
    [WITHOUT_QUERY],
  );
}

export function egressTcpAuditLog(path: string, target: EgressTarget): AccessLogJson {
  return fileLog(path, {
    time: '%START_TIME%',
    event: '%ACCESS_LOG_TYPE%',
    direction: 'egress',
    source: target.source,
    destination: target.destination,
    bytes_received: '%BYTES_RECEIVED%',
    bytes_sent: '%BYTES_SENT%',
    duration_ms: '%DURATION%',
    ...EGRESS_UPSTREAM,
  });
}

/** TCP connections can live for days: log at connect and then periodically, not only at close. */
export const TCP_AUDIT_OPTIONS: TcpProxy_TcpAccessLogOptionsJson = {
  flush_access_log_on_connected: true,
  access_log_flush_interval: '60s',
};

/**
 * One line per TCP connection (mesh callers: per tunnel) and event: when it is up, every minute,
 * and at its end (`event` says which; the end line has the totals). `tunnel`: the connection came
 * through an HTTP/2 CONNECT tunnel, so the decision is the HTTP RBAC filter's, taken before the
 * application was connected; otherwise it is network RBAC's (the PERMISSIVE plaintext chain).
 */
export function tcpAuditLog(
  path: string,
  target: { destination: string; port: string },
  enforced: boolean,
  tunnel: boolean,
): AccessLogJson {
  return fileLog(path, {
    time: '%START_TIME%',
    event: '%ACCESS_LOG_TYPE%',
    source: '%DOWNSTREAM_PEER_URI_SAN%',
    destination: target.destination,
    port: target.port,
    ...(tunnel && { status: '%RESPONSE_CODE%' }),
    bytes_received: '%BYTES_RECEIVED%',
    bytes_sent: '%BYTES_SENT%',
    duration_ms: '%DURATION%',
    ...decision(tunnel ? HTTP_RBAC : NETWORK_RBAC, enforced),
  });
}
