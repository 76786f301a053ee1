// The desired state: the validated manifests in force, with a revision that only ever grows. Made
// whole from a manifest set (at start, or from another replica), or from the previous state by
// redoing only what a change touched: a one-Service apply costs one map entry, not the mesh.
import { DEFAULT_MESH } from '../manifest/index.ts';
import {
  serviceKey,
  type AccessPolicy,
  type ExternalService,
  type Manifest,
  type Mesh,
  type Service,
  type TrafficPolicy,
} from '../manifest/types.ts';

export interface DesiredState {
  readonly revision: number;
  readonly mesh: Mesh;
  /** Keyed by `serviceKey` (`his.clinical`). */
  readonly services: ReadonlyMap<string, Service>;
  /** AccessPolicies by the serviceKey of their destination. */
  readonly policies: ReadonlyMap<string, readonly AccessPolicy[]>;
  /** TrafficPolicies by the serviceKey of their destination. */
  readonly traffic: ReadonlyMap<string, readonly TrafficPolicy[]>;
  /** ExternalServices by `name.namespace` (as upstreams name them). */
  readonly externals: ReadonlyMap<string, ExternalService>;
}

type Policy = AccessPolicy | TrafficPolicy;

const destinationOf = (p: Policy) =>
  serviceKey({ name: p.destination.service, namespace: p.destination.namespace });

/** Policies of one kind by destination, in set order. */
function byDestination<P extends Policy>(
  manifests: Iterable<Manifest>,
  kind: P['kind'],
  only?: ReadonlySet<string>,
): Map<string, P[]> {
  const out = new Map<string, P[]>();
  for (const m of manifests) {
    if (m.kind !== kind) continue;
    const key = destinationOf(m as P);
    if (only && !only.has(key)) continue;
    const list = out.get(key);
    if (list) list.push(m as P);
    else out.set(key, [m as P]);
  }
  return out;
}

export function buildState(revision: number, manifests: Iterable<Manifest>): DesiredState {
  const list = [...manifests];
  const mesh = list.find((m): m is Mesh => m.kind === 'Mesh') ?? DEFAULT_MESH;
  const services = new Map<string, Service>();
  const externals = new Map<string, ExternalService>();
  for (const m of list) {
    if (m.kind === 'Service') services.set(serviceKey(m), m);
    if (m.kind === 'ExternalService') externals.set(serviceKey(m), m);
  }
  return {
    revision,
    mesh,
    services,
    policies: byDestination<AccessPolicy>(list, 'AccessPolicy'),
    traffic: byDestination<TrafficPolicy>(list, 'TrafficPolicy'),
    externals,
  };
}

/**
 * The state of `next`, made from `prev` (the state of `before`) by redoing what the documents in
 * `touched` change: their services' entries, and the policy lists of the destinations they name
 * (read again from `next`, in set order). Equal to `buildState(revision, next.values())`.
 */
export function nextState(
  prev: DesiredState,
  revision: number,
  before: ReadonlyMap<string, Manifest>,
  next: ReadonlyMap<string, Manifest>,
  touched: readonly string[],
): DesiredState {
  const docs = touched.flatMap((id) => [before.get(id), next.get(id)].filter((m) => m !== undefined));
  const mesh = docs.some((m) => m.kind === 'Mesh')
    ? ([...next.values()].find((m): m is Mesh => m.kind === 'Mesh') ?? DEFAULT_MESH)
    : prev.mesh;
  return {
    revision,
    mesh,
    services: rekeyed(prev.services, 'Service', docs, touched, before, next),
    policies: redone<AccessPolicy>(prev.policies, docs, next, 'AccessPolicy'),
    traffic: redone<TrafficPolicy>(prev.traffic, docs, next, 'TrafficPolicy'),
    externals: rekeyed(prev.externals, 'ExternalService', docs, touched, before, next),
  };
}

/** `prev` (documents of `kind` by `name.namespace`) with the touched ones of that kind redone. */
function rekeyed<M extends Service | ExternalService>(
  prev: ReadonlyMap<string, M>,
  kind: M['kind'],
  docs: readonly Manifest[],
  touched: readonly string[],
  before: ReadonlyMap<string, Manifest>,
  next: ReadonlyMap<string, Manifest>,
): ReadonlyMap<string, M> {
  if (!docs.some((m) => m.kind === kind)) return prev;
  const copy = new Map(prev);
  for (const id of touched) {
    const [was, is] = [before.get(id), next.get(id)];
    if (was?.kind === kind && is?.kind !== kind) copy.delete(serviceKey(was));
    if (is?.kind === kind) copy.set(serviceKey(is), is as M);
  }
  return copy;
}

/** `prev` with the lists of the destinations `docs` of `kind` name read again from `next`. */
function redone<P extends Policy>(
  prev: ReadonlyMap<string, readonly P[]>,
  docs: readonly Manifest[],
  next: ReadonlyMap<string, Manifest>,
  kind: P['kind'],
): ReadonlyMap<string, readonly P[]> {
  const destinations = new Set(docs.filter((m) => m.kind === kind).map((m) => destinationOf(m as P)));
  if (destinations.size === 0) return prev;
  const fresh = byDestination<P>(next.values(), kind, destinations);
  const out = new Map<string, readonly P[]>();
  // Lists are looked up by destination; the order of destinations means nothing.
  for (const [key, list] of prev) {
    if (!destinations.has(key)) out.set(key, list);
    else if (fresh.has(key)) out.set(key, fresh.get(key)!);
  }
  for (const [key, list] of fresh) if (!out.has(key)) out.set(key, list);
  return out;
}
