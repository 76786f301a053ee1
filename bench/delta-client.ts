// One simulated sidecar on an incremental (delta) ADS stream, as Envoy with `api_type: DELTA_GRPC`
// behaves as far as the control plane can tell: node on the first request only; CDS and LDS as
// wildcards; EDS, RDS and SDS subscribed by name as clusters and listeners come and go (only the
// difference is sent); every response ACKed by its nonce after the subscriptions it implies; after
// a failed stream, a new one that subscribes again and says in `initial_resource_versions` which
// version of each resource it holds, so only what changed meanwhile is sent (sim-stream.ts).
import { BinaryWriter, WireType } from '@bufbuild/protobuf/wire';
import { CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET } from '../src/xds/resources/type-urls.ts';
import { memoized, type SidecarEvents } from './ads-client.ts';
import type { H2Channel } from './grpc-h2.ts';
import type { SidecarSpec } from './mesh-gen.ts';
import { SimulatedStream } from './sim-stream.ts';
import { wallNow } from './stats.ts';
import { clusterNeeds, listenerNeeds, markersIn, readDeltaResponse, type Needs } from './xds-wire.ts';

const DELTA_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources';

interface DeltaRequest {
  readonly node?: SidecarSpec;
  readonly typeUrl: string;
  readonly subscribe?: readonly string[];
  readonly unsubscribe?: readonly string[];
  /** What the sidecar holds, on the first request of a type on a reopened stream. */
  readonly initial?: ReadonlyMap<string, string>;
  readonly responseNonce?: string;
}

/**
 * DeltaDiscoveryRequest: node=1, type_url=2, resource_names_subscribe=3,
 * resource_names_unsubscribe=4, initial_resource_versions=5 (map entry: key=1, value=2), response_nonce=6.
 */
function encodeDeltaRequest(r: DeltaRequest): Buffer {
  const w = new BinaryWriter();
  if (r.node) {
    w.tag(1, WireType.LengthDelimited).fork();
    w.tag(1, WireType.LengthDelimited).string(r.node.nodeId);
    w.tag(2, WireType.LengthDelimited).string(r.node.cluster);
    w.tag(6, WireType.LengthDelimited).string('clinimesh-bench');
    w.join();
  }
  w.tag(2, WireType.LengthDelimited).string(r.typeUrl);
  for (const n of r.subscribe ?? []) w.tag(3, WireType.LengthDelimited).string(n);
  for (const n of r.unsubscribe ?? []) w.tag(4, WireType.LengthDelimited).string(n);
  for (const [name, version] of r.initial ?? []) {
    w.tag(5, WireType.LengthDelimited).fork();
    w.tag(1, WireType.LengthDelimited).string(name);
    w.tag(2, WireType.LengthDelimited).string(version);
    w.join();
  }
  if (r.responseNonce) w.tag(6, WireType.LengthDelimited).string(r.responseNonce);
  const bytes = w.finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** By resource name and version (a content hash): see `memoized`. */
const needsByVersion = new Map<string, Needs>();
const markersByVersion = new Map<string, number[]>();

export class DeltaSimulatedSidecar extends SimulatedStream {
  /** What each held cluster and listener needs. */
  private readonly held = new Map<string, Map<string, Needs>>([
    [CLUSTER, new Map()],
    [LISTENER, new Map()],
  ]);
  /** Names subscribed per named type (EDS, RDS, SDS). */
  private readonly subscribed = new Map<string, Set<string>>();
  /** The version of each resource held, per type, for `initial_resource_versions` on a new stream. */
  private readonly versions = new Map<string, Map<string, string>>();
  private readonly seen = new Set<number>();

  constructor(spec: SidecarSpec, channel: H2Channel, events: SidecarEvents) {
    super(spec, channel, events, DELTA_METHOD);
  }

  protected start(): void {
    // CDS and LDS wildcard (nothing subscribed), the named types by name; all with what is held.
    for (const typeUrl of [CLUSTER, LISTENER, SECRET, ENDPOINT, ROUTE]) {
      const names = this.subscribed.get(typeUrl);
      if (typeUrl !== CLUSTER && typeUrl !== LISTENER && !names?.size) continue;
      this.send({ typeUrl, subscribe: [...(names ?? [])], initial: this.versions.get(typeUrl) });
    }
  }

  private send(r: DeltaRequest): void {
    this.write(encodeDeltaRequest({ ...r, node: this.nodeSent ? undefined : this.spec }));
    this.nodeSent = true;
  }

  /** Subscribes to what is newly needed and unsubscribes from what no longer is. */
  private want(typeUrl: string, names: ReadonlySet<string>): void {
    const current = this.subscribed.get(typeUrl) ?? new Set<string>();
    const subscribe = [...names].filter((n) => !current.has(n));
    const unsubscribe = [...current].filter((n) => !names.has(n));
    if (!subscribe.length && !unsubscribe.length) return;
    this.subscribed.set(typeUrl, new Set(names));
    for (const name of unsubscribe) this.versions.get(typeUrl)?.delete(name);
    this.send({ typeUrl, subscribe, unsubscribe });
  }

  protected onResponse(bytes: Buffer): void {
    const at = wallNow();
    const res = readDeltaResponse(bytes);
    const versions = this.versions.get(res.typeUrl) ?? new Map<string, string>();
    this.versions.set(res.typeUrl, versions);
    for (const name of res.removedResources) versions.delete(name);
    for (const r of res.resources) versions.set(r.name, r.version);
    const held = this.held.get(res.typeUrl);
    if (held) {
      for (const name of res.removedResources) held.delete(name);
      for (const r of res.resources)
        if (r.resource)
          held.set(
            r.name,
            memoized(needsByVersion, `${res.typeUrl}|${r.name}|${r.version}`, () =>
              (res.typeUrl === CLUSTER ? clusterNeeds : listenerNeeds)(r.resource!.value),
            ),
          );
      const secrets = new Set<string>();
      for (const m of this.held.values())
        for (const n of m.values()) n.secrets.forEach((s) => secrets.add(s));
      // Secrets first: Envoy warms clusters and listeners until their secrets arrive.
      this.want(SECRET, secrets);
      this.want(
        res.typeUrl === CLUSTER ? ENDPOINT : ROUTE,
        new Set([...held.values()].flatMap((n) => n.names)),
      );
    } else if (res.typeUrl === ENDPOINT) {
      const markers = res.resources.flatMap((r) =>
        r.resource
          ? memoized(markersByVersion, `${r.name}|${r.version}`, () => markersIn(r.resource!.value))
          : [],
      );
      for (const m of markers) {
        if (this.seen.has(m)) continue;
        this.seen.add(m);
        this.events.marker(this.spec.nodeId, m, at);
      }
    }
    this.send({ typeUrl: res.typeUrl, responseNonce: res.nonce });
  }
}
