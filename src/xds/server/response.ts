// DiscoveryResponses assembled from pre-encoded resources: encoding a response is splicing bytes,
// never re-serialising a resource per stream.
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import type { JsonObject } from '../resources/json.ts';
import type { PreparedResource } from '../resources/prepared.ts';

export interface ResponseParts {
  readonly version: string;
  readonly typeUrl: string;
  readonly nonce: string;
  readonly resources: readonly PreparedResource[];
}

/** envoy.service.discovery.v3.DiscoveryResponse: version_info=1, resources=2, type_url=4, nonce=5. */
export function encodeDiscoveryResponse(p: ResponseParts): Buffer {
  const w = new BinaryWriter();
  w.tag(1, WireType.LengthDelimited).string(p.version);
  for (const r of p.resources) w.tag(2, WireType.LengthDelimited).bytes(r.anyBytes);
  w.tag(4, WireType.LengthDelimited).string(p.typeUrl);
  w.tag(5, WireType.LengthDelimited).string(p.nonce);
  const bytes = w.finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function discoveryResponseJson(p: ResponseParts): JsonObject {
  return {
    version_info: p.version,
    resources: p.resources.map((r) => r.json()),
    type_url: p.typeUrl,
    nonce: p.nonce,
  };
}
