// TrafficPolicy generation, read as a reviewer would: which requests may be retried on what, which
// clusters a split names, what a proxyless client is given, and that every resource passes Envoy's
// protoc-gen-validate rules.
import { describe, expect, it } from 'vitest';
import { nodeId } from '../../../src/xds/server/node-id.ts';
import { checkManifestSet, parseManifestText } from '../../../src/manifest/index.ts';
import { meshViewOfText } from '../../helpers/mesh-view.ts';
import { generateLoadAssignment, generateSidecar } from '../../../src/xds/generate/index.ts';
import { subsetEndpoints } from '../../../src/xds/generate/traffic.ts';
import type { MeshView, SidecarRef } from '../../../src/xds/generate/types.ts';
import type { JsonObject } from '../../../src/xds/resources/json.ts';
import { ResourcePool } from '../../../src/xds/resources/prepared.ts';
import { CLUSTER, ROUTE } from '../../../src/xds/resources/type-urls.ts';

const services = `apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: imaging, namespace: clinical }
spec:
  ports: [{ name: grpc, port: 15041, targetPort: 50051, protocol: grpc }]
  instances:
    - { name: imaging-1, address: 10.0.0.31, meta: { version: v1 } }
    - { name: imaging-2, address: 10.0.0.32, meta: { version: v2 } }
---
apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: his, namespace: clinical }
spec:
  ports: [{ name: http, port: 15001, targetPort: 8080, protocol: http }]
  instances: [{ name: his-1, address: 10.0.0.11 }]
---
apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: emr, namespace: clinical }
spec:
  ports: [{ name: http, port: 15011, targetPort: 8080, protocol: http }]
  instances: [{ name: emr-1, address: 10.0.0.21 }]
  upstreams:
    - { service: imaging, port: grpc, localPort: 9201 }
    - { service: his, port: http, localPort: 9001 }
`;

const policies = `apiVersion: clinimesh.io/v1alpha1
kind: TrafficPolicy
metadata: { name: imaging, namespace: clinical }
spec:
  destination: imaging
  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]
  routes:
    - to: [{ subset: v1, weight: 80 }, { subset: v2, weight: 20 }]
      retries: { attempts: 2, on: [unavailable] }
  loadBalancer: { policy: RING_HASH, hashHeader: x-patient-id }
---
apiVersion: clinimesh.io/v1alpha1
kind: TrafficPolicy
metadata: { name: his, namespace: clinical }
spec:
  destination: his
  routes:
    - retries: { attempts: 3, on: [reset, 5xx] }
      to: [{}]
  loadBalancer: { policy: MAGLEV, hashHeader: x-patient-id }
`;

function viewOf(yaml: string): MeshView {
  const parsed = parseManifestText(yaml, 'test.yaml');
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  expect(checkManifestSet(parsed.value)).toEqual([]);
  return meshViewOfText(yaml, 'test.yaml');
}

const emr = (proxyless?: boolean): SidecarRef => ({
  nodeId: nodeId({ namespace: 'clinical', service: 'emr', instance: 'emr-1' }),
  namespace: 'clinical',
  service: 'emr',
  instance: 'emr-1',
  transport: 'ads',
  proxyless,
});

