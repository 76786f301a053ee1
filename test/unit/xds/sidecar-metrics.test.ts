// A sidecar's Prometheus metrics (Mesh spec.metrics): one listener on the instance's address that
// reaches only GET /stats/prometheus of the sidecar's own admin on loopback; the rest is 404.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { staticEndpoints } from '../../../src/discovery/static.ts';
import { parseManifestText } from '../../../src/manifest/index.ts';
import { StateStore } from '../../../src/store/store.ts';
import { generateSidecar, type MeshView, type SidecarRef } from '../../../src/xds/generate/index.ts';
import type { Resource } from '../../../src/xds/generate/types.ts';
import { CLUSTER, LISTENER } from '../../../src/xds/resources/type-urls.ts';
import { nodeId } from '../../../src/xds/server/node-id.ts';

function view(input: string): MeshView {
  const parsed = parseManifestText(readFileSync(input, 'utf8'), input);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  const proposal = new StateStore().propose({ apply: parsed.value });
  if (!proposal.ok) throw new Error(JSON.stringify(proposal.errors));
  const { state } = proposal.value;
  const endpoints = new Map([...state.services].map(([k, s]) => [k, staticEndpoints(s)] as const));
  return { mesh: state.mesh, services: state.services, endpoints, policies: state.policies };
}

const ref = (service: string, extra: Partial<SidecarRef> = {}): SidecarRef => {
  const id = { namespace: 'clinical', service, instance: `${service}-1` };
  return { ...id, nodeId: nodeId(id), transport: 'ads', ...extra };
};

function generated(input: string, sidecar: SidecarRef) {
  const r = generateSidecar(view(input), sidecar, { mtls: true });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

const TELEMETRY = 'test/golden/telemetry/input.yaml';
const named = <R extends Resource>(rs: readonly R[], name: string): R | undefined =>
  rs.find((r) => r.name === name);

describe('sidecar metrics', () => {
  it('listens on the instance address and routes only GET /stats/prometheus to the admin', () => {
    const out = generated(TELEMETRY, ref('his'));
    const listener = named(out[LISTENER], 'metrics|prometheus');
    expect(listener?.body).toMatchObject({
      address: { socket_address: { address: '127.0.0.11', port_value: 15090 } },
    });
    const hcm = listener?.body.filter_chains?.[0]?.filters?.[0]?.typed_config as {
      route_config: { virtual_hosts: { routes: unknown[] }[] };
    };
    expect(hcm.route_config.virtual_hosts).toHaveLength(1);
    expect(hcm.route_config.virtual_hosts[0]!.routes).toEqual([
      {
        name: 'prometheus',
        match: { path: '/stats/prometheus', headers: [{ name: ':method', string_match: { exact: 'GET' } }] },
        route: { cluster: 'clinimesh-admin' },
      },
      { name: 'not-found', match: { prefix: '/' }, direct_response: { status: 404 } },
    ]);
  });

  it('reaches the admin on loopback, on the port the agent named or else the default', () => {
    const port = (sidecar: SidecarRef) =>
      JSON.stringify(named(generated(TELEMETRY, sidecar)[CLUSTER], 'clinimesh-admin')?.body);
    expect(port(ref('emr'))).toContain('{"address":"127.0.0.1","port_value":15000}');
    expect(port(ref('emr', { adminPort: 19001 }))).toContain('{"address":"127.0.0.1","port_value":19001}');
  });

  it('is left out when the admin port is not known (Envoy picked it)', () => {
    const out = generated(TELEMETRY, ref('emr', { adminPort: 0 }));
    expect(named(out[LISTENER], 'metrics|prometheus')).toBeUndefined();
    expect(named(out[CLUSTER], 'clinimesh-admin')).toBeUndefined();
  });

  it('is off when the Mesh does not ask for it', () => {
    const out = generated('test/golden/basic-http/input.yaml', ref('emr'));
    expect(named(out[LISTENER], 'metrics|prometheus')).toBeUndefined();
    expect(named(out[CLUSTER], 'clinimesh-admin')).toBeUndefined();
  });
});
