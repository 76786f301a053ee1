// The control plane's one door for changes: applies and deletes are proposed, planned (the
// resources of the sidecars they affect generated and validated) and only then committed and
// published, one at a time. Publishing has one ordered queue that applies and discovery updates share: endpoint sets
// from `updateEndpoints` wait only for a publish in progress, never for an apply that is still
// planning or saving, and an apply publishes its plan brought up to every endpoint set that arrived
// after it was planned, so a slower change never publishes an older view over a newer one.
// Sidecars that disconnect are released once they have stayed away for a grace period.
import { fail, ok, type Problem, type Result } from '../../errors.ts';
import type { EndpointSet } from '../../discovery/endpoints.ts';
import { DEFAULT_MESH } from '../../manifest/index.ts';
import { fieldPosition } from '../../manifest/problem-at.ts';
import type { Manifest } from '../../manifest/types.ts';
import type { DesiredState } from '../../store/state.ts';
import { isStaleBase, type CommitNote } from '../../store/backend.ts';
import type { ManifestRef, SetChecker, StateStore } from '../../store/store.ts';
import { DEFAULT_ADMIN_PORT } from '../generate/metrics.ts';
import { DEFAULT_SDS_DIR } from '../generate/secrets.ts';
import type { MeshView, SidecarRef } from '../generate/types.ts';
import { log } from '../../log.ts';
import type { ConnectContext, XdsHooks } from '../server/hooks.ts';
import { parseNodeId } from '../server/node-id.ts';
import { MeshViews } from './mesh-views.ts';
import { NodeSessions } from './node-sessions.ts';
import type { Reconciler } from './reconciler.ts';
import { WorkerSetChecker } from './set-check.ts';

export interface ApplyOutcome {
  readonly revision: number;
  readonly changed: boolean;
  readonly touched: readonly string[];
  readonly sidecars: number;
}

export interface ControlPlaneTuning {
  /** How long a sidecar may stay disconnected before its per-node state is released (default 60 s). */
  readonly releaseAfterMs?: number;
  /** Where the whole-set manifest check runs (default: a worker thread for large sets). */
  readonly checkSet?: SetChecker;
}

const logger = log.child({ component: 'control-plane' });

/** How often one change is proposed again after losing the commit race to another replica. */
const MAX_COMMIT_RACES = 8;

export class ControlPlane {
  /** Applies, deletes and re-plans: propose → plan → commit, one at a time. */
  private planning: Promise<unknown> = Promise.resolve();
  /** The one ordered publish queue: plans and endpoint sets reach the cache in this order. */
  private publishing: Promise<unknown> = Promise.resolve();
  /** Endpoint sets waiting for their turn in the publish queue (latest per service wins). */
  private pendingEndpoints = new Map<string, EndpointSet>();
  private endpointsQueued: Promise<void> | undefined;
  private replanQueued: Promise<unknown> | undefined;
  /** Counts endpoint sets received; a plan remembers the count it saw, to know what came after. */
  private endpointEpoch = 0;
  private readonly endpointsChangedAt = new Map<string, number>();
  /** Open transports per node and what they said about it (see node-sessions.ts). */
  private readonly sessions = new NodeSessions();
  private readonly releaseTimers = new Map<string, NodeJS.Timeout>();
  private readonly releaseAfterMs: number;
  private readonly checkSet: SetChecker;
  private readonly stopChecker: () => void = () => undefined;
  private readonly views: MeshViews;

  constructor(
    readonly store: StateStore,
    readonly reconciler: Reconciler,
    /** Checks that a connecting sidecar proved the identity it claims (issue: xDS authentication). */
    private readonly authenticate?: (ref: SidecarRef, ctx: ConnectContext) => Result<void>,
    /**
     * The CA's trust domain, fixed when it was made: a mesh without a Mesh manifest takes it, and a
     * Mesh that names another is refused (changing it is an explicit migration).
     */
    private readonly trustDomain?: () => string,
    tuning: ControlPlaneTuning = {},
  ) {
    this.views = new MeshViews(() => this.trustDomain?.());
    this.releaseAfterMs = tuning.releaseAfterMs ?? 60_000;
    if (tuning.checkSet) this.checkSet = tuning.checkSet;
    else {
      const worker = new WorkerSetChecker();
      this.checkSet = worker.check;
      this.stopChecker = () => worker.stop();
    }
  }

