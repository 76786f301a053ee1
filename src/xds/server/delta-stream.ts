// One incremental (delta) ADS stream: per type, what the client subscribed to and which version of
// each resource it holds. A resource's version is its content hash, so a response carries only the
// resources whose hash differs from what the client holds, plus `removed_resources` for names it
// holds that are gone. Rules (xDS protocol, incremental variant):
// - CDS and LDS are wildcard when the first request subscribes to nothing, or whenever `*` is
//   subscribed (until `*` is unsubscribed); EDS, RDS and SDS are explicit names;
// - the first request of a type may say what the client already holds (`initial_resource_versions`,
//   a reconnect): only what differs is sent, so a reconnect to unchanged content sends nothing;
// - subscribing to a name is answered with it (if it exists); unsubscribing forgets it;
// - a request naming the nonce of one of our responses ACKs it (the client now holds those
//   versions) or, with error_detail, NACKs it: recorded in status, the client keeps what it had, and
//   that version of those resources is never sent again (only a newer one);
// - system_version_info is the cache's version of the type;
// - a slow reader never accumulates responses: while the transport is full nothing is written, and
//   when it drains each waiting type gets one response with the difference to the latest version;
// - make before break: clusters a change removes are removed only once the listeners and routes that
//   stopped using them are ACKed. Changes arrive from the cache in push order (SDS, CDS, EDS, LDS, RDS).
import { log } from '../../log.ts';
import type { SnapshotCache, TypeSnapshot } from '../cache/snapshot.ts';
import type { PreparedResource } from '../resources/prepared.ts';
import {
  CLUSTER,
  ENDPOINT,
  LISTENER,
  ROUTE,
  shortName,
  WILDCARD_TYPES,
  type TypeUrl,
} from '../resources/type-urls.ts';
import type { StatusRegistry } from '../status.ts';
import { AdsStream, type StreamIo } from './ads-stream.ts';
import { encodeDeltaResponse, type DeltaRequest } from './delta-wire.ts';
import type { ConnectContext, XdsHooks } from './hooks.ts';

/** A response not yet ACKed or NACKed. */
interface Pending {
  readonly systemVersion: string;
  readonly sentAt: number;
  /** name → the version sent (undefined: removed). */
  readonly sent: ReadonlyMap<string, string | undefined>;
  /** name → what the client held before (undefined: nothing). */
  readonly previous: ReadonlyMap<string, string | undefined>;
}

interface DeltaSubscription {
  wildcard: boolean;
  names: Set<string>;
  /** What the client holds as far as we know (sent and not NACKed): name → version. */
  readonly client: Map<string, string>;
  /** name → a version the client rejected; never sent again (made at the first NACK: most never see one). */
  nacked?: Map<string, string>;
  /** Unanswered responses by nonce, oldest first. */
  readonly pending: Map<string, Pending>;
  /** A wildcard subscription is owed a first response even when it is empty. */
  answered: boolean;
}

/** Marks a CDS version whose removals wait until listeners and routes moved off them. */
const DRAINING_SUFFIX = '+draining';
/** Unanswered responses kept per type; a client that never answers cannot grow this further. */
const MAX_PENDING = 64;

const logger = log.child({ component: 'xds' });

export class DeltaStream extends AdsStream<DeltaRequest, DeltaSubscription> {
  constructor(
    cache: SnapshotCache,
    hooks: XdsHooks,
    statuses: StatusRegistry,
    ctx: ConnectContext,
    io: StreamIo,
  ) {
    super(cache, hooks, statuses, ctx, io, 'delta');
  }

  protected request(req: DeltaRequest, typeUrl: TypeUrl): void {
    let sub = this.subs.get(typeUrl);
    if (!sub) {
      const initial = Object.entries(req.initialVersions);
      sub = {
        wildcard: WILDCARD_TYPES.has(typeUrl) && req.subscribe.length === 0,
        names: new Set(),
        client: new Map(initial),
        pending: new Map(),
        answered: initial.length > 0,
      };
      this.subs.set(typeUrl, sub);
    }
    if (req.responseNonce !== '') this.answered(sub, typeUrl, req);
    for (const name of req.subscribe) {
      if (name === '*') {
        sub.wildcard = true;
        continue;
      }
      sub.names.add(name);
      // A (re)subscription is answered with the resource, unless the client said it holds it.
      if (!(name in req.initialVersions)) sub.client.delete(name);
    }
    for (const name of req.unsubscribe) {
      if (name === '*') sub.wildcard = false;
      else sub.names.delete(name);
    }
    if (!sub.wildcard)
      for (const name of sub.client.keys()) if (!sub.names.has(name)) sub.client.delete(name);
    const snapshot = this.cache.get(this.key!, typeUrl);
    if (snapshot) this.push(sub, snapshot, false);
  }

