// The benchmark's mesh, generated deterministically from a seed so every run measures the same
// topology. Choices (and why):
// - Most services are discovered through Consul (`discovery.mode: consul`): their endpoints reach
//   the control plane through `updateEndpoints`, the same narrow EDS-only path a Consul change takes,
//   so "1000 Consul services with churn" (issue 4) and "an endpoint change" (issue 2) are one path.
//   Every odd-numbered service with sidecars declares its instances instead (`static`): its
//   endpoints change by editing the manifest and applying it (issue 12's "apply of one Service edit").
// - Sidecars alternate between state-of-the-world ADS and incremental (delta) ADS, so the bytes an
//   endpoint change costs can be compared between the two on the same changes.
// - N sidecars are spread over the first `meshed` services, 1–3 instances each (declared in the
//   manifest, so each has a node id). The other services have no sidecar: they are Consul-only
//   workloads (VMs, appliances) with 1–3 endpoints that meshed services still call. Their Consul
//   ids (`svc-0042.vm-1`) are not DNS labels, so the control plane keeps them as plain endpoints
//   rather than planning sidecar config for them (a label-valid id would make each a sidecar
//   candidate). At N=2000 all 1000 services are meshed; at N=100, 50 are.
// - Upstreams are drawn from a Zipf-like popularity (weight 1/rank) over a shuffled ranking, so a few
//   services are hubs called by hundreds of sidecars (as HIS is in a hospital) and most are called by
//   a handful. A change to a hub is the expensive case the p99 must cover.
import type { Endpoint, EndpointSet } from '../src/discovery/endpoints.ts';
import { nodeId } from '../src/xds/server/node-id.ts';
import {
  parseManifestText,
  serviceKey,
  serviceUpstreams,
  type Manifest,
  type Mesh,
  type Protocol,
  type Service,
} from '../src/manifest/index.ts';

export const NAMESPACE = 'clinical';
const MESH_PORT = 15001;
const APP_PORT = 8080;

export interface MeshSpec {
  readonly services: number;
  readonly sidecars: number;
  readonly upstreamsPerService: number;
  readonly seed: number;
}

export interface SidecarSpec {
  readonly nodeId: string;
  readonly namespace: string;
  /** Envoy's `--service-cluster`: the service name. */
  readonly cluster: string;
  /** State-of-the-world ADS or incremental (delta) ADS. */
  readonly transport: 'sotw' | 'delta';
}

export interface BenchMesh {
  readonly manifests: Manifest[];
  /** Initial endpoints per serviceKey, as Consul would first report them. */
  readonly endpoints: Map<string, EndpointSet>;
  readonly sidecars: SidecarSpec[];
  /** serviceKey → node ids of the sidecars whose EDS includes that service. */
  readonly consumers: Map<string, string[]>;
  readonly serviceKeys: string[];
  /** Services discovered through Consul (endpoint changes come through `updateEndpoints`). */
  readonly consulKeys: ReadonlySet<string>;
  /** Draws a service index by popularity (the same law that picked upstreams). */
  readonly popular: () => number;
  readonly meshedServices: number;
}

/** mulberry32: tiny, fast, and good enough to make a topology reproducible from a seed. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function protocolOf(i: number): Protocol {
  // Mostly HTTP, with some gRPC and TCP so RDS-less (TCP) and HTTP/2 clusters are in the mix.
  return i % 10 === 8 ? 'tcp' : i % 10 === 9 ? 'grpc' : 'http';
}

/** A distinct, valid IPv4 address per index: each instance is its own host, like a pod IP. */
function addressOf(block: number, i: number): string {
  return `10.${block}.${(i >> 8) & 255}.${i & 255}`;
}

/** Instances per meshed service: each gets 1, then the rest are spread randomly with at most 3. */
function instanceCounts(spec: MeshSpec, rand: () => number): number[] {
  const meshed = Math.min(
    spec.services,
    Math.max(Math.ceil(spec.sidecars / 3), Math.round(spec.sidecars / 2)),
  );
  if (meshed * 3 < spec.sidecars)
    throw new Error(`${spec.sidecars} sidecars do not fit 1–3 per ${spec.services} services`);
  const counts = new Array<number>(meshed).fill(1);
  for (let extra = spec.sidecars - meshed; extra > 0;) {
    const i = Math.floor(rand() * meshed);
    if (counts[i]! < 3) {
      counts[i]!++;
      extra--;
    }
  }
  return counts;
}

/** Zipf-like sampler over a random permutation of service indices. */
function popularitySampler(n: number, rand: () => number): () => number {
  const ranking = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [ranking[i], ranking[j]] = [ranking[j]!, ranking[i]!];
  }
  const cumulative: number[] = [];
  let total = 0;
  for (let r = 0; r < n; r++) cumulative.push((total += 1 / (r + 1)));
  return () => {
    const x = rand() * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cumulative[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return ranking[lo]!;
  };
}

function pickUpstreams(self: number, count: number, popular: () => number): number[] {
  const chosen = new Set<number>();
  // Bounded: popular services repeat often, but 1000 draws for 3 distinct picks cannot all collide.
  for (let tries = 0; chosen.size < count && tries < 1000; tries++) {
    const u = popular();
    if (u !== self) chosen.add(u);
  }
  return [...chosen];
}

/** Through the parser, so the Mesh gets exactly the defaults a user's would (the model still grows). */
function benchMesh(): Mesh {
  const parsed = parseManifestText(
    'apiVersion: clinimesh.io/v1alpha1\nkind: Mesh\nmetadata: { name: bench }\nspec: { trustDomain: bench.local }\n',
    'bench',
  );
  const mesh = parsed.ok ? parsed.value.find((m): m is Mesh => m.kind === 'Mesh') : undefined;
  if (!mesh)
    throw new Error(
      `bench Mesh manifest rejected: ${JSON.stringify(parsed.ok ? parsed.value : parsed.errors)}`,
    );
  return mesh;
}

