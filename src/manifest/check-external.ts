// External upstreams: every `{ external: x }` a Service lists names an ExternalService in the set
// (in the Service's namespace unless it says another). And an ExternalService's own rules, enforced
// when parsing, again for manifests built in code: plaintext only with a reason, a name to verify.
import type { Problem } from '../errors.ts';
import { didYouMean } from './did-you-mean.ts';
import { problemAt } from './problem-at.ts';
import { isExternalUpstream, manifestId, serviceKey, type ExternalService, type Service } from './types.ts';

/** The ExternalServices of a set by `name.namespace`, as upstreams name them. */
export function externalKeys(externals: readonly ExternalService[]): ReadonlySet<string> {
  return new Set(externals.map(serviceKey));
}

/** The external upstreams of `subjects` against the ExternalServices of the set. */
export function checkExternalReferences(
  externals: readonly ExternalService[],
  subjects: readonly Service[],
): Problem[] {
  const keys = externalKeys(externals);
  return subjects.flatMap((s) =>
    s.upstreams.flatMap((u, i): Problem[] => {
      if (!isExternalUpstream(u) || keys.has(serviceKey({ name: u.external, namespace: u.namespace })))
        return [];
      const sameNamespace = externals.filter((e) => e.namespace === u.namespace).map((e) => e.name);
      return [
        problemAt(
          s.origin,
          manifestId(s),
          `spec.upstreams[${i}].external`,
          'REFERENCE',
          `no ExternalService ${u.namespace}/${u.external}${didYouMean(u.external, sameNamespace)}`,
        ),
      ];
    }),
  );
}

export function checkExternalServices(externals: readonly ExternalService[]): Problem[] {
  return externals.flatMap((e): Problem[] => {
    const at = (field: string, message: string) => [
      problemAt(e.origin, manifestId(e), field, 'SCHEMA', message),
    ];
    if (e.endpoints.length === 0)
      return at('spec.endpoints', 'an external service needs at least one endpoint');
    if (e.tls.mode === 'NONE' && !e.plaintextReason?.trim())
      return at('spec.tls.mode', 'tls.mode NONE needs spec.allowPlaintext and spec.plaintextReason');
    if (e.tls.mode === 'ORIGINATE' && e.tls.subjectAltNames.length === 0)
      return at('spec.tls', 'ORIGINATE needs a name to verify the partner by: sni or subjectAltNames');
    return [];
  });
}

/** Whether `s` calls one of the ExternalServices `keys` names. */
export function callsExternal(s: Service, keys: ReadonlySet<string>): boolean {
  return s.upstreams.some(
    (u) => isExternalUpstream(u) && keys.has(serviceKey({ name: u.external, namespace: u.namespace })),
  );
}
