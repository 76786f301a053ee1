// The desired state as the rules see it: the mesh in force, the services and policies (first
// definition of each; duplicates are a validation problem), and the look-ups the rules share.
import { DEFAULT_MESH } from '../manifest/schema-mesh.ts';
import {
  manifestId,
  serviceKey,
  type AccessPolicy,
  type Manifest,
  type Mesh,
  type Service,
  type ServiceRef,
} from '../manifest/types.ts';

export interface AnalysisContext {
  /** The Mesh manifest, or the built-in mesh (origin `<built-in>`) when there is none. */
  readonly mesh: Mesh;
  readonly services: readonly Service[];
  readonly policies: readonly AccessPolicy[];
  findService(ref: ServiceRef): Service | undefined;
  /** The AccessPolicies whose destination is `s`. */
  policiesFor(s: Service): readonly AccessPolicy[];
}

/** The label that marks a service handling protected health information. */
export const PHI_LABEL = { key: 'clinical.data', value: 'phi' } as const;
export const PHI_LABEL_FIELD = `metadata.labels[${JSON.stringify(PHI_LABEL.key)}]`;

export function handlesPhi(s: Service): boolean {
  return s.labels?.[PHI_LABEL.key] === PHI_LABEL.value;
}

export function isBuiltIn(mesh: Mesh): boolean {
  return mesh === DEFAULT_MESH || mesh.origin.file === DEFAULT_MESH.origin.file;
}

const refKey = (ref: ServiceRef): string => serviceKey({ name: ref.service, namespace: ref.namespace });

export function analysisContext(manifests: readonly Manifest[]): AnalysisContext {
  const first = new Map<string, Manifest>();
  for (const m of manifests) if (!first.has(manifestId(m))) first.set(manifestId(m), m);
  const unique = [...first.values()];
  const services = unique.filter((m): m is Service => m.kind === 'Service');
  const policies = unique.filter((m): m is AccessPolicy => m.kind === 'AccessPolicy');
  const byKey = new Map(services.map((s) => [serviceKey(s), s]));
  const byDestination = new Map<string, AccessPolicy[]>();
  for (const p of policies)
    byDestination.set(refKey(p.destination), [...(byDestination.get(refKey(p.destination)) ?? []), p]);
  return {
    mesh: unique.find((m): m is Mesh => m.kind === 'Mesh') ?? DEFAULT_MESH,
    services,
    policies,
    findService: (ref) => byKey.get(refKey(ref)),
    policiesFor: (s) => byDestination.get(serviceKey(s)) ?? [],
  };
}
