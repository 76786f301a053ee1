// The snapshot cache: what counts as a change of a node's resources of one type.
import { describe, expect, it } from 'vitest';
import { SnapshotCache } from '../../../src/xds/cache/snapshot.ts';
import { prepareResource, type PreparedResource } from '../../../src/xds/resources/prepared.ts';
import { CLUSTER } from '../../../src/xds/resources/type-urls.ts';

const NODE = 'clinical/emr/emr-1';

function cluster(name: string): PreparedResource {
  const p = prepareResource({
    typeUrl: CLUSTER,
    name,
    body: { name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, connect_timeout: '1s' },
  });
  if (!p.ok) throw new Error(JSON.stringify(p.errors));
  return p.value;
}

describe('snapshot cache', () => {
  it('keeps the version when given the very same resources again', () => {
    const cache = new SnapshotCache();
    const [a, b] = [cluster('a'), cluster('b')];
    expect(cache.set(NODE, { [CLUSTER]: [a, b] })).toEqual([CLUSTER]);
    const version = cache.get(NODE, CLUSTER)!.version;
    expect(cache.set(NODE, { [CLUSTER]: [b, a] })).toEqual([]);
    expect(cache.get(NODE, CLUSTER)!.version).toBe(version);
  });

  it('sees a change when one held resource is given twice and another left out', () => {
    // Two upstreams to one service port (different local ports) give the same cluster twice.
    const cache = new SnapshotCache();
    const [inbound, a, b] = [cluster('inbound'), cluster('a'), cluster('b')];
    cache.set(NODE, { [CLUSTER]: [inbound, a, b] });
    expect(cache.set(NODE, { [CLUSTER]: [inbound, a, a] })).toEqual([CLUSTER]);
    expect([...cache.get(NODE, CLUSTER)!.resources.keys()].sort()).toEqual(['a', 'inbound']);
  });
});
