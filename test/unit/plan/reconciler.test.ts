// The reconciler's narrow endpoint path builds the same assignments a full plan does.
import { describe, expect, it } from 'vitest';
import { ControlPlane } from '../../../src/xds/plan/control-plane.ts';
import { Reconciler } from '../../../src/xds/plan/reconciler.ts';
import { StateStore } from '../../../src/store/store.ts';
import { SnapshotCache } from '../../../src/xds/cache/snapshot.ts';
import { ENDPOINT } from '../../../src/xds/resources/type-urls.ts';
import { assignedAddresses, EMR_NODE, HIS_SUBSETS, hisEndpoints, meshManifests } from './fixtures.ts';

const CLUSTER = 'outbound|http|his.clinical';

describe('Reconciler: endpoint updates', () => {
  it('rebuild subset assignments of a TrafficPolicy too, exactly as a full plan would', async () => {
    const cache = new SnapshotCache();
    const cp = new ControlPlane(new StateStore(), new Reconciler(cache));
    await cp.start();
    const two = (a: string, b: string) => ({
      ...hisEndpoints(a, 'his-1', { version: 'v1' }),
      endpoints: [
        ...hisEndpoints(a, 'his-1', { version: 'v1' }).endpoints,
        ...hisEndpoints(b, 'his-2', { version: 'v2' }).endpoints,
      ],
    });
    await cp.updateEndpoints(two('10.0.0.1', '10.0.0.2'));
    expect((await cp.apply(meshManifests('r1', HIS_SUBSETS))).ok).toBe(true);
    expect(assignedAddresses(cache, EMR_NODE, `${CLUSTER}|canary`)).toEqual(['10.0.0.2']);

    await cp.updateEndpoints(two('10.0.0.1', '10.0.0.9'));
    expect(assignedAddresses(cache, EMR_NODE, `${CLUSTER}|canary`)).toEqual(['10.0.0.9']);
    expect(assignedAddresses(cache, EMR_NODE, `${CLUSTER}|stable`)).toEqual(['10.0.0.1']);
    const narrow = cache.get(EMR_NODE, ENDPOINT)!.version;
    // A full re-plan from the same state gives the very same version.
    await cp.refresh();
    expect(cache.get(EMR_NODE, ENDPOINT)!.version).toBe(narrow);
  });
});
