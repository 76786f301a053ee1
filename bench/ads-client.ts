// One simulated sidecar on an ADS (state-of-the-world) stream, behaving as Envoy does as far as the
// control plane can tell: node on the first request only; CDS and LDS as wildcards; EDS for the
// clusters CDS names, RDS for the route configurations LDS names, SDS for the secrets their TLS
// transport sockets name, re-subscribed when those change; every response ACKed with its version
// and nonce; after a failed stream, a new one that asks again for everything with the versions it
// holds (sim-stream.ts). It never NACKs: the benchmark measures delivery, not validation.
import { fromBinary, type DescMessage } from '@bufbuild/protobuf';
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import type * as grpc from '@grpc/grpc-js';
import { messageDesc } from '../src/xds/resources/registry.ts';
import { CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET } from '../src/xds/resources/type-urls.ts';
import { MARKER_BASE } from './ipc.ts';
import type { SidecarSpec } from './mesh-gen.ts';
import { SimulatedStream, type SidecarEvents } from './sim-stream.ts';
import { wallNow } from './stats.ts';

const ADS_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
/** envoy.config.cluster.v3.Cluster.DiscoveryType.EDS */
export const DISCOVERY_TYPE_EDS = 3;

// The few fields read from decoded messages, as protobuf-es shapes them (oneofs are {case, value}).
export interface AnyMessage {
  readonly typeUrl: string;
  readonly value: Uint8Array;
}
interface DecodedResponse {
  readonly versionInfo: string;
  readonly resources: readonly AnyMessage[];
  readonly typeUrl: string;
  readonly nonce: string;
}
export interface TypedConfig {
  readonly configType: { readonly case?: string; readonly value?: AnyMessage };
}
export interface DecodedCluster {
  readonly name: string;
  readonly clusterDiscoveryType: { readonly case?: string; readonly value?: number };
  readonly edsClusterConfig?: { readonly serviceName: string };
  readonly transportSocket?: TypedConfig;
}
export interface DecodedListener {
  readonly filterChains: readonly {
    readonly filters: readonly TypedConfig[];
    readonly transportSocket?: TypedConfig;
  }[];
}
/** Upstream- and DownstreamTlsContext share `common_tls_context`, which names the SDS secrets. */
interface DecodedTlsContext {
  readonly commonTlsContext?: {
    readonly tlsCertificateSdsSecretConfigs: readonly { readonly name: string }[];
    readonly validationContextType: {
      readonly case?: string;
      readonly value?: {
        readonly name?: string;
        readonly validationContextSdsSecretConfig?: { readonly name: string };
      };
    };
  };
}
export interface DecodedHcm {
  readonly routeSpecifier: { readonly case?: string; readonly value?: { readonly routeConfigName?: string } };
}
interface DecodedSocketAddress {
  readonly portSpecifier: { readonly case?: string; readonly value?: number };
}
interface DecodedLoadAssignment {
  readonly endpoints: readonly {
    readonly lbEndpoints: readonly {
      readonly hostIdentifier: {
        readonly case?: string;
        readonly value?: {
          readonly address?: {
            readonly address: { readonly case?: string; readonly value?: DecodedSocketAddress };
          };
        };
      };
    }[];
  }[];
}

/**
 * What a response's content implies, remembered by its content version (a SotW version or a delta
 * resource version is a hash of the content): the sidecars of one service get the same
 * configuration, and decoding it once per worker instead of once per sidecar keeps the simulators'
 * CPU (which shares the machine with the server measured) down.
 */
export function memoized<T>(cache: Map<string, T>, key: string, make: () => T): T {
  let v = cache.get(key);
  if (v === undefined) cache.set(key, (v = make()));
  return v;
}

const descs = new Map<string, DescMessage>();
export function decode<T>(typeName: string, bytes: Uint8Array): T {
  let d = descs.get(typeName);
  if (!d) descs.set(typeName, (d = messageDesc(typeName)));
  return fromBinary(d, bytes) as unknown as T;
}

