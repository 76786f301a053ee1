import { fromJson } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { scalarViolations } from '../../src/xds/resources/pgv-rules.ts';
import { validateJson, validateMessage } from '../../src/xds/resources/pgv.ts';
import { envoyRegistry, messageDesc } from '../../src/xds/resources/registry.ts';

const CLUSTER = 'envoy.config.cluster.v3.Cluster';
const LISTENER = 'envoy.config.listener.v3.Listener';
const CLA = 'envoy.config.endpoint.v3.ClusterLoadAssignment';
const ROUTES = 'envoy.config.route.v3.RouteConfiguration';
const HCM = 'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

const edsCluster = {
  name: 'his.clinical|http',
  type: 'EDS',
  connect_timeout: '5s',
  lb_policy: 'ROUND_ROBIN',
  eds_cluster_config: { eds_config: { ads: {}, resource_api_version: 'V3' } },
};

const hcm = {
  '@type': `type.googleapis.com/${HCM}`,
  stat_prefix: 'inbound_http',
  rds: { route_config_name: 'inbound', config_source: { ads: {} } },
  http_filters: [
    {
      name: 'envoy.filters.http.router',
      typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' },
    },
  ],
};

const listenerWith = (filter: object) => ({
  name: 'inbound',
  address: { socket_address: { address: '0.0.0.0', port_value: 15006 } },
  filter_chains: [{ filters: [filter] }],
});

/** The code and field path of each problem, which is what callers act on. */
function problems(typeName: string, json: unknown): { code: string; field?: string }[] {
  const result = validateJson(typeName, json);
  return result.ok ? [] : result.errors.map(({ code, field }) => ({ code, field }));
}

describe('validating Envoy resources against their protoc-gen-validate rules', () => {
  it('accepts a valid EDS cluster', () => {
    const result = validateJson(CLUSTER, edsCluster);
    expect(result.ok).toBe(true);
  });

  it('accepts a listener whose HttpConnectionManager is valid', () => {
    expect(
      problems(
        LISTENER,
        listenerWith({ name: 'envoy.filters.network.http_connection_manager', typed_config: hcm }),
      ),
    ).toEqual([]);
  });

  it('reports an empty cluster name under the resource it belongs to', () => {
    const result = validateJson(CLUSTER, { ...edsCluster, name: '' }, 'Cluster his');
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toEqual([
      expect.objectContaining({ code: 'PGV', field: 'name', resource: 'Cluster his' }),
    ]);
    expect(result.errors[0]?.message).toContain('string.min_len');
  });

  it('reports a filter without a name by its path through the filter chain', () => {
    expect(problems(LISTENER, listenerWith({ typed_config: hcm }))).toEqual([
      { code: 'PGV', field: 'filter_chains[0].filters[0].name' },
    ]);
  });

  it('reports an endpoint port above 65535', () => {
    const cla = {
      cluster_name: 'his.clinical|http',
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: '10.0.0.7', port_value: 70000 } } } },
          ],
        },
      ],
    };
    expect(problems(CLA, cla)).toEqual([
      { code: 'PGV', field: 'endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value' },
    ]);
  });

  it('reports a connect_timeout that is not positive', () => {
    expect(problems(CLUSTER, { ...edsCluster, connect_timeout: '-1s' })).toEqual([
      { code: 'PGV', field: 'connect_timeout' },
    ]);
    expect(problems(CLUSTER, { ...edsCluster, connect_timeout: '0s' })).toEqual([
      { code: 'PGV', field: 'connect_timeout' },
    ]);
  });

  it('reports a missing stat_prefix and an unset required oneof on HttpConnectionManager', () => {
    const found = problems(HCM, { http_filters: hcm.http_filters });
    expect(found).toHaveLength(2);
    expect(found).toEqual(
      expect.arrayContaining([
        { code: 'PGV', field: 'stat_prefix' },
        { code: 'PGV', field: 'route_specifier' },
      ]),
    );
  });

  it('validates the message packed in a typed_config Any, with the path going into it', () => {
    const listener = listenerWith({
      name: 'envoy.filters.network.http_connection_manager',
      typed_config: { ...hcm, stat_prefix: '' },
    });
    expect(problems(LISTENER, listener)).toEqual([
      { code: 'PGV', field: 'filter_chains[0].filters[0].typed_config.stat_prefix' },
    ]);
  });

  it('reports an enum value that the enum does not define', () => {
    expect(problems(CLUSTER, { ...edsCluster, lb_policy: 99 })).toEqual([
      { code: 'PGV', field: 'lb_policy' },
    ]);
  });

  it('reports a list with fewer items than min_items', () => {
    const routes = { name: 'inbound', virtual_hosts: [{ name: 'his', domains: [] }] };
    expect(problems(ROUTES, routes)).toEqual([{ code: 'PGV', field: 'virtual_hosts[0].domains' }]);
  });

  it('applies scalar rules to the value inside a wrapper type', () => {
    const cla = {
      cluster_name: 'his',
      endpoints: [{ lb_endpoints: [{ endpoint: {}, load_balancing_weight: 0 }] }],
    };
    expect(problems(CLA, cla)).toEqual([
      { code: 'PGV', field: 'endpoints[0].lb_endpoints[0].load_balancing_weight' },
    ]);
  });

  it('names a bad map key by its quoted key', () => {
    const cluster = { ...edsCluster, metadata: { filter_metadata: { '': { zone: 'a' } } } };
    expect(problems(CLUSTER, cluster)).toEqual([{ code: 'PGV', field: 'metadata.filter_metadata[""]' }]);
  });

  it('reports a required message that is not set', () => {
    expect(problems('envoy.config.core.v3.TypedExtensionConfig', { name: 'ext' })).toEqual([
      { code: 'PGV', field: 'typed_config' },
    ]);
  });

  it('checks HTTP header names and values with the well-known regexes', () => {
    const routes = {
      name: 'inbound',
      virtual_hosts: [
        { name: 'his', domains: ['*'], request_headers_to_add: [{ header: { key: 'x-ok', value: 'a\nb' } }] },
      ],
    };
    expect(problems(ROUTES, routes)).toEqual([
      { code: 'PGV', field: 'virtual_hosts[0].request_headers_to_add[0].header.value' },
    ]);
  });

  it('lets an empty string through when the rule says ignore_empty', () => {
    const options = 'envoy.config.core.v3.UpstreamHttpProtocolOptions';
    expect(problems(options, { override_auto_sni_header: '' })).toEqual([]);
    expect(problems(options, { override_auto_sni_header: 'bad header' })).toEqual([
      { code: 'PGV', field: 'override_auto_sni_header' },
    ]);
  });

  it('turns JSON that does not decode into a SCHEMA problem', () => {
    expect(problems(CLUSTER, { ...edsCluster, connect_timeout: 'soon' })).toEqual([
      { code: 'SCHEMA', field: undefined },
    ]);
    expect(problems(CLUSTER, { ...edsCluster, no_such_field: 1 })).toEqual([
      { code: 'SCHEMA', field: undefined },
    ]);
  });

  it('validates an already decoded message with validateMessage', () => {
    const desc = messageDesc(CLUSTER);
    const msg = fromJson(desc, { ...edsCluster, name: '' }, { registry: envoyRegistry() });
    expect(validateMessage(desc, msg, 'Cluster x')).toEqual([
      expect.objectContaining({ code: 'PGV', field: 'name', resource: 'Cluster x' }),
    ]);
  });
});

