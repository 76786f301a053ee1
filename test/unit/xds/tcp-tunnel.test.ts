// The invariants of mesh TCP that golden files show but do not state: a tunnel on both ends under
// mTLS and never without, the decision before the application is connected, and no HTTP timer
// shorter than tcp_proxy's own idle timeout.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { staticEndpoints } from '../../../src/discovery/static.ts';
import { parseManifestText } from '../../../src/manifest/index.ts';
import { StateStore } from '../../../src/store/store.ts';
import { generateSidecar, type MeshView, type SidecarRef } from '../../../src/xds/generate/index.ts';
import type { JsonObject } from '../../../src/xds/resources/json.ts';
import { CLUSTER, LISTENER } from '../../../src/xds/resources/type-urls.ts';
import { nodeId } from '../../../src/xds/server/node-id.ts';

const INPUT = 'test/golden/tcp-service/input.yaml';

function view(): MeshView {
  const parsed = parseManifestText(readFileSync(INPUT, 'utf8'), INPUT);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  const proposal = new StateStore().propose({ apply: parsed.value });
  if (!proposal.ok) throw new Error(JSON.stringify(proposal.errors));
  const { state } = proposal.value;
  const endpoints = new Map([...state.services].map(([k, s]) => [k, staticEndpoints(s)] as const));
  return { mesh: state.mesh, services: state.services, endpoints, policies: state.policies };
}

const ref = (service: string): SidecarRef => {
  const id = { namespace: 'clinical', service, instance: `${service}-1` };
  return { ...id, nodeId: nodeId(id), transport: 'ads' };
};

function generated(service: string, mtls: boolean) {
  const r = generateSidecar(view(), ref(service), { mtls });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

const at = (o: unknown, ...path: string[]): JsonObject =>
  path.reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], o) as JsonObject;
const seconds = (d: unknown): number => Number(String(d).replace(/s$/, ''));

function outboundTcpProxy(mtls: boolean): JsonObject {
  const listener = generated('emr', mtls)[LISTENER].find((l) => l.name === 'outbound|9003')!;
  const chains = listener.body.filter_chains as JsonObject[];
  return at((chains[0]!.filters as JsonObject[])[0], 'typed_config');
}

function inboundFilters(mtls: boolean): JsonObject[] {
  const listener = generated('lab', mtls)[LISTENER].find((l) => l.name === 'inbound|15041')!;
  return (listener.body.filter_chains as JsonObject[])[0]!.filters as JsonObject[];
}

describe('mesh TCP through a CONNECT tunnel', () => {
  it('tunnels the caller to the destination service and port, over HTTP/2 with ALPN h2', () => {
    expect(at(outboundTcpProxy(true), 'tunneling_config')).toEqual({ hostname: 'lab.clinical:15041' });
    const cluster = generated('emr', true)[CLUSTER].find((c) => c.name === 'outbound|hl7|lab.clinical')!;
    const options = at(cluster.body, 'typed_extension_protocol_options');
    expect(JSON.stringify(options)).toContain('http2_protocol_options');
    expect(
      at(cluster.body, 'transport_socket', 'typed_config', 'common_tls_context', 'alpn_protocols'),
    ).toEqual(['h2']);
  });

  it('terminates the tunnel behind the decision: filters before the router, the router connects', () => {
    const [hcm] = inboundFilters(true);
    expect(hcm?.name).toBe('envoy.filters.network.http_connection_manager');
    const config = at(hcm, 'typed_config');
    expect(config.codec_type).toBe('HTTP2');
    const names = (config.http_filters as JsonObject[]).map((f) => f.name);
    expect(names.at(-1)).toBe('envoy.filters.http.router');
    const route = at(config, 'route_config', 'virtual_hosts', '0', 'routes', '0');
    expect(route.match).toEqual({ connect_matcher: {} });
    expect(at(route, 'route', 'upgrade_configs')).toEqual([{ upgrade_type: 'CONNECT', connect_config: {} }]);
  });

  it('lets no HTTP timer end a tunnel before tcp_proxy would call it idle', () => {
    const idle = seconds(outboundTcpProxy(true).idle_timeout);
    const config = at(inboundFilters(true)[0], 'typed_config');
    expect(seconds(config.stream_idle_timeout)).toBeGreaterThanOrEqual(idle);
    expect(seconds(config.request_timeout)).toBe(0);
    expect(seconds(at(config, 'route_config', 'virtual_hosts', '0', 'routes', '0', 'route', 'timeout'))).toBe(
      0,
    );
  });

  it('keeps raw tcp_proxy on both ends without mTLS, where there is no tunnel to speak', () => {
    expect(outboundTcpProxy(false).tunneling_config).toBeUndefined();
    expect(inboundFilters(false).map((f) => f.name)).toEqual(['envoy.filters.network.tcp_proxy']);
    const cluster = generated('emr', false)[CLUSTER].find((c) => c.name === 'outbound|hl7|lab.clinical')!;
    expect(cluster.body.typed_extension_protocol_options).toBeUndefined();
  });
});
