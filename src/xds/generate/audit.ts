// The audit trail: who called what, and what was decided. One JSON line per inbound request (per
// connection for TCP), written by the destination's sidecar. Deliberately absent: bodies, query
// strings and headers other than the request id, any of which can carry patient data.
import type { JsonObject } from '../resources/json.ts';
import { HTTP_RBAC, NETWORK_RBAC } from './rbac.ts';

const FILE_LOG = 'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog';

function decision(filter: string, enforced: boolean): JsonObject {
  return enforced
    ? { authz: `%DYNAMIC_METADATA(${filter}:shadow_engine_result)%`, authz_policy: `%DYNAMIC_METADATA(${filter}:shadow_effective_policy_id)%` }
    : { authz: 'allowed', authz_policy: 'mesh-default-allow' };
}

const WITHOUT_QUERY = {
  name: 'envoy.formatter.req_without_query',
  typed_config: { '@type': 'type.googleapis.com/envoy.extensions.formatter.req_without_query.v3.ReqWithoutQuery' },
};

function fileLog(path: string, fields: JsonObject, formatters: JsonObject[] = []): JsonObject {
  const log_format: JsonObject = { json_format: fields };
  if (formatters.length) log_format.formatters = formatters;
  return { name: 'envoy.access_loggers.file', typed_config: { '@type': FILE_LOG, path, log_format } };
}

export function httpAuditLog(path: string, destination: string, enforced: boolean): JsonObject {
  return fileLog(path, {
    time: '%START_TIME%',
    source: '%DOWNSTREAM_PEER_URI_SAN%',
    destination,
    method: '%REQ(:METHOD)%',
    // The query string can carry identifiers (MRN, name); the path is logged without it.
    path: '%REQ_WITHOUT_QUERY(X-ENVOY-ORIGINAL-PATH?:PATH)%',
    status: '%RESPONSE_CODE%',
    duration_ms: '%DURATION%',
    request_id: '%REQ(X-REQUEST-ID)%',
    ...decision(HTTP_RBAC, enforced),
  }, [WITHOUT_QUERY]);
}

export function tcpAuditLog(path: string, destination: string, enforced: boolean): JsonObject {
  return fileLog(path, {
    time: '%START_TIME%',
    source: '%DOWNSTREAM_PEER_URI_SAN%',
    destination,
    bytes_received: '%BYTES_RECEIVED%',
    bytes_sent: '%BYTES_SENT%',
    duration_ms: '%DURATION%',
    ...decision(NETWORK_RBAC, enforced),
  });
}
