// Incremental (delta) xDS messages: DeltaDiscoveryRequest decoded into the parts the server uses,
// DeltaDiscoveryResponse assembled from pre-encoded resources (splicing bytes, as response.ts does).
import { WireType } from '@bufbuild/protobuf/wire';
import type { PreparedResource } from '../resources/prepared.ts';
import { nodeInfoOf, type NodeInfo } from './node.ts';
import { readDeltaDiscoveryRequest } from './request-wire.ts';
import { encodeMessage } from './response.ts';

export interface DeltaRequest {
  readonly node?: NodeInfo;
  readonly typeUrl: string;
  readonly subscribe: readonly string[];
  readonly unsubscribe: readonly string[];
  /** Only meaningful on the first request of a type on a stream: what the client already holds. */
  readonly initialVersions: Readonly<Record<string, string>>;
  readonly responseNonce: string;
  /** error_detail.message when the client rejects the response named by the nonce (a NACK). */
  readonly errorDetail?: string;
}

export function decodeDeltaRequestBinary(bytes: Uint8Array): DeltaRequest {
  const m = readDeltaDiscoveryRequest(bytes);
  return {
    node: nodeInfoOf(m.node),
    typeUrl: m.typeUrl,
    subscribe: m.resourceNamesSubscribe,
    unsubscribe: m.resourceNamesUnsubscribe,
    initialVersions: m.initialResourceVersions,
    responseNonce: m.responseNonce,
    errorDetail: m.errorDetail ? m.errorDetail.message || `code ${m.errorDetail.code}` : undefined,
  };
}

export interface DeltaResponseParts {
  readonly systemVersion: string;
  readonly typeUrl: string;
  readonly nonce: string;
  /** Each resource is sent with its content hash as its version. */
  readonly resources: readonly PreparedResource[];
  readonly removed: readonly string[];
}

/**
 * envoy.service.discovery.v3.DeltaDiscoveryResponse: system_version_info=1, resources=2 (Resource:
 * version=1, resource=2, name=3), type_url=4, nonce=5, removed_resources=6.
 */
export function encodeDeltaResponse(p: DeltaResponseParts): Buffer {
  return encodeMessage((w) => {
    w.tag(1, WireType.LengthDelimited).string(p.systemVersion);
    for (const r of p.resources) {
      w.tag(2, WireType.LengthDelimited).fork();
      w.tag(1, WireType.LengthDelimited).string(r.hash);
      w.tag(2, WireType.LengthDelimited).bytes(r.anyBytes);
      w.tag(3, WireType.LengthDelimited).string(r.name);
      w.join();
    }
    w.tag(4, WireType.LengthDelimited).string(p.typeUrl);
    w.tag(5, WireType.LengthDelimited).string(p.nonce);
    for (const name of p.removed) w.tag(6, WireType.LengthDelimited).string(name);
  });
}
