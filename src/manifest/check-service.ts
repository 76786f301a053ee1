// Rules inside one Service: unique port names and numbers, unique instance names, unique upstream
// local ports, no upstream to itself except on a per-instance port (brokers calling their peers),
// and on such a port every instance has its own ordinal below `count`. Run at parse time on the entries that could be read (so these
// problems come out together with type errors), and again by checkManifestSet for manifests that
// were built in code rather than parsed.
import type { Problem } from '../errors.ts';
import { instanceOrdinal, ORDINAL_META } from './instance-ordinal.ts';
import { problemAt, where } from './problem-at.ts';
import {
  isExternalUpstream,
  manifestId,
  type Instance,
  type Origin,
  type ServicePort,
  type Upstream,
} from './types.ts';

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
    ...instanceOrdinalProblems(s, resource),
    ...s.upstreams.flatMap((u, i) =>
      u !== undefined &&
      !isExternalUpstream(u) &&
      u.service === s.name &&
      u.namespace === s.namespace &&
      !s.ports.some((p) => p?.name === u.port && p.instancePorts !== undefined)
        ? [
            problemAt(
              s.origin,
              resource,
              `spec.upstreams[${i}].service`,
              'REFERENCE',
              'a service can be its own upstream only on a port with instancePorts (each instance reaching its peers)',
            ),
          ]
        : [],
    ),
  ];
}

/**
 * When a port has instancePorts: each instance has an ordinal, no two share one, and each is below
 * the count of every such port.
 */
function instanceOrdinalProblems(s: ServiceDraft, resource: string): Problem[] {
  const exposing = s.ports.filter((p): p is ServicePort => p?.instancePorts !== undefined);
  if (exposing.length === 0) return [];
  const problems: Problem[] = [];
  const owner = new Map<number, number>();
  s.instances.forEach((inst, i) => {
    if (!inst) return;
    const field = `spec.instances[${i}].name`;
    const problem = (code: 'SCHEMA' | 'DUPLICATE', message: string) =>
      problems.push(problemAt(s.origin, resource, field, code, message));
    const ordinal = instanceOrdinal(inst.name, inst.meta);
    if (ordinal === undefined)
      return problem(
        'SCHEMA',
        `port ${exposing[0]!.name} has instancePorts, so instance ${inst.name} needs an ordinal: a "-<k>" name suffix (${inst.name}-0) or meta ${ORDINAL_META}`,
      );
    for (const port of exposing) {
      const count = port.instancePorts!.count;
      if (ordinal >= count)
        problem(
          'SCHEMA',
          `instance ${inst.name} has ordinal ${ordinal}, but port ${port.name} exposes ordinals 0..${count - 1} (instancePorts.count ${count})`,
        );
    }
    const first = owner.get(ordinal);
    if (first === undefined) owner.set(ordinal, i);
    else
      problem(
        'DUPLICATE',
        `ordinal ${ordinal} of instance ${inst.name} is already that of spec.instances[${first}] (${where(s.origin, `spec.instances[${first}].name`)})`,
      );
  });
  return problems;
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
