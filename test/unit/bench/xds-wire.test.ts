// The simulated sidecars read xDS responses straight off the wire (bench/xds-wire.ts), reading only
// the names they subscribe to next and the benchmark's markers. These tests check each reader
// against a full decode (protobuf-es fromBinary, then proto3 JSON with every Any expanded) of what
// the control plane's own generators and encoders produce: the golden cases' resources for every
// sidecar, and responses as the server frames them.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fromBinary, toJson } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import {
  clusterNeeds,
  listenerNeeds,
  markersIn,
  readAny,
  readDeltaResponse,
  readSotwHeader,
  sotwResources,
  type Needs,
} from '../../../bench/xds-wire.ts';
import { MARKER_BASE } from '../../../bench/ipc.ts';
import { generateSidecar } from '../../../src/xds/generate/index.ts';
import { anyJson } from '../../../src/xds/resources/any-json.ts';
import { prepareResource, type PreparedResource } from '../../../src/xds/resources/prepared.ts';
import { envoyRegistry, messageDesc } from '../../../src/xds/resources/registry.ts';
import { CLUSTER, ENDPOINT, LISTENER, ROUTE } from '../../../src/xds/resources/type-urls.ts';
import { encodeDeltaResponse } from '../../../src/xds/server/delta-wire.ts';
import { nodeId } from '../../../src/xds/server/node-id.ts';
import { encodeDiscoveryResponse } from '../../../src/xds/server/response.ts';
import { valueOf } from '../manifest/helpers.ts';
import { meshViewOfFile } from '../../helpers/mesh-view.ts';

// ---- the reference: a full decode, read as JSON ----

type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' ? (v as Json) : {});
const list = (v: unknown): Json[] => (Array.isArray(v) ? v.map(obj) : []);

function fullJson(typeName: string, bytes: Uint8Array): Json {
  const desc = messageDesc(typeName);
  return obj(toJson(desc, fromBinary(desc, bytes), { registry: envoyRegistry() }));
}

function secretsOf(socket: unknown, into: string[]): void {
  const typed = obj(obj(socket).typedConfig);
  if (!String(typed['@type'] ?? '').endsWith('TlsContext')) return;
  const common = obj(typed.commonTlsContext);
  for (const c of list(common.tlsCertificateSdsSecretConfigs)) into.push(String(c.name ?? ''));
  const direct = obj(common.validationContextSdsSecretConfig);
  if (direct.name) into.push(String(direct.name));
  const combined = obj(common.combinedValidationContext);
  if (combined.validationContextSdsSecretConfig)
    into.push(String(obj(combined.validationContextSdsSecretConfig).name ?? ''));
}

function referenceClusterNeeds(bytes: Uint8Array): Needs {
  const c = fullJson('envoy.config.cluster.v3.Cluster', bytes);
  const secrets: string[] = [];
  secretsOf(c.transportSocket, secrets);
  const eds = c.type === 'EDS';
  return { names: eds ? [String(obj(c.edsClusterConfig).serviceName || c.name)] : [], secrets };
}

function referenceListenerNeeds(bytes: Uint8Array): Needs {
  const l = fullJson('envoy.config.listener.v3.Listener', bytes);
  const names: string[] = [];
  const secrets: string[] = [];
  for (const chain of list(l.filterChains)) {
    secretsOf(chain.transportSocket, secrets);
    for (const f of list(chain.filters)) {
      const typed = obj(f.typedConfig);
      if (!String(typed['@type'] ?? '').endsWith('.HttpConnectionManager')) continue;
      const name = obj(typed.rds).routeConfigName;
      if (name) names.push(String(name));
    }
  }
  return { names, secrets };
}

function referenceMarkers(bytes: Uint8Array): number[] {
  const cla = fullJson('envoy.config.endpoint.v3.ClusterLoadAssignment', bytes);
  return list(cla.endpoints).flatMap((group) =>
    list(group.lbEndpoints).flatMap((lb) => {
      const port = Number(obj(obj(obj(lb.endpoint).address).socketAddress).portValue ?? 0);
      return port >= MARKER_BASE ? [port - MARKER_BASE] : [];
    }),
  );
}

// ---- what the control plane sends: every golden case's resources, for every sidecar ----

function goldenResources(): Map<string, PreparedResource[]> {
  const byType = new Map<string, PreparedResource[]>(
    [CLUSTER, LISTENER, ENDPOINT, ROUTE].map((t) => [t, []]),
  );
  const cases = readdirSync('test/golden', { withFileTypes: true }).filter((d) => d.isDirectory());
  for (const c of cases) {
    const view = meshViewOfFile(join('test/golden', c.name, 'input.yaml'));
    for (const s of view.services.values())
      for (const i of s.instances) {
        const ref = { namespace: s.namespace, service: s.name, instance: i.name };
        const resources = valueOf(
          generateSidecar(view, { ...ref, nodeId: nodeId(ref), transport: 'ads' }, { mtls: true }),
        );
        for (const [type, out] of byType)
          for (const r of resources[type as typeof CLUSTER]) out.push(valueOf(prepareResource(r)));
      }
  }
  return byType;
}

const golden = goldenResources();
const valueOfAny = (r: PreparedResource): Uint8Array => readAny(r.anyBytes).value;

