// What one change plans, found from what changed between the published view and the next one, at
// the cost of what changed: which sidecars are planned whole, which only get their assignments of
// some services rebuilt, and the sidecars of the services that changed (declared anew, kept, or
// gone). Everything else keeps what the cache holds, which a full plan would reproduce exactly.
import { serviceKey } from '../../manifest/types.ts';
import type { MeshView, SidecarRef } from '../generate/types.ts';
import { sidecarsOfService, sidecarsOfView } from './declared-sidecars.ts';
import { viewChange, type DependencyIndex } from './dependency-index.ts';

export interface PlanScope {
  /** Every sidecar is planned whole (nothing published yet, the Mesh changed, or a refresh). */
  readonly full: boolean;
  /** Sidecars planned whole (every type generated again). */
  readonly whole: ReadonlySet<string>;
  /** Sidecars for which only their assignments of `endpointServices` are rebuilt. */
  readonly endpointsOnly: ReadonlySet<string>;
  readonly endpointServices: ReadonlySet<string>;
  /** Services whose sidecars `declared` lists as they are now (every service when full). */
  readonly services: ReadonlySet<string>;
  /** The sidecars of `services` the view declares, by node id. */
  readonly declared: ReadonlyMap<string, SidecarRef>;
  /** How many sidecars the view declares in all. */
  readonly sidecars: number;
}

export interface PublishedSidecars {
  readonly view: MeshView | undefined;
  readonly index: DependencyIndex;
  /** How each known sidecar talks xDS (what its connect said). */
  readonly known: (nodeId: string) => SidecarRef | undefined;
  /** Node ids each service of the published view declares. */
  readonly declaredBy: ReadonlyMap<string, readonly string[]>;
  readonly declaredCount: number;
}

/** The scope of planning `view` after `published` (every sidecar whole when `full`). */
export function planScope(view: MeshView, published: PublishedSidecars, full = false): PlanScope {
  const change = published.view && !full ? viewChange(published.view, view) : undefined;
  if (!change || change.mesh) {
    const declared = new Map(sidecarsOfView(view, published.known).map((r) => [r.nodeId, r]));
    return {
      full: true,
      whole: new Set(declared.keys()),
      endpointsOnly: new Set(),
      endpointServices: new Set(),
      services: new Set(view.services.keys()),
      declared,
      sidecars: declared.size,
    };
  }
  const { whole, endpointsOnly, endpointServices } = published.index.affected(change);
  const declared = new Map<string, SidecarRef>();
  let sidecars = published.declaredCount;
  for (const key of change.services) {
    sidecars -= published.declaredBy.get(key)?.length ?? 0;
    const service = view.services.get(key);
    for (const ref of service ? sidecarsOfService(service, published.known) : []) {
      declared.set(ref.nodeId, ref);
      sidecars++;
    }
  }
  // Sidecars of a changed service are planned whole if it still declares them, and not at all if not.
  for (const node of [...whole, ...endpointsOnly]) {
    const ref = published.known(node);
    if (ref && change.services.has(serviceKey({ name: ref.service, namespace: ref.namespace }))) {
      whole.delete(node);
      endpointsOnly.delete(node);
    }
  }
  for (const node of declared.keys()) whole.add(node);
  return {
    full: false,
    whole,
    endpointsOnly,
    endpointServices,
    services: change.services,
    declared,
    sidecars,
  };
}
