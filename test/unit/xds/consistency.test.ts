// The snapshot consistency check follows the exact fields Envoy follows.
import { describe, expect, it } from 'vitest';
import { checkConsistency } from '../../../src/xds/cache/consistency.ts';
import type { Resource } from '../../../src/xds/generate/types.ts';
import type { JsonObject } from '../../../src/xds/resources/json.ts';
import {
  CLUSTER,
  ENDPOINT,
  LISTENER,
  ROUTE,
  SECRET,
  type TypeUrl,
} from '../../../src/xds/resources/type-urls.ts';

const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const r = (typeUrl: TypeUrl, name: string, body: JsonObject = { name }): Resource => ({
  typeUrl,
  name,
  body,
});

function snapshot(parts: Partial<Record<TypeUrl, Resource[]>>): Record<TypeUrl, Resource[]> {
  return { [CLUSTER]: [], [ENDPOINT]: [], [LISTENER]: [], [ROUTE]: [], [SECRET]: [], ...parts } as Record<
    TypeUrl,
    Resource[]
  >;
}

const listener = (name: string, routeConfigName: string, extra: JsonObject = {}): Resource =>
  r(LISTENER, name, {
    name,
    filter_chains: [
      {
        filters: [
          {
            name: 'hcm',
            typed_config: {
              '@type': HCM,
              stat_prefix: 'x',
              rds: { route_config_name: routeConfigName },
              ...extra,
            },
          },
        ],
      },
    ],
  });

describe('snapshot consistency', () => {
  it('finds the assignment an EDS cluster names in eds_cluster_config.service_name', () => {
    const c = r(CLUSTER, 'a', { name: 'a', type: 'EDS', eds_cluster_config: { service_name: 'a-eds' } });
    expect(checkConsistency('n', snapshot({ [CLUSTER]: [c], [ENDPOINT]: [r(ENDPOINT, 'a-eds')] }))).toEqual(
      [],
    );
    expect(checkConsistency('n', snapshot({ [CLUSTER]: [c] })).map((p) => p.code)).toEqual(['CONSISTENCY']);
  });

  it('takes the cluster name when an EDS cluster gives no service_name', () => {
    const c = r(CLUSTER, 'a', { name: 'a', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } } });
    expect(checkConsistency('n', snapshot({ [CLUSTER]: [c] })).map((p) => p.message)).toEqual([
      expect.stringContaining(' a,') as string,
    ]);
  });

  it('ignores service_name keys outside eds_cluster_config, and clusters that are not EDS', () => {
    const stray = r(CLUSTER, 'a', {
      name: 'a',
      type: 'STATIC',
      metadata: { filter_metadata: { x: { service_name: 'nowhere' } } },
    });
    const eds = r(CLUSTER, 'b', {
      name: 'b',
      type: 'EDS',
      eds_cluster_config: { service_name: 'b' },
      metadata: { filter_metadata: { x: { service_name: 'nowhere' } } },
    });
    expect(
      checkConsistency('n', snapshot({ [CLUSTER]: [stray, eds], [ENDPOINT]: [r(ENDPOINT, 'b')] })),
    ).toEqual([]);
  });

  it('reads route_config_name from a listener HTTP connection manager rds, and from a gRPC API listener', () => {
    const api = r(LISTENER, 'api', {
      name: 'api',
      api_listener: { api_listener: { '@type': HCM, rds: { route_config_name: 'r2' } } },
    });
    const problems = checkConsistency(
      'n',
      snapshot({ [LISTENER]: [listener('l', 'r1'), api], [ROUTE]: [r(ROUTE, 'r1')] }),
    );
    expect(problems.map((p) => p.resource)).toEqual(['n api']);
  });

  it('ignores route_config_name keys that are not an HCM rds reference', () => {
    const l = r(LISTENER, 'l', {
      name: 'l',
      metadata: { filter_metadata: { x: { route_config_name: 'nowhere' } } },
      filter_chains: [
        {
          filters: [
            {
              name: 'tcp',
              typed_config: { '@type': 'type.googleapis.com/other', route_config_name: 'nowhere' },
            },
          ],
        },
      ],
    });
    expect(checkConsistency('n', snapshot({ [LISTENER]: [l] }))).toEqual([]);
  });
});
