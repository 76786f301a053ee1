// Turns desired state plus endpoints into published snapshots, as Kuma's reconcile loop does:
// generate → prepare (validate against protoc-gen-validate, encode once, content-hash) → check
// consistency → publish. A plan is validated before anything is published, so an apply that would
// produce a bad resource fails whole. A change plans only the sidecars the dependency index says it
// touches (all of them when the Mesh changed); the others keep their snapshots, which a full plan
// would reproduce exactly. Endpoint changes take a narrower path still (a Consul answer, or an
// apply that changed only a Service's instances): only the affected ClusterLoadAssignments are
// rebuilt, once per distinct assignment, and only sidecars that consume them get an EDS push.
// Planning and publishing a whole mesh run in slices of at most SLICE_MS, yielding to the event loop
// in between, so a large apply never stalls health checks or the xDS streams of other sidecars.
import { fail, ok, type Problem, type Result } from '../../errors.ts';
import type { EndpointSet } from '../../discovery/endpoints.ts';
import type { SnapshotCache } from '../cache/snapshot.ts';
import { checkConsistency } from '../cache/consistency.ts';
import { generateSidecar, generateTrustBundle } from '../generate/index.ts';
import type { MeshView, Resource, SidecarRef } from '../generate/types.ts';
import { ResourcePool, type PreparedResource } from '../resources/prepared.ts';
import { ENDPOINT, PUSH_ORDER, SECRET, type TypeUrl } from '../resources/type-urls.ts';
import { assignmentsFor, withReplaced, type SharedAssignments } from './assignments.ts';
import { serviceKey } from '../../manifest/types.ts';
import { DependencyIndex } from './dependency-index.ts';
import { planScope, type PlanScope } from './plan-scope.ts';
import { sameSidecar } from './sidecar-differences.ts';
import { UpstreamMemo } from './upstream-memo.ts';

/** The longest the planner runs before it lets the event loop serve others. */
const SLICE_MS = 20;

const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export type PreparedSnapshot = Record<TypeUrl, PreparedResource[]>;
/**
 * What publishing changes for one sidecar: its whole snapshot, or (an EDS-only change) some of its
 * ClusterLoadAssignments, put in place of those of the same name.
 */
export type NodePlan = { readonly ref: SidecarRef } & (
  { readonly whole: PreparedSnapshot } | { readonly assignments: readonly PreparedResource[] }
);
export type Plan = Map<string, NodePlan>;

/**
 * The roots connected sidecars verify peers with; absent, the mesh runs without TLS (plain tests
 * only). Workload keys are not here: each sidecar's node agent holds its own.
 */
export interface TrustBundleSource {
  trustBundlePem(): string;
}

export class Reconciler {
  readonly pool = new ResourcePool();
  private view: MeshView | undefined;
  private sidecars = new Map<string, SidecarRef>();
  /** Sidecars the last published state declares (the rest were added by connecting). */
  private declared = new Set<string>();
  /** The same, by the serviceKey of the service that declares them. */
  private declaredBy = new Map<string, string[]>();
  /** Sidecars that have connected: only they are issued certificates. */
  private readonly connected = new Set<string>();
  private secrets: TrustBundleSource | undefined;
  private poolSizeAfterPrune = 0;
  private bundle: { pem: string; resources: PreparedResource[] } | undefined;
  /** What each planned sidecar derives from, and who calls whom (who gets an EDS push). */
  private readonly index = new DependencyIndex();

  /** What upstreams give every caller alike, shared between the sidecars planned (off: plan each alone). */
  private readonly upstreams: UpstreamMemo | undefined;

  constructor(
    readonly cache: SnapshotCache,
    options: { shareUpstreams?: boolean } = {},
  ) {
    this.upstreams = options.shareUpstreams === false ? undefined : new UpstreamMemo();
  }

  useSecrets(source: TrustBundleSource): void {
    this.secrets = source;
  }

  currentView(): MeshView | undefined {
    return this.view;
  }

  sidecar(nodeId: string): SidecarRef | undefined {
    return this.sidecars.get(nodeId);
  }

  /**
   * What planning `view` takes (see plan-scope.ts): every sidecar whole when `full`, else only what
   * differs from the published view.
   */
  scope(view: MeshView, full = false): PlanScope {
    return planScope(
      view,
      {
        view: this.view,
        index: this.index,
        known: (id) => this.sidecars.get(id),
        declaredBy: this.declaredBy,
        declaredCount: this.declared.size,
      },
      full,
    );
  }

