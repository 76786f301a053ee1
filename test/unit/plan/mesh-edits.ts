// Random edits of a small mesh, for property tests of incremental planning and validation: four
// services (HTTP, gRPC or TCP, TCP with instancePorts or not; static or Consul-discovered; 0–2
// instances; calling each other),
// AccessPolicies, TrafficPolicies (subsets, splits, locality failover, per-caller), the Mesh,
// Consul endpoint sets (some with instances that become sidecars), edits of one instance of a
// Service as it stands (weight, zone, labels: what reaches callers as endpoints only) and sidecars
// connecting over ADS, REST or as proxyless clients. Manifests are written as YAML and parsed, so they carry exactly the
// defaults a user's would.
import fc from 'fast-check';
import type { EndpointSet } from '../../../src/discovery/endpoints.ts';
import { parseManifestText, type Manifest } from '../../../src/manifest/index.ts';
import type { Service } from '../../../src/manifest/types.ts';

export const SERVICES = 4;
const NS = 'clinical';
const name = (i: number) => `s${i}`;

interface InstanceSpec {
  /** Where its sidecar listens: its own address, one shared with others, or every address. */
  readonly host?: 'shared' | 'any';
  readonly zone: 'a' | 'b';
  readonly weight: number;
  readonly version: 'v1' | 'v2';
}

export type Edit =
  | {
      op: 'service';
      i: number;
      protocol: 'http' | 'grpc' | 'tcp';
      consul: boolean;
      instances: InstanceSpec[];
      upstreams: number[];
      /** A TCP port's instancePorts base (0: none); 9002 collides with callers' local ports. */
      instancePorts?: 0 | 9002 | 29000;
    }
  | { op: 'deleteService'; i: number }
  | { op: 'access'; dest: number; from: number[]; http: boolean }
  | { op: 'deleteAccess'; dest: number }
  | { op: 'traffic'; dest: number; from?: number; subsets: boolean; failover: boolean; timeout: boolean }
  | { op: 'deleteTraffic'; dest: number }
  | { op: 'mesh'; variant: 0 | 1 | 2 }
  | { op: 'endpoints'; i: number; endpoints: { label: boolean; zone: 'a' | 'b'; unhealthy: boolean }[] }
  | { op: 'instance'; i: number; k: number; zone: 'a' | 'b'; weight: number; version: 'v1' | 'v2' }
  | { op: 'connect'; i: number; k: number; transport: 'ads' | 'rest'; proxyless: boolean };

const index = fc.integer({ min: 0, max: SERVICES - 1 });
const instance = fc.record(
  {
    host: fc.oneof(
      { weight: 8, arbitrary: fc.constant(undefined) },
      { weight: 1, arbitrary: fc.constant('shared' as const) },
      { weight: 1, arbitrary: fc.constant('any' as const) },
    ),
    zone: fc.constantFrom('a' as const, 'b' as const),
    weight: fc.integer({ min: 1, max: 3 }),
    version: fc.constantFrom('v1' as const, 'v2' as const),
  },
  { requiredKeys: ['zone', 'weight', 'version'] },
);

