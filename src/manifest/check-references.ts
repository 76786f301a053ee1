// Upstream references: every upstream names a Service in the set and a port that service has.
import type { Problem } from '../errors.ts';
import { didYouMean } from './did-you-mean.ts';
import { problemAt } from './problem-at.ts';
import { manifestId, serviceKey, type Service } from './types.ts';

export function checkUpstreamReferences(services: readonly Service[]): Problem[] {
  const byKey = new Map(services.map((s) => [serviceKey(s), s]));
  return services.flatMap((s) =>
    s.upstreams.flatMap((u, i): Problem[] => {
      const at = (field: string, message: string): Problem[] => [
        problemAt(s.origin, manifestId(s), `spec.upstreams[${i}].${field}`, 'REFERENCE', message),
      ];
      const target = byKey.get(serviceKey({ name: u.service, namespace: u.namespace }));
      if (!target) {
        const sameNamespace = services.filter((t) => t.namespace === u.namespace).map((t) => t.name);
        return at('service', `no Service ${u.namespace}/${u.service}${didYouMean(u.service, sameNamespace)}`);
      }
      if (target.ports.some((p) => p.name === u.port)) return [];
      const names = target.ports.map((p) => p.name);
      return at(
        'port',
        `${manifestId(target)} has no port "${u.port}" (it has ${names.join(', ')})${didYouMean(u.port, names)}`,
      );
    }),
  );
}
