// The benchmark's mesh as an operator hands it to `clinimesh serve`: the manifests as YAML files in a
// directory (`serve -f DIR`), and the Consul-discovered services' first endpoints as Consul agent
// registrations, so a control plane in its own process sees the same mesh and the same endpoints the
// in-process benchmark feeds through `updateEndpoints`.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { toYaml } from '../src/cli/manifest-document.ts';
import { serviceKey } from '../src/manifest/index.ts';
import type { BenchMesh } from './mesh-gen.ts';

/** Services per YAML file: a few hundred documents each, as a repository of manifests might hold. */
const DOCUMENTS_PER_FILE = 500;

/** Writes the mesh's manifests into `dir` (created), Mesh first; returns the files written. */
export async function writeMeshManifests(mesh: BenchMesh, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < mesh.manifests.length; i += DOCUMENTS_PER_FILE) {
    const file = join(dir, `mesh-${String(files.length).padStart(3, '0')}.yaml`);
    const docs = mesh.manifests.slice(i, i + DOCUMENTS_PER_FILE).map(toYaml);
    await writeFile(file, docs.join('---\n'));
    files.push(file);
  }
  return files;
}

/** A Consul node per zone, whose meta gives its instances their locality (as Consul agents do). */
export interface ConsulNode {
  readonly name: string;
  readonly address: string;
  readonly meta: Readonly<Record<string, string>>;
}

/** `PUT /v1/agent/service/register` bodies, each on the node of its zone. */
export interface ConsulRegistration {
  readonly node: string;
  readonly body: {
    readonly ID: string;
    readonly Name: string;
    readonly Address: string;
    readonly Port: number;
  };
}

export interface ConsulCatalog {
  readonly nodes: readonly ConsulNode[];
  readonly registrations: readonly ConsulRegistration[];
}

/** The Consul catalog that answers with the mesh's initial endpoints for every Consul-discovered service. */
export function consulCatalog(mesh: BenchMesh): ConsulCatalog {
  const nodes = new Map<string, ConsulNode>();
  const registrations: ConsulRegistration[] = [];
  const consulNames = new Map(
    mesh.manifests.flatMap((m) =>
      m.kind === 'Service' && m.discovery.mode === 'consul'
        ? [[serviceKey(m), m.discovery.consulName ?? m.name] as const]
        : [],
    ),
  );
  for (const [key, set] of mesh.endpoints) {
    const name = consulNames.get(key);
    if (name === undefined) throw new Error(`endpoints for ${key}, which is not Consul-discovered`);
    for (const e of set.endpoints) {
      const region = e.locality.region ?? '';
      const zone = e.locality.zone ?? '';
      const node = `bench-${region}-${zone}`;
      if (!nodes.has(node))
        nodes.set(node, {
          name: node,
          address: `10.254.0.${nodes.size + 1}`,
          meta: { ...(region && { region }), ...(zone && { zone }) },
        });
      const ports = Object.values(e.ports);
      if (ports.length !== 1) throw new Error(`${key}/${e.instance}: one port per Consul registration`);
      registrations.push({ node, body: { ID: e.instance, Name: name, Address: e.address, Port: ports[0]! } });
    }
  }
  return { nodes: [...nodes.values()], registrations };
}
