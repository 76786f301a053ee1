// AccessPolicy across the set: the destination and every caller name a Service that exists, a
// rule's `ports` name ports the destination has, and a rule with `http` conditions has an HTTP or
// gRPC port to apply to. (On a destination with both kinds of port, `http` rules guard its HTTP
// ports and only rules without `http` open its TCP ports.)
import type { Problem } from '../errors.ts';
import { noSuchService, servicesByKey } from './check-references.ts';
import { fieldAt } from './field-positions.ts';
import { problemAt } from './problem-at.ts';
import { didYouMean } from './did-you-mean.ts';
import {
  manifestId,
  serviceKey,
  type AccessPolicy,
  type AccessRule,
  type Service,
  type ServiceRef,
} from './types.ts';

export function checkAccessPolicies(
  policies: readonly AccessPolicy[],
  services: readonly Service[],
): Problem[] {
  const byKey = servicesByKey(services);
  const find = (ref: ServiceRef): Service | undefined =>
    byKey.get(serviceKey({ name: ref.service, namespace: ref.namespace }));

  return policies.flatMap((p) => {
    const at = (field: string, code: 'REFERENCE' | 'CONFLICT', message: string): Problem =>
      problemAt(p.origin, manifestId(p), field, code, message);
    const destination = find(p.destination);
    const callers = p.rules.flatMap((rule, i) =>
      rule.from.flatMap((ref, j) =>
        find(ref)
          ? []
          : [at(`spec.rules[${i}].from[${j}].service`, 'REFERENCE', noSuchService(ref, services))],
      ),
    );
    if (!destination)
      return [at(destinationField(p), 'REFERENCE', noSuchService(p.destination, services)), ...callers];
    return [...callers, ...p.rules.flatMap((rule, i) => rulePortProblems(rule, i, destination, at))];
  });
}

type At = (field: string, code: 'REFERENCE' | 'CONFLICT', message: string) => Problem;

/**
 * A rule's `ports` name ports of the destination, and its `http` conditions need an HTTP or gRPC
 * port to apply to: on a TCP port they could never match, so the rule would silently open nothing.
 */
function rulePortProblems(rule: AccessRule, i: number, destination: Service, at: At): Problem[] {
  const names = destination.ports.map((port) => port.name);
  const unknown = (rule.ports ?? []).flatMap((name, j) =>
    names.includes(name)
      ? []
      : [
          at(
            `spec.rules[${i}].ports[${j}]`,
            'REFERENCE',
            `${manifestId(destination)} has no port "${name}" (it has ${names.join(', ')})${didYouMean(name, names)}`,
          ),
        ],
  );
  if (!rule.http) return unknown;
  const named = destination.ports.filter((port) => !rule.ports || rule.ports.includes(port.name));
  const tcp = named.filter((port) => port.protocol === 'tcp');
  if (rule.ports) {
    const conflicts = rule.ports.flatMap((name, j) =>
      tcp.some((port) => port.name === name)
        ? [
            at(
              `spec.rules[${i}].ports[${j}]`,
              'CONFLICT',
              `port "${name}" of ${manifestId(destination)} is tcp: a rule with http conditions never opens it; give it a rule without http`,
            ),
          ]
        : [],
    );
    return [...unknown, ...conflicts];
  }
  if (tcp.length < named.length) return unknown;
  return [
    ...unknown,
    at(
      `spec.rules[${i}].http`,
      'CONFLICT',
      `${manifestId(destination)} has only tcp ports; http rules need an http or grpc port`,
    ),
  ];
}

/** The destination is written either as a bare name or as `{ service, namespace }`. */
function destinationField(p: AccessPolicy): string {
  return fieldAt(p.origin.fieldPos, 'spec.destination.service')
    ? 'spec.destination.service'
    : 'spec.destination';
}
