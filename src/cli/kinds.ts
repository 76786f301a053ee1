// Kinds and names as an operator types them: `svc`, `Services`, `accesspolicies`, `clinical/his`,
// `his -n clinical`. Anything else is a usage error naming what would have worked.
import type { ManifestKind } from '../manifest/types.ts';
import { UsageError } from './cli-support.ts';

// Plain strings, so a kind another module adds is named here before every build knows it.
const ALIASES: Readonly<Record<string, string>> = {
  mesh: 'Mesh',
  meshes: 'Mesh',
  service: 'Service',
  services: 'Service',
  svc: 'Service',
  accesspolicy: 'AccessPolicy',
  accesspolicies: 'AccessPolicy',
  ap: 'AccessPolicy',
  trafficpolicy: 'TrafficPolicy',
  trafficpolicies: 'TrafficPolicy',
  tp: 'TrafficPolicy',
  externalservice: 'ExternalService',
  externalservices: 'ExternalService',
  ext: 'ExternalService',
};
const KIND_LIST = 'mesh, service (svc), accesspolicy (ap), trafficpolicy (tp), externalservice (ext)';

export function parseKind(text: string | undefined): ManifestKind {
  if (text === undefined) throw new UsageError(`name a kind: ${KIND_LIST}`);
  const kind = ALIASES[text.toLowerCase()];
  if (!kind) throw new UsageError(`unknown kind "${text}"; one of ${KIND_LIST}`);
  return kind as ManifestKind;
}

export interface NameRef {
  readonly name: string;
  /** undefined: any namespace (get), or a cluster-scoped kind. */
  readonly namespace?: string;
}

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** `NS/NAME`, or `NAME` with `-n NS`; a Mesh takes a bare name. */
export function parseName(kind: ManifestKind, text: string, namespaceFlag: string | undefined): NameRef {
  const parts = text.split('/');
  if (parts.length > 2 || !parts.every((p) => LABEL.test(p)))
    throw new UsageError(`"${text}" is not NAME or NAMESPACE/NAME (lower-case DNS labels)`);
  if (kind === 'Mesh') {
    if (parts.length === 2) throw new UsageError('a Mesh is cluster-scoped: name it without a namespace');
    return { name: text };
  }
  if (parts.length === 2) {
    if (namespaceFlag !== undefined && namespaceFlag !== parts[0])
      throw new UsageError(`${text} names namespace ${parts[0]}, but -n says ${namespaceFlag}`);
    return { namespace: parts[0], name: parts[1]! };
  }
  return { namespace: namespaceFlag, name: text };
}

export function refText(kind: ManifestKind, ref: NameRef): string {
  return ref.namespace ? `${kind} ${ref.namespace}/${ref.name}` : `${kind} ${ref.name}`;
}
