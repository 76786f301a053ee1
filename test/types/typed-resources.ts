// Type-level tests, checked by `tsc --noEmit` (part of `npm test`), never run: a misspelled field or
// enum value in a generated resource is a compile error. Each `@ts-expect-error` fails the type check
// if the line below it compiles, so this file proves the generators' types have teeth.
import { anyJson } from '../../src/xds/resources/any-json.ts';
import type { ClusterJson } from '../../src/xds/resources/gen/envoy/config/cluster/v3/cluster_pb.ts';
import type { ListenerJson } from '../../src/xds/resources/gen/envoy/config/listener/v3/listener_pb.ts';
import { CLUSTER, ENDPOINT } from '../../src/xds/resources/type-urls.ts';
import type { Resource, SidecarResources } from '../../src/xds/generate/types.ts';

export const cluster: ClusterJson = {
  name: 'outbound|http|his.clinical',
  type: 'EDS',
  // @ts-expect-error: a misspelled field of a resource
  conect_timeout: '1s',
};

export const nested: ClusterJson = {
  // @ts-expect-error: a misspelled field deep inside a resource
  outlier_detection: { consecutive_5xxx: 5 },
};

export const enumValue: ClusterJson = {
  // @ts-expect-error: an enum value Envoy does not have
  lb_policy: 'ROUND_ROBBIN',
};

export const camelCase: ClusterJson = {
  // @ts-expect-error: the JSON (camelCase) name; generators write proto field names
  connectTimeout: '1s',
};

export const listener: ListenerJson = {
  name: 'inbound|15001',
  filter_chains: [
    {
      filters: [
        {
          name: 'envoy.filters.network.tcp_proxy',
          typed_config: anyJson({
            '@type': 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy',
            stat_prefix: 'inbound_tcp',
            // @ts-expect-error: a misspelled field inside a typed_config, checked against its @type
            clustr: 'inbound|tcp',
          }),
        },
      ],
    },
  ],
};

export const untypedAny: ListenerJson = {
  listener_filters: [
    {
      name: 'envoy.filters.listener.tls_inspector',
      // @ts-expect-error: a typed_config with fields must go through anyJson, which checks them
      typed_config: { '@type': 'type.googleapis.com/x.Unknown', anything: true },
    },
  ],
};

// @ts-expect-error: an Any whose @type is no message of the descriptor set
export const unknownType = anyJson({ '@type': 'type.googleapis.com/envoy.NoSuchMessage' });

export const wrongBody: Resource = {
  typeUrl: CLUSTER,
  name: 'c',
  // @ts-expect-error: a body of another resource type than its type URL says
  body: { cluster_name: 'c', endpoints: [] },
};

export const endpoints = (r: SidecarResources): (string | undefined)[] =>
  r[ENDPOINT].map((a) => a.body.cluster_name);