export const edit: fc.Arbitrary<Edit> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      op: fc.constant('service' as const),
      i: index,
      protocol: fc.constantFrom('http' as const, 'grpc' as const, 'tcp' as const),
      consul: fc.boolean(),
      instances: fc.array(instance, { maxLength: 2 }),
      upstreams: fc.uniqueArray(index, { maxLength: 3 }),
      instancePorts: fc.constantFrom(0 as const, 9002 as const, 29000 as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('deleteService' as const), i: index }) },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('access' as const),
      dest: index,
      from: fc.uniqueArray(index, { minLength: 1, maxLength: 2 }),
      http: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('deleteAccess' as const), dest: index }) },
  {
    weight: 2,
    arbitrary: fc.record(
      {
        op: fc.constant('traffic' as const),
        dest: index,
        from: index,
        subsets: fc.boolean(),
        failover: fc.boolean(),
        timeout: fc.boolean(),
      },
      { requiredKeys: ['op', 'dest', 'subsets', 'failover', 'timeout'] },
    ),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('deleteTraffic' as const), dest: index }) },
  {
    weight: 1,
    arbitrary: fc.record({
      op: fc.constant('mesh' as const),
      variant: fc.constantFrom(0 as const, 1 as const, 2 as const),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('endpoints' as const),
      i: index,
      endpoints: fc.array(
        fc.record({
          label: fc.boolean(),
          zone: fc.constantFrom('a' as const, 'b' as const),
          unhealthy: fc.boolean(),
        }),
        { maxLength: 3 },
      ),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant('instance' as const),
      i: index,
      k: fc.integer({ min: 0, max: 1 }),
      zone: fc.constantFrom('a' as const, 'b' as const),
      weight: fc.integer({ min: 1, max: 3 }),
      version: fc.constantFrom('v1' as const, 'v2' as const),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      op: fc.constant('connect' as const),
      i: index,
      k: fc.integer({ min: 0, max: 1 }),
      transport: fc.constantFrom('ads' as const, 'rest' as const),
      proxyless: fc.boolean(),
    }),
  },
);

function parse(text: string): Manifest {
  const parsed = parseManifestText(`apiVersion: clinimesh.io/v1alpha1\n${text}`, 'edit.yaml');
  if (!parsed.ok) throw new Error(`test manifest rejected: ${JSON.stringify(parsed.errors)}\n${text}`);
  return parsed.value[0]!;
}

/**
 * Telemetry per Mesh variant: none; metrics on a free port and tracing; metrics on 9001, which
 * collides with a first upstream's local port wherever an instance's appAddress is its address.
 */
const METRICS = [
  '',
  '  metrics: { port: 15090 }\n  tracing: { zipkin: { collector: "zipkin.observability:9411" }, sampling: 5 }\n',
  '  metrics: { port: 9001 }\n',
] as const;

/** The manifest an edit applies, or the document it deletes (by kind and name), or neither. */
export function manifestOf(e: Edit): Manifest | undefined {
  switch (e.op) {
    case 'service': {
      const instances = e.instances.map(
        (x, k) =>
          `    - { name: ${name(e.i)}-${k + 1}, address: ${x.host === 'shared' ? '127.0.9.9' : x.host === 'any' ? '0.0.0.0' : `127.0.${e.i + 1}.${k + 1}`}, appAddress: 127.0.${e.i + 1}.${k + 1}, locality: { region: eu, zone: ${x.zone} }, weight: ${x.weight}, meta: { version: ${x.version} } }`,
      );
      const upstreams = e.upstreams
        .filter((u) => u !== e.i)
        .map((u, j) => `    - { service: ${name(u)}, port: web, localPort: ${9001 + j} }`);
      return parse(`kind: Service
metadata: { name: ${name(e.i)}, namespace: ${NS} }
spec:
  ports: [{ name: web, port: 15001, targetPort: 8080, protocol: ${e.protocol}${e.protocol === 'tcp' && e.instancePorts ? `, instancePorts: { base: ${e.instancePorts}, count: 3 }` : ''} }]
  discovery: { mode: ${e.consul || !e.instances.length ? 'consul' : 'static'} }
  instances:${instances.length ? `\n${instances.join('\n')}` : ' []'}
  upstreams:${upstreams.length ? `\n${upstreams.join('\n')}` : ' []'}
`);
    }
    case 'access':
      return parse(`kind: AccessPolicy
metadata: { name: ${name(e.dest)}-callers, namespace: ${NS} }
spec:
  destination: ${name(e.dest)}
  rules:
    - from: [${e.from.map((f) => `{ service: ${name(f)} }`).join(', ')}]${e.http ? '\n      http: { methods: [GET] }' : ''}
`);
    case 'traffic': {
      const lines = [
        `kind: TrafficPolicy`,
        `metadata: { name: ${name(e.dest)}-traffic, namespace: ${NS} }`,
        `spec:`,
        `  destination: ${name(e.dest)}`,
      ];
      if (e.from !== undefined) lines.push(`  from: [{ service: ${name(e.from)} }]`);
      if (e.failover) lines.push('  localityFailover: true');
      if (e.subsets) {
        lines.push(
          '  subsets: [{ name: one, labels: { version: v1 } }, { name: two, labels: { version: v2 } }]',
        );
        lines.push(
          `  routes: [{ to: [{ subset: one, weight: 90 }, { subset: two, weight: 10 }]${e.timeout ? ', timeout: 3s' : ''} }]`,
        );
      } else if (e.timeout) lines.push('  routes: [{ timeout: 4s }]');
      return parse(`${lines.join('\n')}\n`);
    }
    case 'mesh':
      return parse(`kind: Mesh
metadata: { name: hospital }
spec:
  trustDomain: hospital.local
  defaults: { connectTimeout: ${e.variant + 1}s }
  authorization: { defaultAction: ${e.variant === 2 ? 'DENY' : 'ALLOW'} }
${METRICS[e.variant]}`);
    default:
      return undefined;
  }
}

