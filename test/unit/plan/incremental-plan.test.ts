// Incremental planning is exactly full planning: over random edit sequences (services, policies, the
// Mesh, Consul endpoints, edits of one instance that reach callers as endpoints only, sidecars
// connecting), a control plane that plans only what each change touches, sharing what upstreams give
// every caller alike, holds the very snapshots (every node, every type, every resource and version)
// that a control plane re-planning every sidecar alone from the same state holds.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ControlPlane } from '../../../src/xds/plan/control-plane.ts';
import { Reconciler } from '../../../src/xds/plan/reconciler.ts';
import { checkInPlace } from '../../../src/xds/plan/set-check.ts';
import { StateStore } from '../../../src/store/store.ts';
import { SnapshotCache } from '../../../src/xds/cache/snapshot.ts';
import type { JsonObject } from '../../../src/xds/resources/json.ts';
import { PUSH_ORDER, shortName } from '../../../src/xds/resources/type-urls.ts';
import {
  deletedBy,
  edit,
  endpointsOf,
  instanceEdited,
  manifestOf,
  nodeOf,
  seedServices,
  type Edit,
} from './mesh-edits.ts';

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----';

/** `shareUpstreams: false` for the reference: each sidecar generated alone, nothing shared between them. */
function plane(shareUpstreams = true): { cp: ControlPlane; cache: SnapshotCache; reconciler: Reconciler } {
  const cache = new SnapshotCache();
  const reconciler = new Reconciler(cache, { shareUpstreams });
  reconciler.useSecrets({ trustBundlePem: () => PEM });
  const cp = new ControlPlane(new StateStore(), reconciler, undefined, undefined, { checkSet: checkInPlace });
  return { cp, cache, reconciler };
}

/** Every node's snapshots as plain data: type → version and resource name → content hash. */
function contents(cache: SnapshotCache): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const node of cache.nodeIds().sort()) {
    out[node] = {};
    for (const t of PUSH_ORDER) {
      const s = cache.get(node, t);
      out[node][shortName(t)] = s && {
        version: s.version,
        resources: Object.fromEntries([...s.resources].map(([n, r]) => [n, r.hash]).sort()),
      };
    }
  }
  return out;
}

async function run(cp: ControlPlane, e: Edit): Promise<boolean> {
  const manifest = manifestOf(e);
  if (manifest) return (await cp.apply([manifest])).ok;
  const deleted = deletedBy(e);
  if (deleted) return (await cp.delete([deleted])).ok;
  if (e.op === 'instance') {
    const edited = instanceEdited(e, cp.store.list());
    return edited !== undefined && (await cp.apply([edited])).ok;
  }
  if (e.op === 'endpoints') {
    await cp.updateEndpoints(endpointsOf(e));
    return true;
  }
  if (e.op === 'connect') {
    const metadata: JsonObject = e.proxyless ? { 'clinimesh.proxyless': true } : {};
    const node = { id: nodeOf(e), cluster: `s${e.i}`, metadata, userAgent: 'test' };
    return cp.hooks.connect(node, { transport: e.transport, peer: 'test' }).ok;
  }
  return false;
}

describe('incremental planning', () => {
  it('gives the same snapshots as re-planning every sidecar, over random edit sequences', async () => {
    let applied = 0;
    let instanceEdits = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(edit, { minLength: 1, maxLength: 14 }), async (random) => {
        // Every service exists first (without upstreams), so most random edits are valid ones.
        await compare([...seedServices(), ...random], (e, ok) => {
          if (ok && random.includes(e) && e.op !== 'connect' && e.op !== 'endpoints') applied++;
          if (ok && e.op === 'instance') instanceEdits++;
        });
      }),
      { numRuns: 60 },
    );
    // The generator must make real changes, not only rejected ones.
    expect(applied).toBeGreaterThan(60);
    expect(instanceEdits).toBeGreaterThan(10);
  }, 120_000);

  it('gives callers planned with shared upstreams the TrafficPolicy and instance edits of their target', async () => {
    const caller = { zone: 'a' as const, weight: 1, version: 'v1' as const };
    await compare([
      ...seedServices(),
      { op: 'service', i: 0, protocol: 'http', consul: false, instances: [caller], upstreams: [1] },
      { op: 'traffic', dest: 1, subsets: true, failover: false, timeout: false },
      { op: 'traffic', dest: 1, subsets: true, failover: true, timeout: true },
      { op: 'instance', i: 1, k: 0, zone: 'b', weight: 2, version: 'v2' },
      { op: 'deleteTraffic', dest: 1 },
      { op: 'instance', i: 1, k: 0, zone: 'a', weight: 3, version: 'v1' },
    ]);
  });
});

/**
 * Runs `edits` on a plane that plans incrementally, sharing upstreams, and on one that re-plans every
 * sidecar alone after each edit; both must hold the same snapshots throughout.
 */
async function compare(edits: readonly Edit[], seen: (e: Edit, ok: boolean) => void = () => {}) {
  const incremental = plane();
  const full = plane(false);
  try {
    await incremental.cp.start();
    await full.cp.start();
    for (const e of edits) {
      const ok = await run(incremental.cp, e);
      expect(await run(full.cp, e)).toBe(ok);
      seen(e, ok);
      // The reference re-plans every sidecar from the state both now hold.
      expect((await full.cp.refresh()).ok).toBe(true);
      expect(contents(incremental.cache)).toEqual(contents(full.cache));
    }
  } finally {
    incremental.cp.stop();
    full.cp.stop();
  }
}