const name = (i: number) => `svc-${String(i).padStart(4, '0')}`;

export function generateMesh(spec: MeshSpec): BenchMesh {
  const rand = seededRandom(spec.seed);
  const counts = instanceCounts(spec, rand);
  const popular = popularitySampler(spec.services, rand);
  const mesh = benchMesh();
  const services: Service[] = [];
  const endpoints = new Map<string, EndpointSet>();
  const sidecars: SidecarSpec[] = [];
  let host = 0;
  for (let i = 0; i < spec.services; i++) {
    const service = buildService(
      i,
      counts[i] ?? 0,
      () => host++,
      pickUpstreams(i, spec.upstreamsPerService, popular),
    );
    services.push(service);
    for (const inst of service.instances)
      sidecars.push({
        nodeId: nodeId({ namespace: NAMESPACE, service: service.name, instance: inst.name }),
        namespace: NAMESPACE,
        cluster: service.name,
        transport: sidecars.length % 2 ? 'delta' : 'sotw',
      });
    const external = 1 + Math.floor(rand() * 3);
    if (service.discovery.mode === 'consul')
      endpoints.set(serviceKey(service), initialEndpoints(service, i, external));
  }
  return {
    manifests: [mesh, ...services],
    endpoints,
    sidecars,
    consumers: consumersOf(services),
    serviceKeys: services.map(serviceKey),
    consulKeys: new Set(services.filter((s) => s.discovery.mode === 'consul').map(serviceKey)),
    popular,
    meshedServices: counts.length,
  };
}

function buildService(i: number, instances: number, nextHost: () => number, upstreams: number[]): Service {
  return {
    kind: 'Service',
    name: name(i),
    namespace: NAMESPACE,
    ports: [{ name: protocolOf(i), port: MESH_PORT, targetPort: APP_PORT, protocol: protocolOf(i) }],
    discovery:
      i % 2 && instances > 0
        ? { mode: 'static', register: false }
        : { mode: 'consul', consulName: name(i), register: false },
    instances: Array.from({ length: instances }, (_, k) => {
      const address = addressOf(1, nextHost());
      return {
        name: `${name(i)}-${k + 1}`,
        address,
        appAddress: address,
        locality: { region: 'eu-west', zone: 'abc'[k % 3]! },
        weight: 1,
        meta: {},
      };
    }),
    upstreams: upstreams.map((u, j) => ({
      service: name(u),
      namespace: NAMESPACE,
      port: protocolOf(u),
      localPort: 9001 + j,
    })),
    origin: { file: 'bench' },
  };
}

/** Meshed services are reachable at their sidecars; Consul-only ones at 1–3 addresses of their own. */
function initialEndpoints(s: Service, i: number, external: number): EndpointSet {
  const port = s.ports[0]!;
  const hosts = s.instances.length
    ? s.instances.map((inst) => ({ instance: inst.name, address: inst.address, zone: inst.locality.zone }))
    : Array.from({ length: external }, (_, k) => ({
        instance: `${s.name}.vm-${k + 1}`,
        address: addressOf(200 + k, i),
        zone: 'abc'[k % 3],
      }));
  const list: Endpoint[] = hosts.map((h) => ({
    instance: h.instance,
    address: h.address,
    ports: { [port.name]: port.port },
    health: 'HEALTHY',
    locality: { region: 'eu-west', ...(h.zone !== undefined && { zone: h.zone }) },
    weight: 1,
    tags: [],
    meta: {},
  }));
  return { service: serviceKey(s), endpoints: list, source: 'consul' };
}

function consumersOf(services: readonly Service[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const s of services) {
    for (const u of serviceUpstreams(s)) {
      const key = serviceKey({ name: u.service, namespace: u.namespace });
      const list = out.get(key) ?? [];
      for (const inst of s.instances)
        list.push(nodeId({ namespace: s.namespace, service: s.name, instance: inst.name }));
      out.set(key, list);
    }
  }
  return out;
}

/** The change a sequential step makes: its first endpoint moves to `port`, which doubles as a marker. */
export function moveFirstEndpoint(set: EndpointSet, port: number): EndpointSet {
  return {
    ...set,
    endpoints: set.endpoints.map((e, k) =>
      k === 0 ? { ...e, ports: Object.fromEntries(Object.keys(e.ports).map((p) => [p, port])) } : e,
    ),
  };
}

/** The change a burst step makes: an instance flaps, as a failing Consul health check does. */
export function flapFirstEndpoint(set: EndpointSet): EndpointSet {
  return {
    ...set,
    endpoints: set.endpoints.map((e, k) =>
      k === 0 ? { ...e, health: e.health === 'HEALTHY' ? 'UNHEALTHY' : 'HEALTHY' } : e,
    ),
  };
}

/**
 * Picks services that some sidecar consumes, by popularity, so hubs get changed as often as they
 * would: Consul-discovered ones (`consul`) or ones whose instances the manifest declares.
 */
export function changeTargets(mesh: BenchMesh, count: number, consul: boolean): string[] {
  const out: string[] = [];
  for (let tries = 0; out.length < count && tries < count * 1000; tries++) {
    const key = mesh.serviceKeys[mesh.popular()]!;
    if ((mesh.consumers.get(key)?.length ?? 0) > 0 && mesh.consulKeys.has(key) === consul) out.push(key);
  }
  return out;
}

/** The edit both apply phases make: the first instance's weight stepped on (1…5), nothing else. */
export function weightEdited(s: Service): Service {
  return { ...s, instances: s.instances.map((i, j) => (j === 0 ? { ...i, weight: (i.weight % 5) + 1 } : i)) };
}
