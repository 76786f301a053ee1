// Endpoints of services whose instances are declared in the manifests themselves.
import { serviceKey, type Service } from '../manifest/types.ts';
import type { EndpointSet } from './endpoints.ts';

export function staticEndpoints(service: Service): EndpointSet {
  return {
    service: serviceKey(service),
    source: 'static',
    endpoints: service.instances.map((i) => ({
      instance: i.name,
      address: i.address,
      ports: Object.fromEntries(service.ports.map((p) => [p.name, p.port])),
      health: 'HEALTHY',
      locality: i.locality,
      weight: i.weight,
      tags: [],
      meta: i.meta,
    })),
  };
}
