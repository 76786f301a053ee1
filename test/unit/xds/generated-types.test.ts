// The committed types in src/xds/resources/gen are what scripts/gen-types.ts makes of the committed
// descriptor set: a descriptor set rebuilt without regenerating them (or a hand edit) fails here.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DESCRIPTORS, GEN_DIR, generateTypes } from '../../../scripts/gen-types.ts';

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile())
    .map((d) => relative(GEN_DIR, join(d.parentPath, d.name)))
    .sort();
}

describe('generated Envoy JSON types', () => {
  const expected = generateTypes(readFileSync(DESCRIPTORS));

  it('cover the messages the generators build', () => {
    const index = expected.get('messages.ts') ?? '';
    for (const name of [
      'envoy.config.cluster.v3.Cluster',
      'envoy.config.endpoint.v3.ClusterLoadAssignment',
      'envoy.config.listener.v3.Listener',
      'envoy.config.route.v3.RouteConfiguration',
      'envoy.extensions.transport_sockets.tls.v3.Secret',
    ])
      expect(index).toContain(`"${name}": `);
  });

  it('are up to date with the descriptor set (npm run gen:types)', () => {
    expect(filesUnder(GEN_DIR)).toEqual([...expected.keys()].sort());
    const stale = [...expected].filter(
      ([name, content]) => readFileSync(join(GEN_DIR, name), 'utf8') !== content,
    );
    expect(stale.map(([name]) => name)).toEqual([]);
  });
});
