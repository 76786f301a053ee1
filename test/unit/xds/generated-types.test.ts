// The committed types in src/xds/resources/gen are what scripts/gen-types.ts makes of the committed
// descriptor set: a descriptor set rebuilt without regenerating them, or a hand edit, fails here.
// The generator runs as a child process, as `npm run gen:types` runs it.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const GEN = 'src/xds/resources/gen';

// The generator's own dependency (a devDependency): a checkout whose node_modules predates it skips
// the check with a printed reason until `npm ci`; CI, which always runs `npm ci`, must not skip.
const generator = existsSync('node_modules/@bufbuild/protoplugin/package.json');
if (!generator) {
  const reason = '@bufbuild/protoplugin is not installed (run npm ci)';
  if (process.env.CI === 'true') throw new Error(`generated-types: ${reason}`);
  console.warn(`skipping the freshness check of ${GEN}: ${reason}`);
}

function genTypes(...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'scripts/gen-types.ts', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('generated Envoy JSON types', () => {
  it('cover the resources the generators build, by proto field name', () => {
    const index = readFileSync(`${GEN}/messages.ts`, 'utf8');
    for (const name of [
      'envoy.config.cluster.v3.Cluster',
      'envoy.config.endpoint.v3.ClusterLoadAssignment',
      'envoy.config.listener.v3.Listener',
      'envoy.config.route.v3.RouteConfiguration',
      'envoy.extensions.transport_sockets.tls.v3.Secret',
    ])
      expect(index).toContain(`"${name}": `);
    const cluster = readFileSync(`${GEN}/envoy/config/cluster/v3/cluster_pb.ts`, 'utf8');
    expect(cluster).toContain('eds_cluster_config?: Cluster_EdsClusterConfigJson;');
  });

  it.skipIf(!generator)('are up to date with the descriptor set (npm run gen:types)', () => {
    const check = genTypes('--check');
    expect(check.status, check.stderr).toBe(0);
  });
});