/** A ClusterLoadAssignment with ordinary ports and markers (ports at or above MARKER_BASE). */
function assignment(name: string, ports: readonly number[]): PreparedResource {
  const lbEndpoints = ports.map((port, i) => ({
    endpoint: { address: { socket_address: { address: `10.0.0.${i + 1}`, port_value: port } } },
  }));
  return valueOf(
    prepareResource({
      typeUrl: ENDPOINT,
      name,
      body: {
        cluster_name: name,
        endpoints: [{ lb_endpoints: lbEndpoints.slice(0, 2) }, { lb_endpoints: lbEndpoints.slice(2) }],
      },
    }),
  );
}

/** A cluster with what the generators do not write: an EDS service name and a plain validation context. */
const handWritten = valueOf(
  prepareResource({
    typeUrl: CLUSTER,
    name: 'by-hand',
    body: {
      name: 'by-hand',
      type: 'EDS',
      eds_cluster_config: { eds_config: { ads: {} }, service_name: 'by-hand-eds' },
      transport_socket: {
        name: 'envoy.transport_sockets.tls',
        typed_config: anyJson({
          '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
          common_tls_context: {
            tls_certificate_sds_secret_configs: [{ name: 'cert-a' }, { name: 'cert-b' }],
            validation_context_sds_secret_config: { name: 'roots' },
          },
        }),
      },
    },
  }),
);

describe('reading xDS resources off the wire (bench simulators)', () => {
  it('has generated clusters with EDS names and secrets, and listeners with routes and secrets', () => {
    const clusters = golden.get(CLUSTER)!.map((r) => clusterNeeds(valueOfAny(r)));
    const listeners = golden.get(LISTENER)!.map((r) => listenerNeeds(valueOfAny(r)));
    expect(clusters.some((n) => n.names.length && n.secrets.length)).toBe(true);
    expect(listeners.some((n) => n.names.length)).toBe(true);
    expect(listeners.some((n) => n.secrets.length)).toBe(true);
  });

  it('finds the EDS name and SDS secrets of every generated cluster as a full decode does', () => {
    for (const r of golden.get(CLUSTER)!)
      expect(clusterNeeds(valueOfAny(r)), r.name).toEqual(referenceClusterNeeds(valueOfAny(r)));
  });

  it('reads an EDS service name and a plain SDS validation context as a full decode does', () => {
    expect(clusterNeeds(valueOfAny(handWritten))).toEqual({
      names: ['by-hand-eds'],
      secrets: ['cert-a', 'cert-b', 'roots'],
    });
    expect(clusterNeeds(valueOfAny(handWritten))).toEqual(referenceClusterNeeds(valueOfAny(handWritten)));
  });

  it('finds the route names and SDS secrets of every generated listener as a full decode does', () => {
    for (const r of golden.get(LISTENER)!)
      expect(listenerNeeds(valueOfAny(r)), r.name).toEqual(referenceListenerNeeds(valueOfAny(r)));
  });

  it('finds markers in load assignments as a full decode does, and none in ordinary ones', () => {
    const cla = assignment('svc', [8080, MARKER_BASE + 7, 9090, MARKER_BASE + 12]);
    expect(markersIn(valueOfAny(cla))).toEqual([7, 12]);
    expect(markersIn(valueOfAny(cla))).toEqual(referenceMarkers(valueOfAny(cla)));
    for (const r of golden.get(ENDPOINT)!)
      expect(markersIn(valueOfAny(r))).toEqual(referenceMarkers(valueOfAny(r)));
  });

  it('reads a state-of-the-world response as the server frames it', () => {
    const resources = golden.get(CLUSTER)!.slice(0, 5);
    const bytes = encodeDiscoveryResponse({ version: 'v1', typeUrl: CLUSTER, nonce: 'n7', resources });
    const full = fullJson('envoy.service.discovery.v3.DiscoveryResponse', bytes);
    expect(readSotwHeader(bytes)).toEqual({
      versionInfo: full.versionInfo,
      typeUrl: full.typeUrl,
      nonce: full.nonce,
    });
    expect(sotwResources(bytes).map((r) => r.typeUrl)).toEqual(list(full.resources).map((r) => r['@type']));
    expect(sotwResources(bytes).map((r) => clusterNeeds(r.value))).toEqual(
      resources.map((r) => referenceClusterNeeds(valueOfAny(r))),
    );
  });

  it('reads a delta response (resources with versions, removals) as the server frames it', () => {
    const resources = [assignment('a', [MARKER_BASE + 1]), assignment('b', [8080])];
    const bytes = encodeDeltaResponse({
      systemVersion: 's',
      typeUrl: ENDPOINT,
      nonce: 'n9',
      resources,
      removed: ['c', 'd'],
    });
    const full = fullJson('envoy.service.discovery.v3.DeltaDiscoveryResponse', bytes);
    const read = readDeltaResponse(bytes);
    expect({ typeUrl: read.typeUrl, nonce: read.nonce, removed: read.removedResources }).toEqual({
      typeUrl: full.typeUrl,
      nonce: full.nonce,
      removed: full.removedResources,
    });
    expect(read.resources.map((r) => [r.name, r.version, r.resource?.typeUrl])).toEqual(
      list(full.resources).map((r) => [r.name, r.version, obj(r.resource)['@type']]),
    );
    expect(read.resources.map((r) => markersIn(r.resource!.value))).toEqual([[1], []]);
  });
});
