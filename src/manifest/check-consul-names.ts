// Consul service names belong to one namespace. A Service that registers its instances in Consul
// (`discovery.register: true`) under a name (its consulName, or its own name) that a Service of
// another namespace registers or discovers would add endpoints to that namespace's service, which
// an editor of its own namespace only must not be able to do (CONFLICT, blamed on the registrar).
// Two namespaces discovering one name only read it. Consul compares service names ignoring case.
import type { Problem } from '../errors.ts';
import { fieldAt } from './field-positions.ts';
import { problemAt, where } from './problem-at.ts';
import { manifestId, type Service } from './types.ts';

/** The Consul name a Service registers or watches, as Consul compares it. */
export const consulNameKey = (s: Service): string => (s.discovery.consulName ?? s.name).toLowerCase();

export const usesConsul = (s: Service): boolean => s.discovery.register || s.discovery.mode === 'consul';

/** A CONFLICT for each registrar among `subjects` whose Consul name a Service of another namespace uses. */
export function checkConsulNames(
  services: readonly Service[],
  subjects: readonly Service[] = services,
): Problem[] {
  const registrars = subjects.filter((s) => s.discovery.register);
  if (registrars.length === 0) return [];
  const users = new Map<string, Service[]>();
  for (const s of services) {
    if (!usesConsul(s)) continue;
    const key = consulNameKey(s);
    const list = users.get(key);
    if (list) list.push(s);
    else users.set(key, [s]);
  }
  return registrars.flatMap((s) => {
    const other = users.get(consulNameKey(s))?.find((t) => t.namespace !== s.namespace);
    if (!other) return [];
    const field = fieldAt(s.origin.fieldPos, 'spec.discovery.consulName')
      ? 'spec.discovery.consulName'
      : 'spec.discovery.register';
    const use = other.discovery.register ? 'registers' : 'discovers';
    return [
      problemAt(
        s.origin,
        manifestId(s),
        field,
        'CONFLICT',
        `registers its instances in Consul as "${s.discovery.consulName ?? s.name}", a name ${manifestId(other)} (${where(other.origin)}) ${use} in namespace ${other.namespace}: a Consul service name belongs to one namespace`,
      ),
    ];
  });
}