  /** Generates and prepares what `scope` says changes, yielding every SLICE_MS; publishes nothing. */
  async plan(view: MeshView, scope: PlanScope): Promise<Result<Plan>> {
    const plan: Plan = new Map();
    const problems: Problem[] = [];
    // A service whose endpoints are gone is an empty set to its callers (an empty assignment).
    const sets = [...scope.endpointServices].map(
      (service): EndpointSet => view.endpoints.get(service) ?? { service, source: 'static', endpoints: [] },
    );
    const shared: SharedAssignments = new Map();
    for (const node of scope.endpointsOnly) {
      const ref = this.sidecars.get(node);
      const assignments = ref && assignmentsFor(view, ref, sets, this.pool, shared);
      if (!ref || !assignments) continue;
      if (assignments.ok) plan.set(node, { ref, assignments: assignments.value });
      else problems.push(...assignments.errors);
    }
    let sliceStart = performance.now();
    for (const node of scope.whole) {
      const ref = scope.declared.get(node) ?? this.sidecars.get(node);
      if (!ref) continue;
      const result = this.planSidecar(view, ref);
      if (result.ok) plan.set(node, { ref, whole: result.value });
      else problems.push(...result.errors);
      if (performance.now() - sliceStart > SLICE_MS) {
        await yieldToEventLoop();
        sliceStart = performance.now();
      }
    }
    return problems.length ? fail(dedupe(problems)) : ok(plan);
  }

  /**
   * Makes `plan` what sidecars see, yielding every SLICE_MS: pushes to connected sidecars happen
   * here. Sidecars of `scope.services` the view no longer declares lose their snapshot; sidecars
   * not in `plan` keep theirs. `newer` are endpoint sets that arrived after the plan
   * was made (and were already pushed): the plan's assignments are brought up to them, so a plan
   * never publishes older endpoints over newer ones. Between slices `arriving()` hands over endpoint
   * sets that came meanwhile: they are pushed at once and the rest of the plan is brought up to
   * them too, so a long publish does not hold endpoint changes back. Returns how many sidecars'
   * snapshots changed.
   */
  async publish(
    view: MeshView,
    scope: PlanScope,
    plan: Plan,
    newer: readonly EndpointSet[] = [],
    arriving: () => readonly EndpointSet[] = () => [],
  ): Promise<number> {
    const rebase = new Map(newer.map((set) => [set.service, set]));
    if (rebase.size) {
      const endpoints = new Map(view.endpoints);
      for (const set of newer) endpoints.set(set.service, set);
      view = { ...view, endpoints };
    }
    this.view = view;
    this.declare(scope);
    // A sidecar that connected (or reconnected differently) while this change was being planned keeps
    // what its connect said, and is planned again instead of being handed a snapshot made without it.
    const replan = new Set<string>();
    for (const [id, nodePlan] of plan) {
      const current = this.sidecars.get(id);
      const connectedSincePlan =
        'whole' in nodePlan &&
        this.connected.has(id) &&
        this.secrets !== undefined &&
        !nodePlan.ref.proxyless &&
        !nodePlan.whole[SECRET].length;
      if ((current && !sameSidecar(current, nodePlan.ref)) || connectedSincePlan) replan.add(id);
    }
    // An EDS-only change leaves what a sidecar derives from as it was.
    for (const [id, nodePlan] of plan)
      if ('whole' in nodePlan || replan.has(id)) this.index.set(view, this.sidecars.get(id)!);
    let byCluster: SharedAssignments = new Map();
    let pushed = 0;
    let sliceStart = performance.now();
    for (const [node, nodePlan] of plan) {
      const snapshot = this.planned(view, node, nodePlan, replan.has(node));
      const rebased =
        snapshot?.[ENDPOINT] && rebase.size
          ? this.withEndpoints(view, node, snapshot[ENDPOINT], rebase.values(), byCluster)
          : undefined;
      if (snapshot && this.cache.set(node, rebased ? { ...snapshot, [ENDPOINT]: rebased } : snapshot).length)
        pushed++;
      if (performance.now() - sliceStart <= SLICE_MS) continue;
      await yieldToEventLoop();
      const more = arriving();
      for (const set of more) {
        rebase.set(set.service, set);
        this.updateEndpoints(set);
      }
      if (more.length) byCluster = new Map();
      sliceStart = performance.now();
    }
    if (scope.full) {
      this.pool.retain(this.cache.liveResources());
      this.poolSizeAfterPrune = this.pool.size;
    } else this.prunePoolNowAndThen();
    return pushed;
  }

