// What a simulated sidecar reads from xDS responses, read straight off the wire: only the fields
// that decide what it subscribes to next (EDS cluster names, RDS route names, SDS secret names) and
// the benchmark's markers, skipping everything else without building message objects. A full
// decode of every Cluster and Listener cost the simulators more CPU than the server they measure;
// test/unit/bench/xds-wire.test.ts checks every reader here against protobuf-es's fromBinary.
// Field numbers are Envoy's (proto/envoy-descriptors.binpb), named at each reader.
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { MARKER_BASE } from './ipc.ts';

/** envoy.config.cluster.v3.Cluster.DiscoveryType.EDS */
export const DISCOVERY_TYPE_EDS = 3;

/** Calls `field` for each field of the message in `bytes`; fields it does not read are skipped. */
function eachField(bytes: Uint8Array, field: (no: number, r: BinaryReader) => boolean): void {
  const r = new BinaryReader(bytes);
  while (r.pos < r.len) {
    const [no, wireType] = r.tag();
    if (!field(no, r)) r.skip(wireType, no);
  }
}

/** The top of a DiscoveryResponse; its resources stay unread until `sotwResources` is asked. */
export interface SotwHeader {
  readonly versionInfo: string;
  readonly typeUrl: string;
  readonly nonce: string;
}

/** DiscoveryResponse: version_info=1, resources=2 (skipped), type_url=4, nonce=5. */
export function readSotwHeader(bytes: Uint8Array): SotwHeader {
  let versionInfo = '';
  let typeUrl = '';
  let nonce = '';
  eachField(bytes, (no, r) => {
    if (no === 1) versionInfo = r.string();
    else if (no === 4) typeUrl = r.string();
    else if (no === 5) nonce = r.string();
    else return false;
    return true;
  });
  return { versionInfo, typeUrl, nonce };
}

/** An encoded google.protobuf.Any: type_url=1, value=2 (a view into the response, not a copy). */
export interface AnyBytes {
  readonly typeUrl: string;
  readonly value: Uint8Array;
}

export function readAny(bytes: Uint8Array): AnyBytes {
  let typeUrl = '';
  let value: Uint8Array = new Uint8Array(0);
  eachField(bytes, (no, r) => {
    if (no === 1) typeUrl = r.string();
    else if (no === 2) value = r.bytes();
    else return false;
    return true;
  });
  return { typeUrl, value };
}

/** The resources (field 2) of a DiscoveryResponse. */
export function sotwResources(bytes: Uint8Array): AnyBytes[] {
  const out: AnyBytes[] = [];
  eachField(bytes, (no, r) => no === 2 && out.push(readAny(r.bytes())) > 0);
  return out;
}

export interface DeltaResource {
  readonly name: string;
  readonly version: string;
  readonly resource?: AnyBytes;
}

export interface DeltaResponse {
  readonly typeUrl: string;
  readonly nonce: string;
  readonly resources: readonly DeltaResource[];
  readonly removedResources: readonly string[];
}

/** Resource: version=1, resource=2, name=3. */
function readDeltaResource(bytes: Uint8Array): DeltaResource {
  let name = '';
  let version = '';
  let resource: AnyBytes | undefined;
  eachField(bytes, (no, r) => {
    if (no === 1) version = r.string();
    else if (no === 2) resource = readAny(r.bytes());
    else if (no === 3) name = r.string();
    else return false;
    return true;
  });
  return { name, version, resource };
}

/** DeltaDiscoveryResponse: resources=2, type_url=4, nonce=5, removed_resources=6. */
export function readDeltaResponse(bytes: Uint8Array): DeltaResponse {
  let typeUrl = '';
  let nonce = '';
  const resources: DeltaResource[] = [];
  const removedResources: string[] = [];
  eachField(bytes, (no, r) => {
    if (no === 2) resources.push(readDeltaResource(r.bytes()));
    else if (no === 4) typeUrl = r.string();
    else if (no === 5) nonce = r.string();
    else if (no === 6) removedResources.push(r.string());
    else return false;
    return true;
  });
  return { typeUrl, nonce, resources, removedResources };
}

/** What one cluster or listener makes a sidecar subscribe to: EDS or RDS names, and SDS secrets. */
export interface Needs {
  readonly names: readonly string[];
  readonly secrets: readonly string[];
}

/** A name field (SdsSecretConfig.name=1, as the first field of several messages). */
function nameOf(bytes: Uint8Array): string {
  let name = '';
  eachField(bytes, (no, r) => no === 1 && ((name = r.string()), true));
  return name;
}