  /** A request carrying the nonce of one of our responses: an ACK or a NACK of it. */
  private answered(sub: DeltaSubscription, typeUrl: TypeUrl, req: DeltaRequest): void {
    const p = sub.pending.get(req.responseNonce);
    if (!p) return; // stale, unknown, or already answered
    sub.pending.delete(req.responseNonce);
    if (req.errorDetail !== undefined) {
      // The client keeps what it had; what it rejected is never offered again.
      for (const [name, version] of p.sent) {
        if (sub.client.get(name) !== version) continue; // changed again since
        const before = p.previous.get(name);
        if (before === undefined) sub.client.delete(name);
        else sub.client.set(name, before);
        if (version !== undefined) (sub.nacked ??= new Map()).set(name, version);
      }
      this.statuses.nacked(this.status!, typeUrl, {
        version: p.systemVersion,
        nonce: req.responseNonce,
        error: req.errorDetail,
        at: new Date().toISOString(),
      });
      logger.info(
        { node: this.key, type: shortName(typeUrl), version: p.systemVersion, error: req.errorDetail },
        'NACK (delta)',
      );
      return;
    }
    this.statuses.acked(this.status!, typeUrl, p.systemVersion, performance.now() - p.sentAt);
    if (typeUrl === LISTENER || typeUrl === ROUTE) this.finishDraining();
  }

  protected send(sub: DeltaSubscription, snapshot: TypeSnapshot): void {
    const typeUrl = snapshot.typeUrl;
    const updates: PreparedResource[] = [];
    let rejectedHeld = false;
    const consider = (r: PreparedResource | undefined) => {
      if (!r || sub.client.get(r.name) === r.hash) return;
      if (sub.nacked?.get(r.name) === r.hash) rejectedHeld = true;
      else updates.push(r);
    };
    if (sub.wildcard) for (const r of snapshot.resources.values()) consider(r);
    else for (const name of sub.names) consider(snapshot.resources.get(name));

    const draining = typeUrl === CLUSTER && this.routesPending();
    const removed: string[] = [];
    let removalsHeld = false;
    for (const name of sub.client.keys()) {
      if (snapshot.resources.has(name)) continue;
      if (draining) removalsHeld = true;
      else removed.push(name);
    }

    if (updates.length === 0 && removed.length === 0 && !(sub.wildcard && !sub.answered)) {
      // Nothing to send: when nothing is in flight either, the client holds this version.
      if (sub.pending.size === 0 && !rejectedHeld && !removalsHeld) {
        sub.answered = true;
        this.statuses.held(this.status!, typeUrl, snapshot.version);
        if (typeUrl === LISTENER || typeUrl === ROUTE) this.finishDraining();
      }
      return;
    }
    const systemVersion = removalsHeld ? `${snapshot.version}${DRAINING_SUFFIX}` : snapshot.version;
    const nonce = this.nextNonce();
    const bytes = encodeDeltaResponse({ systemVersion, typeUrl, nonce, resources: updates, removed });
    const sent = new Map<string, string | undefined>();
    const previous = new Map<string, string | undefined>();
    for (const r of updates) {
      previous.set(r.name, sub.client.get(r.name));
      sent.set(r.name, r.hash);
      sub.client.set(r.name, r.hash);
    }
    for (const name of removed) {
      previous.set(name, sub.client.get(name));
      sent.set(name, undefined);
      sub.client.delete(name);
    }
    sub.pending.set(nonce, { systemVersion, sentAt: snapshot.publishedAt, sent, previous });
    if (sub.pending.size > MAX_PENDING) sub.pending.delete(sub.pending.keys().next().value!);
    sub.answered = true;
    this.statuses.pushed(this.status!, typeUrl, systemVersion, nonce, bytes.length, {
      resources: updates.length,
      removed: removed.length,
    });
    if (logger.isLevelEnabled('debug'))
      logger.debug(
        {
          node: this.key,
          type: shortName(typeUrl),
          version: systemVersion,
          nonce,
          resources: updates.length,
          removed: removed.length,
          bytes: bytes.length,
        },
        'delta push',
      );
    this.write(bytes);
    if (typeUrl === CLUSTER)
      this.resendAssignmentsOf(updates.filter((r) => previous.get(r.name) !== undefined));
  }

  /**
   * Envoy re-creates a cluster that changed and waits for its assignment to finish warming it; over
   * delta it does not ask again for a name it already holds, so the assignment is sent again (an EDS
   * cluster's assignment bears its name).
   */
  private resendAssignmentsOf(changedClusters: readonly PreparedResource[]): void {
    const eds = this.subs.get(ENDPOINT);
    if (!changedClusters.length || !eds || !this.key) return;
    for (const c of changedClusters) eds.client.delete(c.name);
    const snapshot = this.cache.get(this.key, ENDPOINT);
    if (snapshot) this.push(eds, snapshot, false);
  }

  /** Once listeners and routes are in sync, remove the clusters that were kept for them. */
  private finishDraining(): void {
    const cds = this.subs.get(CLUSTER);
    const snapshot = this.cache.get(this.key!, CLUSTER);
    if (!cds || !snapshot || this.routesPending()) return;
    for (const name of cds.client.keys())
      if (!snapshot.resources.has(name)) return this.push(cds, snapshot, false);
  }
}