interface Request {
  readonly node?: SidecarSpec;
  readonly typeUrl: string;
  readonly resourceNames: readonly string[];
  readonly versionInfo: string;
  readonly responseNonce: string;
}

/** DiscoveryRequest: version_info=1, node=2 (id=1, cluster=2, user_agent_name=6), resource_names=3, type_url=4, response_nonce=5. */
function encodeRequest(r: Request): Buffer {
  const w = new BinaryWriter();
  if (r.versionInfo) w.tag(1, WireType.LengthDelimited).string(r.versionInfo);
  if (r.node) {
    w.tag(2, WireType.LengthDelimited).fork();
    w.tag(1, WireType.LengthDelimited).string(r.node.nodeId);
    w.tag(2, WireType.LengthDelimited).string(r.node.cluster);
    w.tag(6, WireType.LengthDelimited).string('clinimesh-bench');
    w.join();
  }
  for (const name of r.resourceNames) w.tag(3, WireType.LengthDelimited).string(name);
  w.tag(4, WireType.LengthDelimited).string(r.typeUrl);
  if (r.responseNonce) w.tag(5, WireType.LengthDelimited).string(r.responseNonce);
  const bytes = w.finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export const typeNameOf = (any: AnyMessage) => any.typeUrl.slice(any.typeUrl.indexOf('/') + 1);

/** Secrets a TLS transport socket asks for over SDS (certificate and validation context). */
export function secretNames(socket: TypedConfig | undefined, into: Set<string>): void {
  const any = socket?.configType.case === 'typedConfig' ? socket.configType.value : undefined;
  if (!any?.typeUrl.endsWith('TlsContext')) return;
  const common = decode<DecodedTlsContext>(typeNameOf(any), any.value).commonTlsContext;
  for (const c of common?.tlsCertificateSdsSecretConfigs ?? []) into.add(c.name);
  const v = common?.validationContextType;
  if (v?.case === 'validationContextSdsSecretConfig' && v.value?.name) into.add(v.value.name);
  if (v?.case === 'combinedValidationContext' && v.value?.validationContextSdsSecretConfig)
    into.add(v.value.validationContextSdsSecretConfig.name);
}

interface Wanted {
  readonly names: string[];
  readonly secrets: Set<string>;
}

function fromClusters(resources: readonly AnyMessage[]): Wanted {
  const names: string[] = [];
  const secrets = new Set<string>();
  for (const r of resources) {
    const c = decode<DecodedCluster>('envoy.config.cluster.v3.Cluster', r.value);
    if (c.clusterDiscoveryType.case === 'type' && c.clusterDiscoveryType.value === DISCOVERY_TYPE_EDS)
      names.push(c.edsClusterConfig?.serviceName || c.name);
    secretNames(c.transportSocket, secrets);
  }
  return { names: names.sort(), secrets };
}

function fromListeners(resources: readonly AnyMessage[]): Wanted {
  const names = new Set<string>();
  const secrets = new Set<string>();
  for (const r of resources) {
    const l = decode<DecodedListener>('envoy.config.listener.v3.Listener', r.value);
    for (const chain of l.filterChains) {
      secretNames(chain.transportSocket, secrets);
      for (const f of chain.filters) {
        const any = f.configType.case === 'typedConfig' ? f.configType.value : undefined;
        if (!any?.typeUrl.endsWith('.HttpConnectionManager')) continue;
        const hcm = decode<DecodedHcm>(typeNameOf(any), any.value);
        if (hcm.routeSpecifier.case === 'rds' && hcm.routeSpecifier.value?.routeConfigName)
          names.add(hcm.routeSpecifier.value.routeConfigName);
      }
    }
  }
  return { names: [...names].sort(), secrets };
}

export function markersIn(resources: readonly AnyMessage[]): number[] {
  const out: number[] = [];
  for (const r of resources) {
    const cla = decode<DecodedLoadAssignment>('envoy.config.endpoint.v3.ClusterLoadAssignment', r.value);
    for (const group of cla.endpoints) {
      for (const lb of group.lbEndpoints) {
        const socket =
          lb.hostIdentifier.case === 'endpoint' ? lb.hostIdentifier.value?.address?.address : undefined;
        const port = socket?.case === 'socketAddress' ? socket.value?.portSpecifier.value : undefined;
        if (port !== undefined && port >= MARKER_BASE) out.push(port - MARKER_BASE);
      }
    }
  }
  return out;
}

export type { SidecarEvents } from './sim-stream.ts';

const wantedByVersion = new Map<string, Wanted>();
const markersByVersion = new Map<string, number[]>();

export class SimulatedSidecar extends SimulatedStream {
  /** Subscribed names for the named types (EDS, RDS); CDS and LDS stay wildcard. */
  private readonly names = new Map<string, readonly string[]>();
  /** Last version and nonce received per type, echoed in ACKs and re-subscriptions. */
  private readonly last = new Map<string, { version: string; nonce: string }>();
  private readonly seen = new Set<number>();
  /** SDS names are the union of what clusters and what listeners reference. */
  private readonly secretsFrom = new Map<string, Set<string>>();

  constructor(spec: SidecarSpec, client: grpc.Client, events: SidecarEvents) {
    super(spec, client, events, ADS_METHOD);
  }

  protected start(): void {
    // Nonces belong to the stream that sent them; versions are what the sidecar holds.
    for (const [typeUrl, last] of this.last) this.last.set(typeUrl, { version: last.version, nonce: '' });
    for (const typeUrl of [CLUSTER, LISTENER, SECRET, ENDPOINT, ROUTE])
      if (typeUrl === CLUSTER || typeUrl === LISTENER || this.names.has(typeUrl)) this.request(typeUrl);
  }

  private request(typeUrl: string): void {
    const last = this.last.get(typeUrl);
    const req: Request = {
      node: this.nodeSent ? undefined : this.spec,
      typeUrl,
      resourceNames: this.names.get(typeUrl) ?? [],
      versionInfo: last?.version ?? '',
      responseNonce: last?.nonce ?? '',
    };
    this.nodeSent = true;
    this.write(encodeRequest(req));
  }

  /** Like Envoy, asks for the new set of names before ACKing the response that named them. */
  private subscribe(typeUrl: string, names: readonly string[]): void {
    const current = this.names.get(typeUrl);
    if (current && current.length === names.length && current.every((n, i) => n === names[i])) return;
    this.names.set(typeUrl, names);
    this.request(typeUrl);
  }

  protected onResponse(bytes: Buffer): void {
    const at = wallNow();
    const res = decode<DecodedResponse>('envoy.service.discovery.v3.DiscoveryResponse', bytes);
    if (res.typeUrl === CLUSTER || res.typeUrl === LISTENER) {
      const wanted = memoized(wantedByVersion, `${res.typeUrl}|${res.versionInfo}`, () =>
        res.typeUrl === CLUSTER ? fromClusters(res.resources) : fromListeners(res.resources),
      );
      this.secretsFrom.set(res.typeUrl, wanted.secrets);
      const secrets = new Set([
        ...(this.secretsFrom.get(CLUSTER) ?? []),
        ...(this.secretsFrom.get(LISTENER) ?? []),
      ]);
      // Secrets first: Envoy warms clusters and listeners until their secrets arrive.
      if (secrets.size) this.subscribe(SECRET, [...secrets].sort());
      this.subscribe(res.typeUrl === CLUSTER ? ENDPOINT : ROUTE, wanted.names);
    } else if (res.typeUrl === ENDPOINT) {
      for (const m of memoized(markersByVersion, res.versionInfo, () => markersIn(res.resources))) {
        if (this.seen.has(m)) continue;
        this.seen.add(m);
        this.events.marker(this.spec.nodeId, m, at);
      }
    }
    this.last.set(res.typeUrl, { version: res.versionInfo, nonce: res.nonce });
    this.request(res.typeUrl);
  }
}
