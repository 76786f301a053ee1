// The bootstrap's stats tag for cluster names: Prometheus sees `outbound|http|his.clinical` whole as
// the envoy_cluster_name label, not cut at its first dot with the namespace in the metric name.
import { describe, expect, it } from 'vitest';
import { CLUSTER_NAME_TAG, envoyBootstrap } from '../../../src/bootstrap/envoy-bootstrap.ts';

/** What Envoy does with a regex tag: removes the first group from the name, the second is the value. */
function extract(stat: string): { name: string; cluster: string } | undefined {
  const m = new RegExp(CLUSTER_NAME_TAG.regex!).exec(stat);
  if (!m?.[1] || m[2] === undefined) return undefined;
  return { name: stat.replace(m[1], ''), cluster: m[2] };
}

describe('cluster name stats tag', () => {
  it('takes outbound and egress cluster names whole, subsets and per-instance ports included', () => {
    expect(extract('cluster.outbound|http|his.clinical.upstream_rq_total')).toEqual({
      name: 'cluster.upstream_rq_total',
      cluster: 'outbound|http|his.clinical',
    });
    expect(extract('cluster.outbound|http|his.clinical|canary.upstream_rq_200')?.cluster).toBe(
      'outbound|http|his.clinical|canary',
    );
    expect(extract('cluster.outbound|kafka#1|kafka.imaging.upstream_cx_total')?.cluster).toBe(
      'outbound|kafka#1|kafka.imaging',
    );
    expect(extract('cluster.external|reference-lab.clinical.upstream_rq_total')).toEqual({
      name: 'cluster.upstream_rq_total',
      cluster: 'external|reference-lab.clinical',
    });
  });

  it("leaves every other cluster to Envoy's default tag", () => {
    expect(extract('cluster.inbound|http.upstream_rq_total')).toBeUndefined();
    expect(extract('cluster.clinimesh-xds.upstream_cx_total')).toBeUndefined();
    expect(extract('listener.127.0.0.1_15001.downstream_cx_total')).toBeUndefined();
  });

  it('is in every bootstrap, ahead of the default extractor (no prefix token)', () => {
    const bootstrap = envoyBootstrap({
      nodeId: 'clinical/his/his-1',
      cluster: 'his',
      xdsServers: [{ host: '127.0.0.1', port: 18000 }],
      transport: 'ads',
    });
    expect(bootstrap.stats_config?.stats_tags).toEqual([CLUSTER_NAME_TAG]);
    expect(CLUSTER_NAME_TAG.regex?.startsWith('^(?:cluster)')).toBe(true);
  });

  it('names the admin port in node metadata only when it is not the default', () => {
    const base = {
      nodeId: 'clinical/his/his-1',
      cluster: 'his',
      xdsServers: [{ host: '127.0.0.1', port: 18000 }],
      transport: 'ads' as const,
    };
    expect(envoyBootstrap(base).node?.metadata).not.toHaveProperty(['clinimesh.admin_port']);
    expect(envoyBootstrap({ ...base, adminPort: 15000 }).node?.metadata).not.toHaveProperty([
      'clinimesh.admin_port',
    ]);
    expect(envoyBootstrap({ ...base, adminPort: 19001 }).node?.metadata).toMatchObject({
      'clinimesh.admin_port': 19001,
    });
    expect(envoyBootstrap({ ...base, adminPort: 0 }).node?.metadata).toMatchObject({
      'clinimesh.admin_port': 0,
    });
  });
});