  /**
   * Takes the sidecars `scope` declares (one already known keeps what its connect said) and forgets
   * those of `scope.services` no longer declared.
   */
  private declare(scope: PlanScope): void {
    const gone = new Set<string>();
    if (scope.full) {
      for (const node of [...this.sidecars.keys(), ...this.cache.nodeIds()])
        if (!scope.declared.has(node)) gone.add(node);
      this.declaredBy = new Map();
      this.declared = new Set();
    } else
      for (const key of scope.services)
        for (const node of this.declaredBy.get(key) ?? []) if (!scope.declared.has(node)) gone.add(node);
    for (const key of scope.services) this.declaredBy.delete(key);
    for (const [id, ref] of scope.declared) {
      const current = this.sidecars.get(id);
      if (!current || sameSidecar(current, ref)) this.sidecars.set(id, ref);
      this.declared.add(id);
      const key = serviceKey({ name: ref.service, namespace: ref.namespace });
      const ids = this.declaredBy.get(key);
      if (ids) ids.push(id);
      else this.declaredBy.set(key, [id]);
    }
    for (const node of gone) {
      this.sidecars.delete(node);
      this.declared.delete(node);
      this.cache.delete(node);
      this.index.delete(node);
    }
  }

  /** What publishing `nodePlan` sets for `node`: a snapshot planned anew, or its assignments replaced. */
  private planned(
    view: MeshView,
    node: string,
    nodePlan: NodePlan,
    replan: boolean,
  ): Partial<PreparedSnapshot> | undefined {
    const fresh = replan ? this.planSidecar(view, this.sidecars.get(node)!) : undefined;
    if (fresh?.ok) return fresh.value;
    if ('whole' in nodePlan) return nodePlan.whole;
    const current = this.cache.get(node, ENDPOINT);
    return current && { [ENDPOINT]: withReplaced(current.resources.values(), nodePlan.assignments) };
  }

  /**
   * A sidecar stayed disconnected past its grace period: it is no longer "connected" (no trust
   * bundle refreshes), and one the state no longer declares is forgotten altogether.
   */
  releaseSidecar(nodeId: string): 'kept' | 'forgotten' {
    this.connected.delete(nodeId);
    if (this.declared.has(nodeId)) return 'kept';
    this.sidecars.delete(nodeId);
    this.index.delete(nodeId);
    this.cache.delete(nodeId);
    return 'forgotten';
  }

  /** Sidecars that connected and have not been released (for tests and status). */
  connectedSidecars(): string[] {
    return [...this.connected];
  }

  /** Adds (or re-plans with its transport) one sidecar, e.g. when it connects. */
  ensureSidecar(ref: SidecarRef): Result<void> {
    if (!this.view) return fail([{ code: 'NOT_FOUND', message: 'no mesh state has been applied yet' }]);
    const known = this.sidecars.get(ref.nodeId);
    const same = known && sameSidecar(known, ref);
    if (same && this.cache.has(ref.nodeId)) {
      // Planned already, as it connects now: its snapshot is current; connecting adds the trust bundle.
      if (this.connected.has(ref.nodeId)) return ok(undefined);
      const bundle = this.trustBundle(ref);
      if (bundle.ok) {
        this.connected.add(ref.nodeId);
        if (bundle.value) this.cache.set(ref.nodeId, { [SECRET]: bundle.value });
        return ok(undefined);
      }
    }
    this.connected.add(ref.nodeId);
    const planned = this.planSidecar(this.view, ref);
    if (!planned.ok) {
      this.connected.delete(ref.nodeId);
      return planned;
    }
    this.sidecars.set(ref.nodeId, ref);
    this.index.set(this.view, ref);
    this.cache.set(ref.nodeId, planned.value);
    return ok(undefined);
  }