/**
 * Secrets an Upstream- or DownstreamTlsContext asks for over SDS: both hold common_tls_context=1;
 * CommonTlsContext: tls_certificate_sds_secret_configs=6, validation_context_sds_secret_config=7,
 * combined_validation_context=8 (its validation_context_sds_secret_config=2).
 */
function tlsContextSecrets(bytes: Uint8Array, into: string[]): void {
  eachField(bytes, (no, r) => {
    if (no !== 1) return false;
    eachField(r.bytes(), (common, c) => {
      if (common === 6) into.push(nameOf(c.bytes()));
      else if (common === 7) {
        const name = nameOf(c.bytes());
        if (name) into.push(name);
      } else if (common === 8)
        eachField(c.bytes(), (combined, v) => combined === 2 && (into.push(nameOf(v.bytes())), true));
      else return false;
      return true;
    });
    return true;
  });
}

/** TransportSocket: typed_config=3; only TLS contexts name secrets. */
function transportSocketSecrets(bytes: Uint8Array, into: string[]): void {
  eachField(bytes, (no, r) => {
    if (no !== 3) return false;
    const any = readAny(r.bytes());
    if (any.typeUrl.endsWith('TlsContext')) tlsContextSecrets(any.value, into);
    return true;
  });
}

/**
 * Cluster: name=1, type=2, eds_cluster_config=3 (service_name=2), transport_socket=24. An EDS
 * cluster asks for its service_name, or its own name when that is empty.
 */
export function clusterNeeds(bytes: Uint8Array): Needs {
  let name = '';
  let eds = false;
  let serviceName = '';
  const secrets: string[] = [];
  eachField(bytes, (no, r) => {
    if (no === 1) name = r.string();
    else if (no === 2) eds = r.int32() === DISCOVERY_TYPE_EDS;
    else if (no === 3) eachField(r.bytes(), (f, e) => f === 2 && ((serviceName = e.string()), true));
    else if (no === 24) transportSocketSecrets(r.bytes(), secrets);
    else return false;
    return true;
  });
  return { names: eds ? [serviceName || name] : [], secrets };
}

/** HttpConnectionManager: rds=3 (route_config_name=2). */
function hcmRouteName(bytes: Uint8Array, into: string[]): void {
  eachField(bytes, (no, r) => {
    if (no !== 3) return false;
    eachField(r.bytes(), (f, rds) => {
      if (f !== 2) return false;
      const name = rds.string();
      if (name) into.push(name);
      return true;
    });
    return true;
  });
}

/**
 * Listener: filter_chains=3; FilterChain: filters=3 (Filter: typed_config=4), transport_socket=6.
 * Route names come from HTTP connection managers that use RDS.
 */
export function listenerNeeds(bytes: Uint8Array): Needs {
  const names: string[] = [];
  const secrets: string[] = [];
  eachField(bytes, (no, r) => {
    if (no !== 3) return false;
    eachField(r.bytes(), (f, chain) => {
      if (f === 6) transportSocketSecrets(chain.bytes(), secrets);
      else if (f === 3)
        eachField(chain.bytes(), (g, filter) => {
          if (g !== 4) return false;
          const any = readAny(filter.bytes());
          if (any.typeUrl.endsWith('.HttpConnectionManager')) hcmRouteName(any.value, names);
          return true;
        });
      else return false;
      return true;
    });
    return true;
  });
  return { names, secrets };
}

/** Reads the one length-delimited field `no` of each message, as a path down nested messages. */
function eachAt(bytes: Uint8Array, path: readonly number[], at: (r: BinaryReader) => void, depth = 0): void {
  eachField(bytes, (no, r) => {
    if (no !== path[depth]) return false;
    if (depth === path.length - 1) at(r);
    else eachAt(r.bytes(), path, at, depth + 1);
    return true;
  });
}

/**
 * Markers in a ClusterLoadAssignment: endpoints=2 → lb_endpoints=2 → endpoint=1 → address=1 →
 * socket_address=1 → port_value=3, where a port at or above MARKER_BASE is marker (port − base).
 */
const PORT_PATH = [2, 2, 1, 1, 1, 3] as const;
export function markersIn(claBytes: Uint8Array, into: number[] = []): number[] {
  eachAt(claBytes, PORT_PATH, (r) => {
    const port = r.uint32();
    if (port >= MARKER_BASE) into.push(port - MARKER_BASE);
  });
  return into;
}