  state(): DesiredState {
    return this.store.current();
  }

  /** Publishes what the store holds (at start-up, after restore). */
  async start(): Promise<Result<ApplyOutcome>> {
    return this.change({});
  }

  /** `note` says who asked, for the history written with the commit. */
  apply(manifests: readonly Manifest[], dryRun = false, note?: CommitNote): Promise<Result<ApplyOutcome>> {
    return this.change({ apply: manifests }, dryRun, false, note);
  }

  delete(refs: readonly ManifestRef[], dryRun = false, note?: CommitNote): Promise<Result<ApplyOutcome>> {
    return this.change({ delete: refs }, dryRun, false, note);
  }

  /**
   * New endpoints from a discovery source. Usually an EDS-only push to the sidecars that call the
   * service; when a Consul service gains or loses instances, their own sidecars need config too, so
   * the mesh is re-planned.
   */
  updateEndpoints(input: EndpointSet | readonly EndpointSet[]): Promise<void> {
    const sets: readonly EndpointSet[] = Array.isArray(input) ? input : [input as EndpointSet];
    let replan = false;
    for (const set of sets) {
      const before = this.views.discover(set);
      this.endpointsChangedAt.set(set.service, ++this.endpointEpoch);
      this.pendingEndpoints.set(set.service, set);
      if (instanceNames(before) !== instanceNames(set)) replan = true;
    }
    // One queued flush carries every set that arrives before its turn comes.
    this.endpointsQueued ??= this.enqueuePublish(async () => this.flushEndpoints());
    if (!replan) return this.endpointsQueued;
    // Instances came or went: their own sidecars need planning too, after whatever is planning now.
    this.replanQueued ??= this.enqueuePlanning(async () => {
      this.replanQueued = undefined;
      const result = await this.runChange({}, false, true);
      if (!result.ok)
        logger.warn({ problems: result.errors.slice(0, 5) }, 're-plan after discovery change failed');
    });
    return Promise.all([this.endpointsQueued, this.replanQueued]).then(() => undefined);
  }

  private flushEndpoints(): void {
    this.endpointsQueued = undefined;
    for (const set of this.takePendingEndpoints()) {
      const pushed = this.reconciler.updateEndpoints(set);
      logger.debug(
        { service: set.service, endpoints: set.endpoints.length, sidecarsPushed: pushed },
        'endpoints updated',
      );
    }
  }

  /** Endpoint sets waiting for the queue, handed to whoever publishes next (a flush, or a long publish between slices). */
  private takePendingEndpoints(): EndpointSet[] {
    const sets = [...this.pendingEndpoints.values()];
    this.pendingEndpoints = new Map();
    return sets;
  }

  /** Discovered endpoint sets that arrived after `epoch`, for services `view` takes from discovery. */
  private endpointsSince(epoch: number, view: MeshView): EndpointSet[] {
    const out: EndpointSet[] = [];
    for (const [service, at] of this.endpointsChangedAt) {
      const set = this.views.discoveredSet(service);
      if (at > epoch && set && view.services.get(service)?.discovery.mode === 'consul') out.push(set);
    }
    return out;
  }

  /**
   * Plans and publishes only what the store's state now changes (a commit another replica made),
   * through the same dependency index as a local apply.
   */
  followStore(): Promise<Result<ApplyOutcome>> {
    return this.enqueuePlanning(() => this.runChange({}, false, true));
  }

  /** Re-plans every sidecar from the current state and publishes what differs. */
  refresh(): Promise<Result<ApplyOutcome>> {
    return this.enqueuePlanning(() => this.runChange({}, false, true, true));
  }

  readonly hooks: XdsHooks = {
    connect: (node, ctx) => this.connect(node.id, node.metadata, ctx),
    disconnect: (key, ctx) => this.disconnect(key, ctx),
  };

  /** Sidecars with an open transport or within their grace period. */
  connectedNodes(): string[] {
    return [...new Set([...this.sessions.nodes(), ...this.releaseTimers.keys()])];
  }

  /** Cancels pending releases (at shutdown). */
  stop(): void {
    this.stopChecker();
    for (const timer of this.releaseTimers.values()) clearTimeout(timer);
    this.releaseTimers.clear();
  }

