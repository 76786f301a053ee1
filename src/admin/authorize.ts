// What each role may do. admin: everything. viewer: reads. editor: reads, plus changes to
// manifests in its namespaces and join tokens for them. A Mesh is cluster-scoped (admin only); an
// AccessPolicy decides who may call its destination, so it needs the destination's namespace too.
import type { Problem } from '../errors.ts';
import { manifestId, type Manifest, type ManifestKind } from '../manifest/types.ts';
import type { Principal } from './tokens.ts';

/** A manifest as far as authorization cares: what it is and which namespaces it changes. */
export interface ManifestScope {
  readonly id: string;
  /** undefined: cluster-scoped (admin only). */
  readonly namespaces: readonly string[] | undefined;
}

export function scopeOf(
  m: Manifest | { kind: ManifestKind; name: string; namespace?: string },
): ManifestScope {
  const id = manifestId(m);
  if (m.kind === 'Mesh') return { id, namespaces: undefined };
  if (m.kind === 'TrafficPolicy' && 'routes' in m) {
    // It shapes its callers' traffic too: the namespaces of `from` and of services it routes to.
    const others = [
      ...(m.from ?? []),
      ...m.routes.flatMap((r) => r.to.flatMap((t) => (t.service ? [t.service] : []))),
    ];
    return {
      id,
      namespaces: [...new Set([m.namespace, m.destination.namespace, ...others.map((o) => o.namespace)])],
    };
  }
  if ('destination' in m) return { id, namespaces: [...new Set([m.namespace, m.destination.namespace])] };
  return { id, namespaces: m.namespace === undefined ? undefined : [m.namespace] };
}

const denied = (p: Principal, message: string, resource?: string): Problem => ({
  code: 'PERMISSION_DENIED',
  ...(resource ? { resource } : {}),
  message: `token "${p.name}" (${p.role}) ${message}`,
});

export function requireAdmin(p: Principal, what: string): Problem[] {
  return p.role === 'admin' ? [] : [denied(p, `may not ${what}; admin only`)];
}

export function mayEditNamespace(p: Principal, namespace: string): boolean {
  return p.role === 'admin' || (p.role === 'editor' && p.namespaces.includes(namespace));
}

/** Every document must be allowed; one problem per forbidden document, so the caller sees them all. */
export function authorizeManifests(p: Principal, scopes: readonly ManifestScope[]): Problem[] {
  if (p.role === 'admin') return [];
  if (p.role === 'viewer') return [denied(p, 'may only read')];
  const problems: Problem[] = [];
  for (const s of scopes) {
    if (s.namespaces === undefined)
      problems.push(denied(p, 'may not change cluster-scoped manifests; admin only', s.id));
    else {
      const outside = s.namespaces.filter((ns) => !p.namespaces.includes(ns));
      if (outside.length) problems.push(denied(p, `may not change namespace ${outside.join(', ')}`, s.id));
    }
  }
  return problems;
}

export function authorizeJoinToken(p: Principal, namespace: string): Problem[] {
  return mayEditNamespace(p, namespace)
    ? []
    : [denied(p, `may not create join tokens in namespace ${namespace}`)];
}
