// One simulated sidecar on an ADS (state-of-the-world) stream, behaving as Envoy does as far as the
// control plane can tell: node on the first request only; CDS and LDS as wildcards; EDS for the
// clusters CDS names, RDS for the route configurations LDS names, SDS for the secrets their TLS
// transport sockets name, re-subscribed when those change; every response ACKed with its version
// and nonce; after a failed stream, a new one that asks again for everything with the versions it
// holds (sim-stream.ts). It never NACKs: the benchmark measures delivery, not validation.
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET } from '../src/xds/resources/type-urls.ts';
import type { H2Channel } from './grpc-h2.ts';
import type { SidecarSpec } from './mesh-gen.ts';
import { SimulatedStream, type SidecarEvents } from './sim-stream.ts';
import { wallNow } from './stats.ts';
import {
  clusterNeeds,
  listenerNeeds,
  markersIn,
  readSotwHeader,
  sotwResources,
  type Needs,
} from './xds-wire.ts';

const ADS_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

/**
 * What a response's content implies, remembered by its content version (a SotW version or a delta
 * resource version is a hash of the content): the sidecars of one service get the same
 * configuration, and reading it once per worker instead of once per sidecar keeps the simulators'
 * CPU (which shares the machine with the server measured) down.
 */
export function memoized<T>(cache: Map<string, T>, key: string, make: () => T): T {
  let v = cache.get(key);
  if (v === undefined) cache.set(key, (v = make()));
  return v;
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

interface Wanted {
  readonly names: string[];
  readonly secrets: ReadonlySet<string>;
}

/** The union of what a SotW response's clusters or listeners need, names sorted as Envoy sends them. */
function wantedBy(bytes: Uint8Array, needs: (resource: Uint8Array) => Needs): Wanted {
  const names = new Set<string>();
  const secrets = new Set<string>();
  for (const r of sotwResources(bytes)) {
    const n = needs(r.value);
    n.names.forEach((name) => names.add(name));
    n.secrets.forEach((secret) => secrets.add(secret));
  }
  return { names: [...names].sort(), secrets };
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
  private readonly secretsFrom = new Map<string, ReadonlySet<string>>();

  constructor(spec: SidecarSpec, channel: H2Channel, events: SidecarEvents) {
    super(spec, channel, events, ADS_METHOD);
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
    const res = readSotwHeader(bytes);
    if (res.typeUrl === CLUSTER || res.typeUrl === LISTENER) {
      const wanted = memoized(wantedByVersion, `${res.typeUrl}|${res.versionInfo}`, () =>
        wantedBy(bytes, res.typeUrl === CLUSTER ? clusterNeeds : listenerNeeds),
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
      const markers = memoized(markersByVersion, res.versionInfo, () => {
        const found: number[] = [];
        for (const r of sotwResources(bytes)) markersIn(r.value, found);
        return found;
      });
      for (const m of markers) {
        if (this.seen.has(m)) continue;
        this.seen.add(m);
        this.events.marker(this.spec.nodeId, m, at);
      }
    }
    this.last.set(res.typeUrl, { version: res.versionInfo, nonce: res.nonce });
    this.request(res.typeUrl);
  }
}
