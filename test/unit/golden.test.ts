// Golden-file tests of the sidecar generators, as Kuma and Consul's agent/xds do them. Each folder
// test/golden/<case>/ holds `input.yaml` (multi-document manifests), optionally `sidecars.yaml`
// (`transport: ads|rest` for every sidecar of the case), and one
// `<namespace>_<service>_<instance>.golden.yaml` per instance: what generateSidecar gives that
// sidecar with mTLS on, grouped by type (CDS, EDS, LDS, RDS; SDS secrets are added per connection
// and so never appear), resource names sorted. Every generated resource must also pass Envoy's
// protoc-gen-validate rules and the snapshot consistency check, the contract that nothing invalid
// is ever published.
//
// To accept a deliberate change of output, rewrite the golden files and review the diff:
//   UPDATE_GOLDEN=1 npx vitest run test/unit/golden.test.ts
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { nodeId } from '../../src/xds/server/node-id.ts';
import { checkConsistency } from '../../src/xds/cache/consistency.ts';
import {
  generateSidecar,
  type MeshView,
  type SidecarRef,
  type SidecarResources,
  type XdsTransport,
} from '../../src/xds/generate/index.ts';
import { prepareResource } from '../../src/xds/resources/prepared.ts';
import {
  CLUSTER,
  ENDPOINT,
  LISTENER,
  ROUTE,
  shortName,
  type TypeUrl,
} from '../../src/xds/resources/type-urls.ts';
import { valueOf } from './manifest/helpers.ts';
import { meshViewOfFile } from '../helpers/mesh-view.ts';

const GOLDEN = 'test/golden';
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const TYPES: readonly TypeUrl[] = [CLUSTER, ENDPOINT, LISTENER, ROUTE];

/** The MeshView the control plane builds (ControlPlane.view): state from the store, static endpoints. */

function transportOf(caseDir: string): XdsTransport {
  const file = join(caseDir, 'sidecars.yaml');
  if (!existsSync(file)) return 'ads';
  const { transport } = parse(readFileSync(file, 'utf8')) as { transport: XdsTransport };
  if (transport !== 'ads' && transport !== 'rest')
    throw new Error(`test bug: ${file}: transport ${String(transport)}`);
  return transport;
}

function sidecarsOf(view: MeshView, transport: XdsTransport): SidecarRef[] {
  return [...view.services.values()].flatMap((s) =>
    s.instances.map((i) => {
      const ref = { namespace: s.namespace, service: s.name, instance: i.name };
      return { ...ref, nodeId: nodeId(ref), transport };
    }),
  );
}

const goldenFileOf = (ref: SidecarRef): string =>
  `${ref.namespace}_${ref.service}_${ref.instance}.golden.yaml`;

function render(caseName: string, ref: SidecarRef, resources: SidecarResources): string {
  const byType: Record<string, unknown[]> = {};
  for (const t of TYPES) {
    byType[shortName(t)] = [...resources[t]].sort((a, b) => a.name.localeCompare(b.name)).map((r) => r.body);
  }
  const header = [
    `# generateSidecar for ${ref.nodeId} (transport ${ref.transport}, mtls: true) from test/golden/${caseName}/input.yaml.`,
    '# Do not edit: UPDATE_GOLDEN=1 npx vitest run test/unit/golden.test.ts rewrites it; review the diff.',
  ].join('\n');
  // Generators share objects (RBAC rules and shadow_rules, PERMISSIVE filter chains): no YAML aliases.
  return `${header}\n${stringify(byType, { lineWidth: 0, aliasDuplicateObjects: false })}`;
}

const cases = readdirSync(GOLDEN, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => d.name)
  .sort();

describe('generated sidecar configuration (golden files)', () => {
  it('has cases to check', () => {
    expect(cases.length).toBeGreaterThan(0);
  });

  describe.each(cases)('%s', (caseName) => {
    const dir = join(GOLDEN, caseName);
    const view = meshViewOfFile(join(dir, 'input.yaml'));
    const sidecars = sidecarsOf(view, transportOf(dir));
    // Generated inside each test, so a sidecar that fails to generate fails its own tests only.
    const resourcesOf = (ref: SidecarRef): SidecarResources =>
      valueOf(generateSidecar(view, ref, { mtls: true }));

    it.each(sidecars.map((ref) => [ref.nodeId, ref] as const))('%s matches its golden file', (_, ref) => {
      const file = join(dir, goldenFileOf(ref));
      const actual = render(caseName, ref, resourcesOf(ref));
      if (UPDATE) writeFileSync(file, actual);
      expect(existsSync(file), `${file} is missing: run with UPDATE_GOLDEN=1`).toBe(true);
      expect(actual).toBe(readFileSync(file, 'utf8'));
    });

    it.each(sidecars.map((ref) => [ref.nodeId, ref] as const))(
      '%s: every resource passes PGV and consistency',
      (_, ref) => {
        const resources = resourcesOf(ref);
        expect(checkConsistency(ref.nodeId, resources)).toEqual([]);
        const invalid = TYPES.flatMap((t) =>
          resources[t].flatMap((r) => {
            const prepared = prepareResource(r);
            return prepared.ok ? [] : prepared.errors;
          }),
        );
        expect(invalid).toEqual([]);
      },
    );

    it('has no golden file for a sidecar the input does not declare', () => {
      const expected = new Set(sidecars.map(goldenFileOf));
      const stale = readdirSync(dir).filter((f) => f.endsWith('.golden.yaml') && !expected.has(f));
      if (UPDATE) for (const f of stale) rmSync(join(dir, f));
      else expect(stale).toEqual([]);
    });
  });
});
