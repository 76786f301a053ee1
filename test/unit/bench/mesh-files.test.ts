// The `serve` phase of the benchmark hands the control plane its mesh as files and Consul answers:
// both must give it exactly the mesh and endpoints the in-process phase feeds it directly.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consulCatalog, writeMeshManifests } from '../../../bench/mesh-files.ts';
import { generateMesh } from '../../../bench/mesh-gen.ts';
import {
  endpointsFromEntries,
  parseHealthEntries,
  sortEndpoints,
} from '../../../src/discovery/consul-health.ts';
import { loadManifests, type Manifest } from '../../../src/manifest/index.ts';
import { ConsulDouble } from '../../consul-double/server.ts';

// 30 sidecars on 15 of 20 services: some declare instances, some are Consul-discovered, some Consul-only.
const mesh = generateMesh({ services: 20, sidecars: 30, upstreamsPerService: 3, seed: 7 });
/** Where a manifest came from differs, and the parser names a static service's Consul name (unused). */
const comparable = (ms: readonly Manifest[]) =>
  ms.map(({ origin: _origin, ...m }) =>
    m.kind === 'Service'
      ? { ...m, discovery: { ...m.discovery, consulName: m.discovery.consulName ?? m.name } }
      : m,
  );

describe('the bench mesh written for `clinimesh serve`', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'bench-mesh-files-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('loads back from its files as the same manifests', async () => {
    const files = await writeMeshManifests(mesh, join(dir, 'manifests'));
    expect(files.length).toBeGreaterThan(0);
    const loaded = await loadManifests([join(dir, 'manifests')]);
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.errors));
    expect(comparable(loaded.value)).toEqual(comparable(mesh.manifests));
  });
});

describe('the bench mesh as a Consul catalog', () => {
  let consul: ConsulDouble;
  beforeAll(async () => {
    consul = await ConsulDouble.start();
    const catalog = consulCatalog(mesh);
    for (const node of catalog.nodes) consul.addNode(node);
    for (const r of catalog.registrations) consul.registerService(r.body, { node: r.node });
  });
  afterAll(() => consul.stop());

  it('answers each Consul-discovered service with the endpoints the in-process bench feeds', async () => {
    expect(mesh.endpoints.size).toBeGreaterThan(5);
    for (const [key, set] of mesh.endpoints) {
      const name = key.slice(0, key.indexOf('.'));
      const res = await fetch(`http://${consul.address}/v1/health/service/${name}`);
      const { entries } = parseHealthEntries(await res.json());
      const port = Object.keys(set.endpoints[0]!.ports)[0]!;
      expect(endpointsFromEntries(entries, port), key).toEqual(sortEndpoints(set.endpoints));
    }
  });
});
