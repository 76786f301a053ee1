// Upstream references: every upstream names a Service in the set and a port that service has.
import type { Problem } from '../errors.ts';
import { didYouMean } from './did-you-mean.ts';
import { problemAt } from './problem-at.ts';
import { isExternalUpstream, manifestId, serviceKey, type Service, type ServiceRef } from './types.ts';

/** `no Service clinical/hiss (did you mean "his"?)`, suggesting names in the same namespace. */
export function noSuchService(ref: ServiceRef, services: readonly Service[]): string {
  const sameNamespace = services.filter((t) => t.namespace === ref.namespace).map((t) => t.name);
  return `no Service ${ref.namespace}/${ref.service}${didYouMean(ref.service, sameNamespace)}`;
}

/** Services by serviceKey, once per list: the checks of one set share it. */
const indexes = new WeakMap<readonly Service[], ReadonlyMap<string, Service>>();

export function servicesByKey(services: readonly Service[]): ReadonlyMap<string, Service> {
  let byKey = indexes.get(services);
  if (!byKey) indexes.set(services, (byKey = new Map(services.map((s) => [serviceKey(s), s]))));
  return byKey;
}

/** The upstreams of `subjects` (default: every service) against the whole set `services`. */
export function checkUpstreamReferences(
  services: readonly Service[],
  subjects: readonly Service[] = services,
): Problem[] {
  const byKey = servicesByKey(services);
  return subjects.flatMap((s) =>
    s.upstreams.flatMap((u, i): Problem[] => {
      // External upstreams name an ExternalService, not a Service: check-external.ts.
      if (isExternalUpstream(u)) return [];
      const at = (field: string, message: string): Problem[] => [
        problemAt(s.origin, manifestId(s), `spec.upstreams[${i}].${field}`, 'REFERENCE', message),
      ];
      const target = byKey.get(serviceKey({ name: u.service, namespace: u.namespace }));
      if (!target) return at('service', noSuchService(u, services));
      if (target.ports.some((p) => p.name === u.port)) return [];
      const names = target.ports.map((p) => p.name);
      return at(
        'port',
        `${manifestId(target)} has no port "${u.port}" (it has ${names.join(', ')})${didYouMean(u.port, names)}`,
      );
    }),
  );
}
