// Tracing (Mesh spec.tracing) as generated: every HTTP connection manager reports to the collector
// cluster, every route names its spans after the destination port, http.url keeps no path, the
// header-fed tags are overwritten, and an application cannot name the callee's span.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { staticEndpoints } from '../../../src/discovery/static.ts';
import { parseManifestText } from '../../../src/manifest/index.ts';
import type { MeshTracing } from '../../../src/manifest/types.ts';
import { StateStore } from '../../../src/store/store.ts';
import { generateSidecar, type MeshView, type SidecarRef } from '../../../src/xds/generate/index.ts';
import type { JsonObject } from '../../../src/xds/resources/json.ts';
import { CLUSTER, LISTENER, ROUTE } from '../../../src/xds/resources/type-urls.ts';
import { nodeId } from '../../../src/xds/server/node-id.ts';

const TRACING: MeshTracing = {
  zipkin: { host: '127.0.0.50', port: 9411, path: '/api/v2/spans' },
  samplingPercent: 100,
};

function view(input: string, tracing?: MeshTracing): MeshView {
  const parsed = parseManifestText(readFileSync(input, 'utf8'), input);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  const proposal = new StateStore().propose({ apply: parsed.value });
  if (!proposal.ok) throw new Error(JSON.stringify(proposal.errors));
  const { state } = proposal.value;
  const endpoints = new Map([...state.services].map(([k, s]) => [k, staticEndpoints(s)] as const));
  const mesh = tracing ? { ...state.mesh, tracing } : state.mesh;
  return { mesh, services: state.services, endpoints, policies: state.policies, traffic: state.traffic };
}

function generated(v: MeshView, service: string) {
  const id = { namespace: 'clinical', service, instance: `${service}-1` };
  const ref: SidecarRef = { ...id, nodeId: nodeId(id), transport: 'ads' };
  const r = generateSidecar(v, ref, { mtls: true });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

/** The HTTP connection managers of a listener (every filter chain). */
function managers(listener: { body: unknown }): JsonObject[] {
  const chains = (listener.body as { filter_chains?: { filters?: { typed_config?: JsonObject }[] }[] })
    .filter_chains;
  return (chains ?? []).flatMap((c) =>
    (c.filters ?? []).flatMap((f) =>
      String(f.typed_config?.['@type']).endsWith('HttpConnectionManager') ? [f.typed_config!] : [],
    ),
  );
}

const TELEMETRY = 'test/golden/telemetry/input.yaml';

describe('tracing', () => {
  it('traces every inbound and outbound HTTP connection manager, and not the metrics listener', () => {
    const out = generated(view(TELEMETRY, TRACING), 'emr');
    const byName = new Map(out[LISTENER].map((l) => [l.name, managers(l)]));
    for (const name of ['inbound|15011', 'outbound|9001']) {
      const tracing = byName.get(name)?.[0]?.tracing as JsonObject | undefined;
      expect(tracing, name).toMatchObject({
        random_sampling: { value: 100 },
        max_path_tag_length: 0,
        custom_tags: [
          { tag: 'user_agent', literal: { value: '-' } },
          { tag: 'downstream_cluster', literal: { value: '-' } },
        ],
        provider: {
          name: 'envoy.tracers.zipkin',
          typed_config: { collector_cluster: 'clinimesh-tracing', collector_endpoint: '/api/v2/spans' },
        },
      });
    }
    expect(byName.get('metrics|prometheus')?.[0]).not.toHaveProperty('tracing');
  });

  it("names spans after the destination port on both sides, and drops an application's span name", () => {
    const v = view(TELEMETRY, TRACING);
    const route = generated(v, 'emr')[ROUTE].find((r) => r.name === 'outbound|http|his.clinical')!;
    const routes = route.body.virtual_hosts?.flatMap((h) => h.routes ?? []) ?? [];
    expect(routes.length).toBeGreaterThan(0);
    for (const r of routes) expect(r.decorator).toEqual({ operation: 'his.clinical:http', propagate: false });
    expect(route.body.request_headers_to_remove).toEqual(['x-envoy-decorator-operation']);
    const inbound = generated(v, 'his')[LISTENER].find((l) => l.name === 'inbound|15001')!;
    const local = (managers(inbound)[0]?.route_config as { virtual_hosts: { routes: JsonObject[] }[] })
      .virtual_hosts[0]!.routes;
    for (const r of local) expect(r.decorator).toEqual({ operation: 'his.clinical:http', propagate: false });
  });

  it("decorates every route of a TrafficPolicy's table", () => {
    const out = generated(view('test/golden/traffic-policy/input.yaml', TRACING), 'emr');
    const routes = out[ROUTE].flatMap((r) => r.body.virtual_hosts ?? []).flatMap((h) => h.routes ?? []);
    expect(routes.length).toBeGreaterThan(1);
    for (const r of routes) expect(r.decorator?.operation).toBe('his.clinical:http');
  });

  it('leaves TCP listeners untraced', () => {
    const out = generated(view('test/golden/tcp-service/input.yaml', TRACING), 'emr');
    const tcp = out[LISTENER].filter((l) => managers(l).length === 0);
    expect(tcp.length).toBeGreaterThan(0);
    for (const l of tcp) expect(JSON.stringify(l.body)).not.toContain('envoy.tracers.zipkin');
  });

  it('reaches an IP collector statically and a named one through DNS', () => {
    const cluster = (tracing: MeshTracing) =>
      generated(view(TELEMETRY, tracing), 'emr')[CLUSTER].find((c) => c.name === 'clinimesh-tracing')?.body;
    expect(cluster(TRACING)).toMatchObject({ type: 'STATIC' });
    const named = { ...TRACING, zipkin: { ...TRACING.zipkin, host: 'zipkin.observability' } };
    expect(cluster(named)).toMatchObject({ type: 'STRICT_DNS' });
  });

  it('is off when the Mesh does not ask for it: no collector, no decorators', () => {
    const out = generated(view('test/golden/basic-http/input.yaml'), 'emr');
    expect(out[CLUSTER].find((c) => c.name === 'clinimesh-tracing')).toBeUndefined();
    expect(JSON.stringify(out)).not.toContain('decorator');
    expect(JSON.stringify(out)).not.toContain('envoy.tracers.zipkin');
  });
});
