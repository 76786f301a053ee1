// TrafficPolicy across the set: the destination, its port and every caller exist; the port speaks
// HTTP or gRPC (routing, retries and splits are L7); and two policies never govern the same
// caller → destination port (which one wins would be a guess).
import type { Problem } from '../errors.ts';
import { noSuchService, servicesByKey } from './check-references.ts';
import { problemAt } from './problem-at.ts';
import { manifestId, serviceKey, type Service, type ServiceRef, type TrafficPolicy } from './types.ts';

export function checkTrafficPolicies(
  policies: readonly TrafficPolicy[],
  services: readonly Service[],
): Problem[] {
  const byKey = servicesByKey(services);
  const find = (ref: ServiceRef) => byKey.get(serviceKey({ name: ref.service, namespace: ref.namespace }));
  const claimed = new Map<string, TrafficPolicy>();
  return policies.flatMap((p) => {
    const at = (field: string, code: 'REFERENCE' | 'CONFLICT', message: string): Problem =>
      problemAt(p.origin, manifestId(p), field, code, message);
    const problems: Problem[] = [];
    (p.from ?? []).forEach((ref, i) => {
      if (!find(ref)) problems.push(at(`spec.from[${i}]`, 'REFERENCE', noSuchService(ref, services)));
    });
    p.routes.forEach((route, i) =>
      route.to.forEach((t, j) => {
        if (t.service && !find(t.service))
          problems.push(
            at(`spec.routes[${i}].to[${j}].service`, 'REFERENCE', noSuchService(t.service, services)),
          );
      }),
    );
    const destination = find(p.destination);
    if (!destination)
      return [at('spec.destination', 'REFERENCE', noSuchService(p.destination, services)), ...problems];
    const ports = destination.ports.filter(
      (port) => port.protocol !== 'tcp' && (!p.port || port.name === p.port),
    );
    if (p.port && !destination.ports.some((port) => port.name === p.port)) {
      problems.push(
        at(
          'spec.port',
          'REFERENCE',
          `${manifestId(destination)} has no port ${p.port} (ports: ${destination.ports.map((x) => x.name).join(', ')})`,
        ),
      );
    } else if (ports.length === 0) {
      problems.push(
        at(
          p.port ? 'spec.port' : 'spec.destination',
          'CONFLICT',
          `${manifestId(destination)} has no http or grpc port for a TrafficPolicy to govern`,
        ),
      );
    }
    const callers = p.from?.map((f) => `${f.namespace}/${f.service}`) ?? ['*'];
    for (const port of ports) {
      for (const caller of callers) {
        const key = `${serviceKey(destination)}|${port.name}|${caller}`;
        const other = claimed.get(key);
        if (other && other !== p)
          problems.push(
            at(
              'spec.destination',
              'CONFLICT',
              `${manifestId(other)} already governs ${caller === '*' ? 'every caller' : caller} → ${serviceKey(destination)}:${port.name}`,
            ),
          );
        else claimed.set(key, p);
      }
    }
    return problems;
  });
}

/** The policy that governs `caller` → `destination`:`port`: one naming the caller wins over one for every caller. */
export function trafficPolicyFor(
  policies: readonly TrafficPolicy[] | undefined,
  caller: ServiceRef,
  port: string,
): TrafficPolicy | undefined {
  const applies = (p: TrafficPolicy) => !p.port || p.port === port;
  const named = policies?.find(
    (p) =>
      applies(p) && p.from?.some((f) => f.service === caller.service && f.namespace === caller.namespace),
  );
  return named ?? policies?.find((p) => applies(p) && !p.from);
}
