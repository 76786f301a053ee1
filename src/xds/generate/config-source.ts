// The ConfigSource for EDS and RDS: the ADS stream, or REST polling of the control plane.
import type { ConfigSourceJson } from '../resources/gen/envoy/config/core/v3/config_source_pb.ts';
import { XDS_CLUSTER } from './names.ts';
import type { XdsTransport } from './types.ts';

export const REST_REFRESH_DELAY = '1s';
export const REST_REQUEST_TIMEOUT = '35s';

export function configSource(transport: XdsTransport): ConfigSourceJson {
  if (transport === 'ads') return { ads: {}, resource_api_version: 'V3' };
  return {
    api_config_source: {
      api_type: 'REST',
      transport_api_version: 'V3',
      cluster_names: [XDS_CLUSTER],
      refresh_delay: REST_REFRESH_DELAY,
      request_timeout: REST_REQUEST_TIMEOUT,
    },
    resource_api_version: 'V3',
  };
}