function generated(proxyless?: boolean) {
  const r = generateSidecar(viewOf(`${services}---\n${policies}`), emr(proxyless), { mtls: true });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

const routesOf = (resources: ReturnType<typeof generated>, name: string) =>
  (resources[ROUTE].find((r) => r.name === name)!.body.virtual_hosts as JsonObject[])[0]!
    .routes as JsonObject[];

describe('TrafficPolicy for an Envoy sidecar', () => {
  it('retries writes only before the upstream saw them, unless they carry the idempotency key', () => {
    const routes = routesOf(generated(), 'outbound|http|his.clinical');
    expect(routes.map((r) => r.name)).toEqual(['route-0-idempotent', 'route-0-keyed', 'route-0-writes']);
    const retryOn = routes.map((r) => ((r.route as JsonObject).retry_policy as JsonObject).retry_on);
    expect(retryOn).toEqual([
      'reset,5xx',
      'reset,5xx',
      'connect-failure,refused-stream,reset-before-request',
    ]);
    expect(JSON.stringify(routes[1]!.match)).toContain('idempotency-key');
    expect(JSON.stringify(routes[0]!.match)).toContain('^(GET|HEAD|OPTIONS|PUT|DELETE)$');
  });

  it('splits by weight between subset clusters fed by their own endpoints', () => {
    const resources = generated();
    const split = (routesOf(resources, 'outbound|grpc|imaging.clinical')[0]!.route as JsonObject)
      .weighted_clusters as JsonObject;
    expect(split.clusters).toEqual([
      { name: 'outbound|grpc|imaging.clinical|v1', weight: 80 },
      { name: 'outbound|grpc|imaging.clinical|v2', weight: 20 },
    ]);
    expect(resources[CLUSTER].map((c) => c.name)).toContain('outbound|grpc|imaging.clinical|v2');
  });

  it('passes protoc-gen-validate', () => {
    const pool = new ResourcePool();
    const resources = generated();
    const problems = Object.values(resources)
      .flat()
      .flatMap((r) => {
        const p = pool.prepare(r);
        return p.ok ? [] : p.errors;
      });
    expect(problems).toEqual([]);
  });
});

describe('TrafficPolicy for a proxyless gRPC client', () => {
  it('keeps the split and ring hash, retries only on gRPC statuses with the key, and nothing on a write without it', () => {
    const resources = generated(true);
    const routes = routesOf(resources, 'outbound|grpc|imaging.clinical');
    expect(routes.map((r) => r.name)).toEqual(['route-0-keyed', 'route-0-writes']);
    expect((routes[0]!.route as JsonObject).retry_policy).toEqual({
      retry_on: 'unavailable',
      num_retries: 2,
    });
    expect((routes[1]!.route as JsonObject).retry_policy).toBeUndefined();
    const cluster = resources[CLUSTER].find((c) => c.name === 'outbound|grpc|imaging.clinical')!;
    expect(cluster.body.lb_policy).toBe('RING_HASH');
  });

  it('keeps affinity when the policy asks for MAGLEV, which gRPC lacks: ring hash on the same header', () => {
    const yaml = `${services}---
${policies.replace('policy: RING_HASH', 'policy: MAGLEV')}`;
    const r = generateSidecar(viewOf(yaml), emr(true), { mtls: true });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const cluster = r.value[CLUSTER].find((c) => c.name === 'outbound|grpc|imaging.clinical')!;
    expect(cluster.body.lb_policy).toBe('RING_HASH');
    expect(cluster.body.maglev_lb_config).toBeUndefined();
  });
});

describe('degraded endpoints (Consul warning)', () => {
  it('are a healthy fallback at priority 1, or priority 0 when nothing else is left', () => {
    const endpoint = (instance: string, health: 'HEALTHY' | 'DEGRADED') => ({
      instance,
      address: '10.0.0.1',
      ports: { http: 1 },
      health,
      locality: {},
      weight: 1,
      tags: [],
      meta: {},
    });
    const mixed = generateLoadAssignment('c', 'http', {
      service: 's',
      source: 'consul',
      endpoints: [endpoint('a', 'HEALTHY'), endpoint('b', 'DEGRADED')],
    });
    const groups = mixed.body.endpoints as JsonObject[];
    expect(groups.map((g) => g.priority ?? 0)).toEqual([0, 1]);
    expect(JSON.stringify(groups)).not.toContain('DEGRADED');
    const allWarn = generateLoadAssignment('c', 'http', {
      service: 's',
      source: 'consul',
      endpoints: [endpoint('b', 'DEGRADED')],
    });
    expect((allWarn.body.endpoints as JsonObject[]).map((g) => g.priority ?? 0)).toEqual([0]);
  });
});

describe('locality failover', () => {
  it("puts the caller's zone first, then its region, then the rest, with no gap", () => {
    const at = (
      instance: string,
      region: string,
      zone: string,
      health: 'HEALTHY' | 'DEGRADED' = 'HEALTHY',
    ) => ({
      instance,
      address: '10.0.0.1',
      ports: { http: 1 },
      health,
      locality: { region, zone },
      weight: 1,
      tags: [],
      meta: {},
    });
    const set = {
      service: 's',
      source: 'static' as const,
      endpoints: [at('a', 'eu', 'a'), at('b', 'eu', 'b'), at('c', 'us', 'a'), at('d', 'eu', 'a', 'DEGRADED')],
    };
    const groups = generateLoadAssignment('c', 'http', set, { region: 'eu', zone: 'a' }).body
      .endpoints as JsonObject[];
    const byInstance = Object.fromEntries(
      groups.flatMap((g) =>
        (g.lb_endpoints as JsonObject[]).map((e) => [
          ((e.metadata as JsonObject).filter_metadata as JsonObject).clinimesh &&
            (((e.metadata as JsonObject).filter_metadata as JsonObject).clinimesh as JsonObject).instance,
          g.priority ?? 0,
        ]),
      ),
    );
    expect(byInstance).toEqual({ a: 0, d: 1, b: 2, c: 3 });
  });
});

describe('routing to another service and Consul tags as labels', () => {
  it('sends a matched route to another service the caller calls with the same protocol, and refuses others', () => {
    const legacy = `apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: his-legacy, namespace: clinical }
spec:
  ports: [{ name: http, port: 15002, targetPort: 8080, protocol: http }]
  instances: [{ name: his-legacy-1, address: 10.0.0.12 }]
`;
    const withLegacy = services.replace(
      '    - { service: his, port: http, localPort: 9001 }',
      '    - { service: his, port: http, localPort: 9001 }\n    - { service: his-legacy, port: http, localPort: 9003 }',
    );
    const toLegacy = policies.replace(
      '    - retries: { attempts: 3, on: [reset, 5xx] }',
      '    - match: { headers: [{ name: x-legacy, present: true }] }\n      to: [{ service: his-legacy }]\n    - retries: { attempts: 3, on: [reset, 5xx] }',
    );
    const r = generateSidecar(viewOf(`${withLegacy}---\n${legacy}---\n${toLegacy}`), emr(), { mtls: true });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    const first = routesOf(r.value, 'outbound|http|his.clinical')[0]!;
    expect((first.route as JsonObject).cluster).toBe('outbound|http|his-legacy.clinical');
    // EMR calls imaging over gRPC only: an HTTP route cannot be sent there.
    const toImaging = toLegacy.replace('to: [{ service: his-legacy }]', 'to: [{ service: imaging }]');
    const refused = generateSidecar(viewOf(`${withLegacy}---\n${legacy}---\n${toImaging}`), emr(), {
      mtls: true,
    });
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(refused.errors.map((p) => p.code)).toEqual(['REFERENCE']);
  });

  it('matches subsets on Consul tags: key=value and bare tags', () => {
    const endpoint = (instance: string, tags: string[]) => ({
      instance,
      address: '10.0.0.1',
      ports: { http: 1 },
      health: 'HEALTHY' as const,
      locality: {},
      weight: 1,
      tags,
      meta: {},
    });
    const set = {
      service: 's',
      source: 'consul' as const,
      endpoints: [endpoint('a', ['version=v2']), endpoint('b', ['canary']), endpoint('c', [])],
    };
    expect(
      subsetEndpoints(set, { name: 'v2', labels: { version: 'v2' } })?.endpoints.map((e) => e.instance),
    ).toEqual(['a']);
    expect(
      subsetEndpoints(set, { name: 'c', labels: { canary: 'true' } })?.endpoints.map((e) => e.instance),
    ).toEqual(['b']);
  });
});