  /** Re-sends a sidecar's trust bundle (a root rotation changed it). */
  refreshSecrets(nodeId: string): void {
    const ref = this.sidecars.get(nodeId);
    if (!ref || !this.connected.has(nodeId)) return;
    const bundle = this.trustBundle(ref);
    if (bundle.ok && bundle.value) this.cache.set(nodeId, { [SECRET]: bundle.value });
  }

  /**
   * The prepared trust bundle a connected sidecar is sent (undefined: none, for proxyless clients and
   * without TLS), prepared once per bundle rather than once per sidecar.
   */
  private trustBundle(ref: SidecarRef): Result<PreparedResource[] | undefined> {
    if (!this.secrets || ref.proxyless) return ok(undefined);
    const pem = this.secrets.trustBundlePem();
    if (this.bundle?.pem === pem) return ok(this.bundle.resources);
    const resources = this.pool.prepareAll(generateTrustBundle(pem));
    if (resources.ok) this.bundle = { pem, resources: resources.value };
    return resources;
  }

  /** The narrow path: new endpoints for one service → EDS pushes to its consumers only. */
  updateEndpoints(set: EndpointSet): number {
    // A service whose instances the manifest declares takes its endpoints from there, not discovery.
    if (!this.view || this.view.services.get(set.service)?.discovery.mode === 'static') return 0;
    const endpoints = new Map(this.view.endpoints);
    endpoints.set(set.service, set);
    this.view = { ...this.view, endpoints };
    let pushed = 0;
    // One assignment per cluster name, shared by every consumer (they are the same resource).
    const byCluster: SharedAssignments = new Map();
    const view = this.view;
    for (const node of this.index.callersOf(set.service)) {
      const current = this.cache.get(node, ENDPOINT);
      const next = current && this.withEndpoints(view, node, current.resources.values(), [set], byCluster);
      if (next && this.cache.set(node, { [ENDPOINT]: next }).length) pushed++;
    }
    this.prunePoolNowAndThen();
    return pushed;
  }

  /**
   * A node's assignments with those of `sets`' services rebuilt as `view` makes them; undefined when
   * it calls none of them (or one failed to prepare: the node keeps what it has).
   */
  private withEndpoints(
    view: MeshView,
    node: string,
    current: Iterable<PreparedResource>,
    sets: Iterable<EndpointSet>,
    byCluster: SharedAssignments,
  ): PreparedResource[] | undefined {
    const ref = this.sidecars.get(node);
    const replaced = ref && assignmentsFor(view, ref, sets, this.pool, byCluster);
    return replaced?.ok ? withReplaced(current, replaced.value) : undefined;
  }

  /**
   * Endpoint churn keeps making new assignments; drop the ones no snapshot holds once the pool has
   * grown well past what was live at the last prune, so memory stays bounded between applies.
   */
  private prunePoolNowAndThen(): void {
    if (this.pool.size < this.poolSizeAfterPrune * 2 + 1000) return;
    this.pool.retain(this.cache.liveResources());
    this.poolSizeAfterPrune = this.pool.size;
  }

  private planSidecar(view: MeshView, ref: SidecarRef): Result<PreparedSnapshot> {
    const generated = generateSidecar(view, ref, {
      mtls: this.secrets !== undefined,
      shareUpstream: this.upstreams?.share,
    });
    if (!generated.ok) return generated;
    const resources: Record<TypeUrl, readonly Resource[]> = { ...generated.value };
    const problems = checkConsistency(ref.nodeId, resources);
    const out = {} as PreparedSnapshot;
    // Proxyless gRPC clients read certificates from files (certificate providers), never over SDS.
    const bundle = this.connected.has(ref.nodeId) ? this.trustBundle(ref) : ok(undefined);
    if (!bundle.ok) problems.push(...bundle.errors);
    for (const typeUrl of PUSH_ORDER) {
      out[typeUrl] = [];
      if (typeUrl === SECRET && bundle.ok && bundle.value) {
        out[typeUrl] = bundle.value;
        continue;
      }
      const prepared = this.pool.prepareAll(resources[typeUrl]);
      if (prepared.ok) out[typeUrl] = prepared.value;
      else problems.push(...prepared.errors);
    }
    return problems.length ? fail(problems) : ok(out);
  }
}

/** The same bad cluster generated for 40 sidecars is one problem, not 40. */
function dedupe(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.code}|${p.field}|${p.message}|${p.resource?.replace(/^sidecar \S+ /, '')}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
