// Checks across a set of manifests, run on the whole desired state (not one file): identity,
// references, bindings, Consul names and access policies. A new kind adds its cross-document rules as another row
// of SET_CHECKS.
import type { Problem } from '../errors.ts';
import { checkSocketBindings } from './check-bindings.ts';
import { checkConsulNames } from './check-consul-names.ts';
import { checkExternalReferences, checkExternalServices } from './check-external.ts';
import { checkDocumentIdentity } from './check-identity.ts';
import { checkAccessPolicies } from './check-policies.ts';
import { checkUpstreamReferences } from './check-references.ts';
import { checkServiceEntries } from './check-service.ts';
import { checkTrafficPolicies } from './check-traffic.ts';
import { manifestId, type Manifest, type ManifestKind, type Service } from './types.ts';

type SetCheck = (ms: readonly Manifest[], services: readonly Service[]) => Problem[];

const SET_CHECKS: readonly SetCheck[] = [
  (ms) => checkDocumentIdentity(ms),
  // Already enforced when parsing; repeated so manifests built in code meet the same rules.
  (_, services) => services.flatMap(checkServiceEntries),
  (_, services) => checkUpstreamReferences(services),
  (ms, services) => checkExternalReferences(firstDefinitions(ms, 'ExternalService'), services),
  (ms) => checkExternalServices(firstDefinitions(ms, 'ExternalService')),
  (ms, services) => checkSocketBindings(services, services, firstDefinitions(ms, 'Mesh')[0]),
  (_, services) => checkConsulNames(services),
  (ms, services) => checkAccessPolicies(firstDefinitions(ms, 'AccessPolicy'), services),
  (ms, services) => checkTrafficPolicies(firstDefinitions(ms, 'TrafficPolicy'), services),
];

/** Every cross-document problem of `ms`; an empty list means the set can be published. */
export function checkManifestSet(ms: readonly Manifest[]): Problem[] {
  const services = firstDefinitions(ms, 'Service');
  return SET_CHECKS.flatMap((check) => check(ms, services));
}

type ManifestOf<K extends ManifestKind> = Extract<Manifest, { kind: K }>;

/** A duplicated document is reported once, as DUPLICATE; the other checks see its first definition only. */
export function firstDefinitions<K extends ManifestKind>(ms: readonly Manifest[], kind: K): ManifestOf<K>[] {
  const first = new Map<string, ManifestOf<K>>();
  for (const m of ms) {
    if (m.kind !== kind) continue;
    const id = manifestId(m);
    if (!first.has(id)) first.set(id, m as ManifestOf<K>);
  }
  return [...first.values()];
}
