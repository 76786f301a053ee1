// A prepared resource keeps only its encoded bytes; its JSON (REST polling, the admin API) is
// rendered from them and must be what the generator's body says, nested Any payloads included.
import { fromJson, toJson } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import { prepareResource } from '../../../src/xds/resources/prepared.ts';
import { envoyRegistry, messageDesc } from '../../../src/xds/resources/registry.ts';
import { LISTENER } from '../../../src/xds/resources/type-urls.ts';

const HCM =
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const ROUTER = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';

describe('prepared resources', () => {
  it('render their JSON from the encoded bytes, nested typed_config included', () => {
    const body = {
      name: 'outbound_his',
      address: { socket_address: { address: '127.0.0.1', port_value: 9001 } },
      filter_chains: [
        {
          filters: [
            {
              name: 'envoy.filters.network.http_connection_manager',
              typed_config: {
                '@type': HCM,
                stat_prefix: 'his',
                rds: { route_config_name: 'his', config_source: { ads: {}, resource_api_version: 'V3' } },
                http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
              },
            },
          ],
        },
      ],
    };
    const prepared = prepareResource({ typeUrl: LISTENER, name: 'outbound_his', body });
    if (!prepared.ok) throw new Error(JSON.stringify(prepared.errors));
    const desc = messageDesc('envoy.config.listener.v3.Listener');
    const expected = toJson(desc, fromJson(desc, body, { registry: envoyRegistry() }), {
      registry: envoyRegistry(),
    }) as object;
    expect(prepared.value.json()).toEqual({ '@type': LISTENER, ...expected });
    expect(JSON.stringify(prepared.value.json())).toContain('"routeConfigName":"his"');
  });
});
