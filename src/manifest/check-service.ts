// Rules inside one Service: unique port names and numbers, unique instance names, unique upstream
// local ports, no upstream to itself. Run at parse time on the entries that could be read (so these
// problems come out together with type errors), and again by checkManifestSet for manifests that
// were built in code rather than parsed.
import type { Problem } from '../errors.ts';
import { problemAt, where } from './problem-at.ts';
import { manifestId, type Instance, type Origin, type ServicePort, type Upstream } from './types.ts';

/** A Service as far as it could be read: entries that failed validation are holes. */
export interface ServiceDraft {
  readonly name: string;
  readonly namespace: string;
  readonly ports: readonly (ServicePort | undefined)[];
  readonly instances: readonly (Instance | undefined)[];
  readonly upstreams: readonly (Upstream | undefined)[];
  readonly origin: Origin;
}

export function checkServiceEntries(s: ServiceDraft): Problem[] {
  const resource = manifestId({ kind: 'Service', name: s.name || '<unnamed>', namespace: s.namespace });
  const unique = <T>(
    list: readonly (T | undefined)[],
    listField: string,
    key: keyof T & string,
    what: string,
  ): Problem[] =>
    duplicates(list, (t) => String(t[key])).map(({ index, first, value }) =>
      problemAt(
        s.origin,
        resource,
        `${listField}[${index}].${key}`,
        'DUPLICATE',
        `${what} ${value} is already used by ${listField}[${first}] (${where(s.origin, `${listField}[${first}].${key}`)})`,
      ),
    );
  return [
    ...unique(s.ports, 'spec.ports', 'name', 'port name'),
    ...unique(s.ports, 'spec.ports', 'port', 'port number'),
    ...unique(s.instances, 'spec.instances', 'name', 'instance name'),
    ...unique(s.upstreams, 'spec.upstreams', 'localPort', 'local port'),
    ...s.upstreams.flatMap((u, i) =>
      u !== undefined && u.service === s.name && u.namespace === s.namespace
        ? [
            problemAt(
              s.origin,
              resource,
              `spec.upstreams[${i}].service`,
              'REFERENCE',
              'a service cannot be its own upstream',
            ),
          ]
        : [],
    ),
  ];
}

/** Every entry whose key an earlier entry already had, with the index of that earlier entry. */
function duplicates<T>(
  list: readonly (T | undefined)[],
  key: (t: T) => string,
): { index: number; first: number; value: string }[] {
  const firstIndex = new Map<string, number>();
  const found: { index: number; first: number; value: string }[] = [];
  list.forEach((entry, index) => {
    if (entry === undefined) return;
    const value = key(entry);
    const first = firstIndex.get(value);
    if (first === undefined) firstIndex.set(value, index);
    else found.push({ index, first, value });
  });
  return found;
}
