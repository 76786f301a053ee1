// How much of the mesh a change plans again: an edit that reaches callers only as endpoints
// rebuilds their assignments only, an edit of what callers read of a service (its ports) plans
// them whole, and the service's own sidecars are planned whole either way.
import { describe, expect, it } from 'vitest';
import { staticEndpoints } from '../../../src/discovery/static.ts';
import { parseManifestText } from '../../../src/manifest/index.ts';
import type { Service } from '../../../src/manifest/types.ts';
import { StateStore } from '../../../src/store/store.ts';
import { SnapshotCache } from '../../../src/xds/cache/snapshot.ts';
import type { MeshView } from '../../../src/xds/generate/types.ts';
import { ControlPlane } from '../../../src/xds/plan/control-plane.ts';
import { Reconciler } from '../../../src/xds/plan/reconciler.ts';
import { checkInPlace } from '../../../src/xds/plan/set-check.ts';

const HIS = 'his.clinical';
const HIS_NODE = 'clinical/his/his-1';
const EMR_NODE = 'clinical/emr/emr-1';

const MESH = `apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: his, namespace: clinical }
spec:
  ports: [{ name: http, port: 15001, targetPort: 8080, protocol: http }]
  instances: [{ name: his-1, address: 127.0.0.11, appAddress: 127.0.0.11 }]
---
apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: emr, namespace: clinical }
spec:
  ports: [{ name: http, port: 15011, targetPort: 8080, protocol: http }]
  instances: [{ name: emr-1, address: 127.0.0.21, appAddress: 127.0.0.21 }]
  upstreams: [{ service: his, port: http, localPort: 9001 }]
`;

async function published(): Promise<{ reconciler: Reconciler; view: MeshView; his: Service }> {
  const reconciler = new Reconciler(new SnapshotCache());
  const cp = new ControlPlane(new StateStore(), reconciler, undefined, undefined, { checkSet: checkInPlace });
  const parsed = parseManifestText(MESH, 'mesh.yaml');
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
  expect((await cp.apply(parsed.value)).ok).toBe(true);
  cp.stop();
  const view = reconciler.currentView()!;
  return { reconciler, view, his: view.services.get(HIS)! };
}

/** `view` with HIS replaced by `his`, its endpoints made from its instances as the control plane does. */
function withHis(view: MeshView, his: Service): MeshView {
  return {
    ...view,
    services: new Map(view.services).set(HIS, his),
    endpoints: new Map(view.endpoints).set(HIS, staticEndpoints(his)),
  };
}

describe('plan scope', () => {
  it('rebuilds only the assignments of callers when a service changes only its instances', async () => {
    const { reconciler, view, his } = await published();
    const heavier = { ...his, instances: his.instances.map((i) => ({ ...i, weight: 3 })) };
    const scope = reconciler.scope(withHis(view, heavier));
    expect(scope.full).toBe(false);
    expect([...scope.whole]).toEqual([HIS_NODE]);
    expect([...scope.endpointsOnly]).toEqual([EMR_NODE]);
    expect([...scope.endpointServices]).toEqual([HIS]);
  });

  it('plans callers whole when what they read of the service (its ports) changes', async () => {
    const { reconciler, view, his } = await published();
    const moved = { ...his, ports: his.ports.map((p) => ({ ...p, targetPort: 8081 })) };
    const scope = reconciler.scope(withHis(view, moved));
    expect([...scope.whole].sort()).toEqual([EMR_NODE, HIS_NODE]);
    expect(scope.endpointsOnly.size).toBe(0);
  });

  it('plans nothing when nothing changed, and everything when asked to', async () => {
    const { reconciler, view } = await published();
    const same = reconciler.scope(view);
    expect(same.whole.size + same.endpointsOnly.size).toBe(0);
    expect(same.sidecars).toBe(2);
    expect([...reconciler.scope(view, true).whole].sort()).toEqual([EMR_NODE, HIS_NODE]);
  });
});
