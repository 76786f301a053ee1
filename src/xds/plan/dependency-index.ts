// What each sidecar's resources derive from, and the reverse: which sidecars a change touches. The
// one place that knows it (the reconciler asks it; nothing else keeps a consumer list). A sidecar of
// service S is generated from:
// - the Mesh (every sidecar: a Mesh change re-plans everything);
// - S itself (ports, its own instance, upstreams), the AccessPolicies and TrafficPolicies whose
//   destination is S (inbound RBAC and rate limits);
// - for each upstream T of S: T's Service (ports, identity), T's TrafficPolicies (clusters, routes,
//   subsets) and T's endpoints (its ClusterLoadAssignments).
// Callers read only T's face (its name and ports) from T's Service; its instances reach them as
// endpoints. So a change to T's face or TrafficPolicies touches T's own sidecars and T's callers
// whole; any other change to T (instances, upstreams, labels) touches T's own sidecars whole and its
// callers only through T's endpoints; an AccessPolicy change touches the destination's own sidecars;
// new endpoints touch the callers' ClusterLoadAssignments of T only (an EDS-only change). An
// ExternalService touches only the sidecars of the services that list it (its callers), whole.
import type { MeshView, SidecarRef } from '../generate/types.ts';
import { isExternalUpstream, serviceKey, serviceUpstreams, type Service } from '../../manifest/types.ts';

/** What differs between two views of the mesh, by serviceKey. */
export interface ViewChange {
  /** The Mesh (or the trust domain) changed: every sidecar derives from it. */
  readonly mesh: boolean;
  /** Services added, removed or changed (their discovered instances included). */
  readonly services: ReadonlySet<string>;
  /** Services added, removed, or whose face (what callers read: the ports) changed. */
  readonly faces: ReadonlySet<string>;
  /** Destinations whose AccessPolicies changed. */
  readonly access: ReadonlySet<string>;
  /** Destinations whose TrafficPolicies changed. */
  readonly traffic: ReadonlySet<string>;
  /** Services whose endpoint set changed. */
  readonly endpoints: ReadonlySet<string>;
  /** ExternalServices added, removed or changed (by `name.namespace`). */
  readonly externals: ReadonlySet<string>;
}

/** Documents compared without where they came from: the same content read from another file is no change. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (k, v: unknown) => (k === 'origin' ? undefined : v));
}

function same(a: unknown, b: unknown): boolean {
  return a === b || (a !== undefined && b !== undefined && canonical(a) === canonical(b));
}

function sameList(a: readonly unknown[] | undefined, b: readonly unknown[] | undefined): boolean {
  if (a === b) return true;
  if ((a?.length ?? 0) !== (b?.length ?? 0)) return false;
  return (a ?? []).every((x, i) => same(x, b![i]));
}

function changedKeys<V>(
  a: ReadonlyMap<string, V> | undefined,
  b: ReadonlyMap<string, V> | undefined,
  equal: (x: V | undefined, y: V | undefined) => boolean,
): Set<string> {
  const out = new Set<string>();
  if (a === b) return out;
  for (const [key, x] of a ?? []) if (!equal(x, b?.get(key))) out.add(key);
  for (const [key, y] of b ?? []) if (!a?.has(key) && !equal(undefined, y)) out.add(key);
  return out;
}

/**
 * What differs from `prev` to `next`. Unchanged parts are usually the very same objects (the control
 * plane keeps them across views), so most comparisons are identity checks; content is compared only
 * when identities differ (a re-apply of the same files parses new objects).
 */
export function viewChange(prev: MeshView, next: MeshView): ViewChange {
  const optional = <V>(x: V | undefined, y: V | undefined) =>
    x === y || (x !== undefined && y !== undefined && same(x, y));
  return {
    mesh: !same(prev.mesh, next.mesh),
    services: changedKeys(prev.services, next.services, optional),
    faces: changedKeys(prev.services, next.services, sameFace),
    access: changedKeys(prev.policies, next.policies, sameList),
    traffic: changedKeys(prev.traffic, next.traffic, sameList),
    endpoints: changedKeys(prev.endpoints, next.endpoints, optional),
    externals: changedKeys(prev.externals, next.externals, optional),
  };
}

