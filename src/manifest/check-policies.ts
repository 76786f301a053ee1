// AccessPolicy across the set: the destination and every caller name a Service that exists, and a
// rule with `http` conditions has an HTTP or gRPC port to apply to. (On a destination with both kinds
// of port, `http` rules guard its HTTP ports and only rules without `http` open its TCP ports.)
import type { Problem } from '../errors.ts';
import { noSuchService } from './check-references.ts';
import { problemAt } from './problem-at.ts';
import { manifestId, serviceKey, type AccessPolicy, type Service, type ServiceRef } from './types.ts';

export function checkAccessPolicies(
  policies: readonly AccessPolicy[],
  services: readonly Service[],
): Problem[] {
  const byKey = new Map(services.map((s) => [serviceKey(s), s]));
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
    if (destination.ports.some((port) => port.protocol !== 'tcp')) return callers;
    const httpOnTcp = p.rules.flatMap((rule, i) =>
      rule.http
        ? [
            at(
              `spec.rules[${i}].http`,
              'CONFLICT',
              `${manifestId(destination)} has only tcp ports; http rules need an http or grpc port`,
            ),
          ]
        : [],
    );
    return [...callers, ...httpOnTcp];
  });
}

/** The destination is written either as a bare name or as `{ service, namespace }`. */
function destinationField(p: AccessPolicy): string {
  return p.origin.fieldPos?.['spec.destination.service'] ? 'spec.destination.service' : 'spec.destination';
}
