// The parts of an xDS DiscoveryRequest the server uses, decoded from binary (gRPC) or JSON (REST).
import { fromJson, type DescMessage, type JsonValue as PbJson } from '@bufbuild/protobuf';
import { fail, ok, type Problem, type Result } from '../../errors.ts';
import type { JsonObject } from '../resources/json.ts';
import { envoyRegistry, messageDesc } from '../resources/registry.ts';
import { readDiscoveryRequest, type DecodedRequest } from './request-wire.ts';

export interface NodeInfo {
  readonly id: string;
  readonly cluster: string;
  /** node.metadata as plain JSON (a google.protobuf.Struct). */
  readonly metadata: JsonObject;
  readonly userAgent: string;
}

export interface XdsRequest {
  readonly versionInfo: string;
  readonly node?: NodeInfo;
  readonly resourceNames: readonly string[];
  readonly typeUrl: string;
  readonly responseNonce: string;
  /** error_detail.message when the client rejects the last response (a NACK). */
  readonly errorDetail?: string;
}

let desc: DescMessage | undefined;
const requestDesc = () => (desc ??= messageDesc('envoy.service.discovery.v3.DiscoveryRequest'));

/** The decoded `node` of a request (SotW or delta) as NodeInfo. */
export function nodeInfoOf(node: DecodedRequest['node']): NodeInfo | undefined {
  return node
    ? {
        id: node.id,
        cluster: node.cluster,
        metadata: structJson(node.metadata),
        userAgent: node.userAgentName,
      }
    : undefined;
}

function toRequest(m: DecodedRequest, metadataJson: JsonObject): XdsRequest {
  return {
    versionInfo: m.versionInfo,
    node: m.node
      ? { id: m.node.id, cluster: m.node.cluster, metadata: metadataJson, userAgent: m.node.userAgentName }
      : undefined,
    resourceNames: m.resourceNames,
    typeUrl: m.typeUrl,
    responseNonce: m.responseNonce,
    errorDetail: m.errorDetail ? m.errorDetail.message || `code ${m.errorDetail.code}` : undefined,
  };
}

function structJson(value: unknown): JsonObject {
  // google.protobuf.Struct decodes to plain JSON in protobuf-es (well-known type unwrapping).
  return value && typeof value === 'object' ? (value as JsonObject) : {};
}

export function decodeRequestBinary(bytes: Uint8Array): XdsRequest {
  const m = readDiscoveryRequest(bytes);
  return toRequest(m, structJson(m.node?.metadata));
}

export function decodeRequestJson(json: unknown): Result<XdsRequest> {
  try {
    const m = fromJson(requestDesc(), json as PbJson, {
      registry: envoyRegistry(),
      ignoreUnknownFields: true,
    }) as unknown as DecodedRequest;
    return ok(toRequest(m, structJson(m.node?.metadata)));
  } catch (e) {
    return fail([{ code: 'SCHEMA', message: `not a DiscoveryRequest: ${(e as Error).message}` }]);
  }
}

/** Node ids are `<namespace>/<service>/<instance>` (three DNS labels); anything longer is refused at once. */
export const MAX_NODE_ID_BYTES = 256;
/** Node metadata (as JSON) beyond this is refused; ours is a few hundred bytes. */
export const MAX_NODE_METADATA_BYTES = 16 << 10;

/** Why a node may not even be looked at (too large), before any parsing or authentication. */
export function nodeTooLarge(node: NodeInfo): Problem | undefined {
  const idBytes = Buffer.byteLength(node.id);
  if (idBytes > MAX_NODE_ID_BYTES)
    return {
      code: 'SCHEMA',
      field: 'node.id',
      message: `node id is ${idBytes} bytes; at most ${MAX_NODE_ID_BYTES}`,
    };
  const metadataBytes = Buffer.byteLength(JSON.stringify(node.metadata));
  if (metadataBytes > MAX_NODE_METADATA_BYTES) {
    return {
      code: 'SCHEMA',
      field: 'node.metadata',
      message: `node metadata is ${metadataBytes} bytes as JSON; at most ${MAX_NODE_METADATA_BYTES}`,
    };
  }
  return undefined;
}
