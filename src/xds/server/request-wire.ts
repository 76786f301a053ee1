// DiscoveryRequest and DeltaDiscoveryRequest read straight off the wire, field by field: every ACK
// goes through here, and decoding the whole message through reflection (`fromBinary`) built a full
// message object, node and all defaults, for the four strings an ACK carries. Only the rare parts
// are decoded by reflection: `node` (the first request of a stream) and `error_detail` (a NACK).
// Unknown fields are skipped; a known field with the wrong wire type is an error, as in fromBinary.
import { fromBinary, type DescMessage } from '@bufbuild/protobuf';
import { BinaryReader, WireType } from '@bufbuild/protobuf/wire';
import { messageDesc } from '../resources/registry.ts';

/** The parts of a DiscoveryRequest the server reads, as protobuf-es names them. */
export interface DecodedRequest {
  versionInfo: string;
  node?: {
    id: string;
    cluster: string;
    metadata?: { fields: Record<string, unknown> };
    userAgentName: string;
  };
  resourceNames: string[];
  typeUrl: string;
  responseNonce: string;
  errorDetail?: { code: number; message: string };
}

let nodeDesc: DescMessage | undefined;
let statusDesc: DescMessage | undefined;

type DecodedNode = NonNullable<DecodedRequest['node']>;

function readNode(r: BinaryReader, wireType: WireType): DecodedNode {
  expectLengthDelimited(wireType, 'node');
  nodeDesc ??= messageDesc('envoy.config.core.v3.Node');
  return fromBinary(nodeDesc, r.bytes()) as unknown as DecodedNode;
}

/** error_detail, a google.rpc.Status: the code and message a NACK carries. */
function readStatus(r: BinaryReader, wireType: WireType): { code: number; message: string } {
  expectLengthDelimited(wireType, 'error_detail');
  statusDesc ??= messageDesc('google.rpc.Status');
  const s = fromBinary(statusDesc, r.bytes()) as unknown as { code: number; message: string };
  return { code: s.code, message: s.message };
}

function readString(r: BinaryReader, wireType: WireType, field: string): string {
  expectLengthDelimited(wireType, field);
  return r.string();
}

function expectLengthDelimited(wireType: WireType, field: string): void {
  if (wireType !== WireType.LengthDelimited)
    throw new Error(`cannot read field ${field}: wire type ${wireType}, expected length-delimited`);
}

/** envoy.service.discovery.v3.DiscoveryRequest: version_info=1, node=2, resource_names=3, type_url=4, response_nonce=5, error_detail=6. */
export function readDiscoveryRequest(bytes: Uint8Array): DecodedRequest {
  const r = new BinaryReader(bytes);
  const m: DecodedRequest = { versionInfo: '', resourceNames: [], typeUrl: '', responseNonce: '' };
  while (r.pos < r.len) {
    const [field, wireType] = r.tag();
    if (field === 1) m.versionInfo = readString(r, wireType, 'version_info');
    else if (field === 2) m.node = readNode(r, wireType);
    else if (field === 3) m.resourceNames.push(readString(r, wireType, 'resource_names'));
    else if (field === 4) m.typeUrl = readString(r, wireType, 'type_url');
    else if (field === 5) m.responseNonce = readString(r, wireType, 'response_nonce');
    else if (field === 6) m.errorDetail = readStatus(r, wireType);
    else r.skip(wireType, field);
  }
  return m;
}

export interface DecodedDelta {
  node?: DecodedRequest['node'];
  typeUrl: string;
  resourceNamesSubscribe: string[];
  resourceNamesUnsubscribe: string[];
  initialResourceVersions: Record<string, string>;
  responseNonce: string;
  errorDetail?: { code: number; message: string };
}

/**
 * envoy.service.discovery.v3.DeltaDiscoveryRequest: node=1, type_url=2, resource_names_subscribe=3,
 * resource_names_unsubscribe=4, initial_resource_versions=5 (map entries: key=1, value=2),
 * response_nonce=6, error_detail=7.
 */
export function readDeltaDiscoveryRequest(bytes: Uint8Array): DecodedDelta {
  const r = new BinaryReader(bytes);
  const m: DecodedDelta = {
    typeUrl: '',
    resourceNamesSubscribe: [],
    resourceNamesUnsubscribe: [],
    // No prototype: a resource named `constructor` or `__proto__` is only ever a name here.
    initialResourceVersions: Object.create(null) as Record<string, string>,
    responseNonce: '',
  };
  while (r.pos < r.len) {
    const [field, wireType] = r.tag();
    if (field === 1) m.node = readNode(r, wireType);
    else if (field === 2) m.typeUrl = readString(r, wireType, 'type_url');
    else if (field === 3) m.resourceNamesSubscribe.push(readString(r, wireType, 'resource_names_subscribe'));
    else if (field === 4)
      m.resourceNamesUnsubscribe.push(readString(r, wireType, 'resource_names_unsubscribe'));
    else if (field === 5) readVersionEntry(r, wireType, m.initialResourceVersions);
    else if (field === 6) m.responseNonce = readString(r, wireType, 'response_nonce');
    else if (field === 7) m.errorDetail = readStatus(r, wireType);
    else r.skip(wireType, field);
  }
  return m;
}

/** One map<string, string> entry; a later entry for the same key wins, as protobuf's maps do. */
function readVersionEntry(r: BinaryReader, wireType: WireType, into: Record<string, string>): void {
  expectLengthDelimited(wireType, 'initial_resource_versions');
  const entry = new BinaryReader(r.bytes());
  let key = '';
  let value = '';
  while (entry.pos < entry.len) {
    const [field, t] = entry.tag();
    if (field === 1) key = readString(entry, t, 'initial_resource_versions.key');
    else if (field === 2) value = readString(entry, t, 'initial_resource_versions.value');
    else entry.skip(t, field);
  }
  into[key] = value;
}