  private connect(id: string, metadata: Record<string, unknown>, ctx: ConnectContext): Result<string> {
    const result = this.admit(id, metadata, ctx);
    if (!result.ok) return result;
    const ref = result.value;
    this.sessions.opened(ref, ctx);
    clearTimeout(this.releaseTimers.get(ref.nodeId));
    this.releaseTimers.delete(ref.nodeId);
    return ok(ref.nodeId);
  }

  private disconnect(key: string, ctx: ConnectContext): void {
    if (!this.sessions.closed(key, ctx)) return;
    // A sidecar that comes back within the grace period finds everything as it left it.
    const timer = setTimeout(() => {
      this.releaseTimers.delete(key);
      if (this.sessions.isHeld(key)) return;
      const released = this.reconciler.releaseSidecar(key);
      if (released === 'forgotten') this.sessions.forget(key);
      logger.info({ node: key, forgotten: released === 'forgotten' }, 'released disconnected sidecar');
    }, this.releaseAfterMs);
    timer.unref();
    this.releaseTimers.set(key, timer);
  }

  /** Authenticates a sidecar and makes sure the cache holds its snapshot. */
  private admit(id: string, metadata: Record<string, unknown>, ctx: ConnectContext): Result<SidecarRef> {
    // A sidecar's transport decides its EDS/RDS config sources, so it is planned per connection.
    const parsed = parseNodeId(id, ctx.transport);
    if (!parsed.ok) return parsed;
    // A proxyless gRPC client (grpc-js-xds) says so in its bootstrap's node metadata.
    const proxyless = metadata['clinimesh.proxyless'] === true ? true : undefined;
    const ref = {
      ...parsed.value,
      auditLogPath: auditLogPathOf(metadata),
      proxyless,
      sdsDir: sdsDirOf(metadata),
      adminPort: adminPortOf(metadata),
    };
    if (this.authenticate) {
      const allowed = this.authenticate(ref, ctx);
      if (!allowed.ok) return allowed;
    }
    // Another connection holds the node and says something else about it: never re-plan under it.
    const refused = this.sessions.refusal(ref, ctx);
    if (refused) {
      logger.warn({ node: id, peer: ctx.peer, reason: refused.message }, 'connection refused');
      return fail([refused]);
    }
    const ensured = this.reconciler.ensureSidecar(ref);
    return ensured.ok ? ok(ref) : ensured;
  }

  private change(
    change: { apply?: readonly Manifest[]; delete?: readonly ManifestRef[] },
    dryRun = false,
    force = false,
    note?: CommitNote,
  ): Promise<Result<ApplyOutcome>> {
    return this.enqueuePlanning(() => this.changeOnLatest(change, dryRun, force, note));
  }

  /**
   * With a shared store another replica may commit between our proposal and our commit: the change
   * is then proposed again on top of the new state, and refused with a CONFLICT naming the revision
   * when it no longer validates there (or keeps losing the race).
   */
  private async changeOnLatest(
    change: { apply?: readonly Manifest[]; delete?: readonly ManifestRef[] },
    dryRun: boolean,
    force: boolean,
    note: CommitNote | undefined,
  ): Promise<Result<ApplyOutcome>> {
    let lost = 0;
    for (;;) {
      const result = await this.runChange(change, dryRun, force, false, note);
      if (result.ok) return result;
      if (isStaleBase(result.errors) && lost < MAX_COMMIT_RACES) {
        lost++;
        continue;
      }
      if (lost === 0 || isStaleBase(result.errors)) return result;
      const revision = this.store.current().revision;
      return fail([
        {
          code: 'CONFLICT',
          resource: 'state revision',
          message: `another replica committed revision ${revision} first, and this change no longer applies on top of it`,
        },
        ...result.errors,
      ]);
    }
  }

  private enqueuePlanning<T>(task: () => Promise<T>): Promise<T> {
    const next = this.planning.then(task, task);
    this.planning = next.catch(() => undefined);
    return next;
  }

  private enqueuePublish<T>(task: () => Promise<T>): Promise<T> {
    const next = this.publishing.then(task, task);
    this.publishing = next.catch(() => undefined);
    return next;
  }