/** What a caller's resources read of a service it calls (the key names it). */
function sameFace(a: Service | undefined, b: Service | undefined): boolean {
  if (a === b) return true;
  return a !== undefined && b !== undefined && sameList(a.ports, b.ports);
}

/** The sidecars a change touches, and how much of each must be planned again. */
export interface Affected {
  /** Sidecars planned whole (every type generated again). */
  readonly whole: Set<string>;
  /**
   * Sidecars (none of them in `whole`) for which only the ClusterLoadAssignments of services in
   * `endpointServices` they call change.
   */
  readonly endpointsOnly: Set<string>;
  readonly endpointServices: ReadonlySet<string>;
}

interface Inputs {
  readonly own: string;
  readonly upstreams: readonly string[];
  readonly externals: readonly string[];
}

export class DependencyIndex {
  /** serviceKey → its own sidecars. */
  private readonly own = new Map<string, Set<string>>();
  /** serviceKey → sidecars whose service calls it (they consume its endpoints). */
  private readonly callers = new Map<string, Set<string>>();
  /** `name.namespace` of an ExternalService → sidecars whose service lists it. */
  private readonly externalCallers = new Map<string, Set<string>>();
  private readonly inputs = new Map<string, Inputs>();

  /** Records what `ref`'s resources derive from in `view` (replacing what was recorded). */
  set(view: MeshView, ref: SidecarRef): void {
    this.delete(ref.nodeId);
    const own = serviceKey({ name: ref.service, namespace: ref.namespace });
    const service: Service | undefined = view.services.get(own);
    const upstreams = [
      ...new Set(
        (service ? serviceUpstreams(service) : []).map((u) =>
          serviceKey({ name: u.service, namespace: u.namespace }),
        ),
      ),
    ];
    const externals = [
      ...new Set(
        (service?.upstreams ?? []).flatMap((u) =>
          isExternalUpstream(u) ? [serviceKey({ name: u.external, namespace: u.namespace })] : [],
        ),
      ),
    ];
    this.inputs.set(ref.nodeId, { own, upstreams, externals });
    add(this.own, own, ref.nodeId);
    for (const key of upstreams) add(this.callers, key, ref.nodeId);
    for (const key of externals) add(this.externalCallers, key, ref.nodeId);
  }

  delete(nodeId: string): void {
    const inputs = this.inputs.get(nodeId);
    if (!inputs) return;
    this.inputs.delete(nodeId);
    remove(this.own, inputs.own, nodeId);
    for (const key of inputs.upstreams) remove(this.callers, key, nodeId);
    for (const key of inputs.externals) remove(this.externalCallers, key, nodeId);
  }

  /** Sidecars that call `service` (who gets an EDS push when its endpoints move). */
  callersOf(service: string): ReadonlySet<string> {
    return this.callers.get(service) ?? EMPTY;
  }

  /** Sidecars whose resources `change` may alter (all of them, whole, when the Mesh changed). */
  affected(change: ViewChange): Affected {
    const endpointServices = change.endpoints;
    if (change.mesh)
      return { whole: new Set(this.inputs.keys()), endpointsOnly: new Set(), endpointServices };
    const whole = new Set<string>();
    const addAll = (nodes: ReadonlySet<string> | undefined) => nodes?.forEach((n) => whole.add(n));
    for (const key of change.services) addAll(this.own.get(key));
    for (const key of change.faces) addAll(this.callers.get(key));
    for (const key of change.traffic) {
      addAll(this.own.get(key));
      addAll(this.callers.get(key));
    }
    for (const key of change.access) addAll(this.own.get(key));
    for (const key of change.externals) addAll(this.externalCallers.get(key));
    const endpointsOnly = new Set<string>();
    for (const key of endpointServices)
      for (const node of this.callers.get(key) ?? EMPTY) if (!whole.has(node)) endpointsOnly.add(node);
    return { whole, endpointsOnly, endpointServices };
  }
}

const EMPTY: ReadonlySet<string> = new Set();

function add(index: Map<string, Set<string>>, key: string, node: string): void {
  const set = index.get(key);
  if (set) set.add(node);
  else index.set(key, new Set([node]));
}

function remove(index: Map<string, Set<string>>, key: string, node: string): void {
  const set = index.get(key);
  set?.delete(node);
  if (set?.size === 0) index.delete(key);
}