describe('protoc-gen-validate rule checks', () => {
  it('treats gt above lt as the outside of a range', () => {
    const rules = { int32: { gt: 10, lt: 5 } };
    expect(scalarViolations(rules, 7)).toHaveLength(1);
    expect(scalarViolations(rules, 3)).toEqual([]);
    expect(scalarViolations(rules, 12)).toEqual([]);
  });

  it('treats lt above gte as the inside of a range', () => {
    const rules = { uint32: { gte: 1, lt: 10 } };
    expect(scalarViolations(rules, 0)).toHaveLength(1);
    expect(scalarViolations(rules, 10)).toHaveLength(1);
    expect(scalarViolations(rules, 1)).toEqual([]);
  });

  it('compares 64-bit values with their bounds and lists by value', () => {
    const rules = { uint64: { lte: 5n, not_in: [3n] } };
    expect(scalarViolations(rules, 6n)).toHaveLength(1);
    expect(scalarViolations(rules, 3n)).toHaveLength(1);
    expect(scalarViolations(rules, 4n)).toEqual([]);
  });

  it('skips numeric rules on zero when ignore_empty is set', () => {
    expect(scalarViolations({ uint32: { gte: 10, ignore_empty: true } }, 0)).toEqual([]);
    expect(scalarViolations({ uint32: { gte: 10 } }, 0)).toHaveLength(1);
  });

  it('checks well-known string formats', () => {
    expect(scalarViolations({ string: { hostname: true } }, 'his.clinical.svc')).toEqual([]);
    expect(scalarViolations({ string: { hostname: true } }, '-his.clinical')).toHaveLength(1);
    expect(scalarViolations({ string: { address: true } }, '10.1.2.3')).toEqual([]);
    expect(scalarViolations({ string: { ipv6: true } }, '10.1.2.3')).toHaveLength(1);
    expect(scalarViolations({ string: { uri: true } }, '/relative')).toHaveLength(1);
    expect(scalarViolations({ string: { uuid: true } }, '123e4567-e89b-12d3-a456-426614174000')).toEqual([]);
    expect(scalarViolations({ string: { email: true } }, 'ward@his.example')).toEqual([]);
    expect(scalarViolations({ string: { well_known_regex: 1 } }, 'x header')).toHaveLength(1);
    expect(scalarViolations({ string: { well_known_regex: 1, strict: false } }, 'x header')).toEqual([]);
  });
});