  /**
   * Plans the sidecars the change affects (every sidecar when `full`, or when the Mesh changed),
   * commits, and publishes. `force` publishes even when the stored state did not change (a
   * discovery change alters the view, not the store).
   */
  private async runChange(
    change: { apply?: readonly Manifest[]; delete?: readonly ManifestRef[] },
    dryRun: boolean,
    force: boolean,
    full = false,
    note?: CommitNote,
  ): Promise<Result<ApplyOutcome>> {
    const started = performance.now();
    const epoch = this.endpointEpoch;
    const proposal = await this.store.proposeWith(change, this.checkSet);
    if (!proposal.ok) return proposal;
    const { state } = proposal.value;
    const refused = this.trustDomainProblems(state);
    if (refused.length) return fail(refused);
    const view = this.views.make(state);
    const scope = this.reconciler.scope(view, full);
    const plan = await this.reconciler.plan(view, scope);
    if (!plan.ok) return fail(plan.errors);
    const outcome = {
      revision: state.revision,
      changed: proposal.value.changed,
      touched: proposal.value.touched,
      sidecars: scope.sidecars,
    };
    if (dryRun) return ok(outcome);
    const committed = await this.store.commit(proposal.value, note);
    if (!committed.ok) return committed;
    // Identical applies change nothing and push nothing (the start-up publish always runs).
    let pushed = 0;
    if (committed.value || force || !this.reconciler.currentView()) {
      const arriving = () =>
        this.takePendingEndpoints().filter(
          (set) => view.services.get(set.service)?.discovery.mode === 'consul',
        );
      pushed = await this.enqueuePublish(() =>
        this.reconciler.publish(view, scope, plan.value, this.endpointsSince(epoch, view), arriving),
      );
    }
    const durationMs = Math.round(performance.now() - started);
    const line = {
      revision: state.revision,
      touched: proposal.value.touched.length,
      sidecars: scope.sidecars,
      sidecarsPlanned: plan.value.size,
      sidecarsPushed: pushed,
      durationMs,
    };
    if (committed.value) logger.info({ ...line, touchedIds: proposal.value.touched.slice(0, 20) }, 'apply');
    else logger.debug(line, force ? 're-plan' : 'apply changed nothing');
    return ok(outcome);
  }

  private trustDomainProblems(state: DesiredState): Problem[] {
    const fixed = this.trustDomain?.();
    if (!fixed || state.mesh === DEFAULT_MESH || state.mesh.trustDomain === fixed) return [];
    const message = `the CA serves trust domain ${fixed}; changing it to ${state.mesh.trustDomain} is an explicit migration (admin: POST /v1/ca/trust-domain {"trustDomain": "…"})`;
    return [
      {
        code: 'CONFLICT',
        resource: `Mesh ${state.mesh.name}`,
        field: 'spec.trustDomain',
        message,
        pos: fieldPosition(state.mesh.origin, 'spec.trustDomain'),
      },
    ];
  }
}

/** A sidecar may ask for its audit log elsewhere (node metadata `clinimesh.audit_log`, absolute). */
function auditLogPathOf(metadata: Record<string, unknown>): string | undefined {
  const v = metadata['clinimesh.audit_log'];
  return typeof v === 'string' && v.startsWith('/') ? v : undefined;
}

/**
 * Where the sidecar's node agent keeps its workload secret (node metadata `clinimesh.sds_dir`,
 * absolute). The default directory is no directory: config planned without one names it already, so
 * a sidecar whose agent uses it connects to the plan its service's apply made, not a fresh one.
 */
function sdsDirOf(metadata: Record<string, unknown>): string | undefined {
  const v = metadata['clinimesh.sds_dir'];
  if (v === DEFAULT_SDS_DIR) return undefined;
  return typeof v === 'string' && v.startsWith('/') && !v.includes('..') ? v : undefined;
}

/**
 * Where the sidecar's Envoy admin listens on loopback (node metadata `clinimesh.admin_port`, written by
 * the agent when not the default; 0 when Envoy picks it). Like the SDS directory, the default is
 * none, so a sidecar on the default connects to the plan its service's apply made.
 */
function adminPortOf(metadata: Record<string, unknown>): number | undefined {
  const v = metadata['clinimesh.admin_port'];
  const port = typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 65535 ? v : undefined;
  return port === DEFAULT_ADMIN_PORT ? undefined : port;
}

function instanceNames(set: EndpointSet | undefined): string {
  return (set?.endpoints ?? [])
    .map((e) => e.instance)
    .sort()
    .join(',');
}
