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

/**
 * One writer for every response: its buffer grows to the largest response once and is reused
 * (finish() copies out what was written), instead of growing from 128 bytes, copy by copy, for each
 * of thousands of pushes. A writer that served a response above KEEP_WRITER_BYTES is let go.
 */
let writer = new BinaryWriter();
const KEEP_WRITER_BYTES = 1 << 20;

/** The bytes `write` puts in a fresh message, as a Buffer for gRPC. */
export function encodeMessage(write: (w: BinaryWriter) => void): Buffer {
  let bytes: Uint8Array;
  try {
    write(writer);
  } finally {
    bytes = writer.finish(); // also resets the writer when `write` threw halfway
  }
  if (bytes.byteLength > KEEP_WRITER_BYTES) writer = new BinaryWriter();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** envoy.service.discovery.v3.DiscoveryResponse: version_info=1, resources=2, type_url=4, nonce=5. */
export function encodeDiscoveryResponse(p: ResponseParts): Buffer {
  return encodeMessage((w) => {
    w.tag(1, WireType.LengthDelimited).string(p.version);
    for (const r of p.resources) w.tag(2, WireType.LengthDelimited).bytes(r.anyBytes);
    w.tag(4, WireType.LengthDelimited).string(p.typeUrl);
    w.tag(5, WireType.LengthDelimited).string(p.nonce);
  });
}

export function discoveryResponseJson(p: ResponseParts): JsonObject {
  return {
    version_info: p.version,
    resources: p.resources.map((r) => r.json()),
    type_url: p.typeUrl,
    nonce: p.nonce,
  };
}