/**
 * The Service an `instance` edit applies: service `i` as `current` holds it, with its k-th instance
 * moved to another zone, weight or version label; undefined when it has no such instance.
 */
export function instanceEdited(
  e: Extract<Edit, { op: 'instance' }>,
  current: readonly Manifest[],
): Service | undefined {
  const service = current.find((m): m is Service => m.kind === 'Service' && m.name === name(e.i));
  const instance = service?.instances[e.k];
  if (!service || !instance) return undefined;
  const edited = {
    ...instance,
    weight: e.weight,
    locality: { ...instance.locality, zone: e.zone },
    meta: { ...instance.meta, version: e.version },
  };
  return { ...service, instances: service.instances.map((x, k) => (k === e.k ? edited : x)) };
}

export function deletedBy(e: Edit): { kind: Manifest['kind']; name: string; namespace?: string } | undefined {
  if (e.op === 'deleteService') return { kind: 'Service', name: name(e.i), namespace: NS };
  if (e.op === 'deleteAccess')
    return { kind: 'AccessPolicy', name: `${name(e.dest)}-callers`, namespace: NS };
  if (e.op === 'deleteTraffic')
    return { kind: 'TrafficPolicy', name: `${name(e.dest)}-traffic`, namespace: NS };
  return undefined;
}

/** A Consul answer for service `i`: label-valid instance names become sidecars, `vm` ones do not. */
export function endpointsOf(e: Extract<Edit, { op: 'endpoints' }>): EndpointSet {
  return {
    service: `${name(e.i)}.${NS}`,
    source: 'consul',
    endpoints: e.endpoints.map((x, k) => ({
      instance: x.label ? `${name(e.i)}-c${k}` : `${name(e.i)}.vm-${k}`,
      address: `10.9.${e.i}.${k + 1}`,
      ports: { web: 15001 },
      health: x.unhealthy ? 'UNHEALTHY' : 'HEALTHY',
      locality: { region: 'eu', zone: x.zone },
      weight: 1,
      tags: [],
      meta: { version: k % 2 ? 'v2' : 'v1' },
    })),
  };
}

export function nodeOf(e: Extract<Edit, { op: 'connect' }>): string {
  return `${NS}/${name(e.i)}/${name(e.i)}-${e.k + 1}`;
}

/** Each service once, HTTP, static with one instance, calling nobody: a start most edits build on. */
export function seedServices(): Edit[] {
  return Array.from({ length: SERVICES }, (_, i) => ({
    op: 'service' as const,
    i,
    protocol: 'http' as const,
    consul: false,
    instances: [{ zone: 'a' as const, weight: 1, version: 'v1' as const }],
    upstreams: [],
  }));
}
