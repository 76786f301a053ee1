// One state-of-the-world ADS stream: per type, what the client subscribed to, what we sent, and
// whether it was ACKed or NACKed. Rules (xDS protocol):
// - a request whose nonce is not the last one we sent for its type is stale and ignored;
// - a current nonce with error_detail is a NACK: the version is remembered and never re-pushed;
//   the sidecar keeps its last good config until a new version exists;
// - only a version this stream sent can be ACKed; a client that reconnects already holding the
//   current version is not sent it again, and that is recorded as "held", not as an ACK;
// - a slow reader never accumulates responses: while the transport is full nothing is written,
//   and when it drains each waiting type gets only the latest version (SotW allows skipping);
// - a changed CDS makes Envoy warm its EDS clusters anew, and it waits for an EDS response to do
//   so: the first EDS request after a CDS push that no EDS push followed is answered even when
//   the assignments did not change;
// - make before break: clusters that a change removes are kept in the CDS response until the
//   listeners and routes that stop using them are ACKed, so no request meets a missing cluster.
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
import type { ConnectContext, XdsHooks } from './hooks.ts';
import type { XdsRequest } from './node.ts';
import { encodeDiscoveryResponse } from './response.ts';

export type { StreamIo } from './ads-stream.ts';

interface Subscription {
  wildcard: boolean;
  names: Set<string>;
  /** The version the client said it holds when it first asked for this type here (a reconnect). */
  clientVersion?: string;
  sentVersion?: string;
  sentNonce?: string;
  sentAt?: number;
  nackedVersion?: string;
  /** What the last CDS response carried, for keeping removed clusters until routes move off them. */
  sent: ReadonlyMap<string, PreparedResource>;
}

/** Marks a CDS version that still carries clusters being removed; the final version follows. */
const KEEP_SUFFIX = '+draining';

const logger = log.child({ component: 'xds' });

export class SotwStream extends AdsStream<XdsRequest, Subscription> {
  /** CDS was pushed and no EDS since: Envoy's warming clusters are owed an EDS response. */
  private edsOwed = false;

  constructor(
    cache: SnapshotCache,
    hooks: XdsHooks,
    statuses: StatusRegistry,
    ctx: ConnectContext,
    io: StreamIo,
  ) {
    super(cache, hooks, statuses, ctx, io, 'ads');
  }

  protected request(req: XdsRequest, typeUrl: TypeUrl): void {
    const sub: Subscription = this.subs.get(typeUrl) ?? {
      wildcard: false,
      names: new Set<string>(),
      sent: new Map(),
    };
    this.subs.set(typeUrl, sub);
    if (req.responseNonce !== '' && req.responseNonce !== sub.sentNonce) return; // stale

    if (req.responseNonce === '') sub.clientVersion = req.versionInfo;
    else if (sub.sentVersion !== undefined) this.answered(sub, typeUrl, req);
    const owed =
      typeUrl === ENDPOINT && this.edsOwed && req.responseNonce !== '' && req.errorDetail === undefined;
    const namesChanged = this.subscribe(sub, typeUrl, req.resourceNames) || owed;
    const snapshot = this.cache.get(this.key!, typeUrl);
    if (snapshot) this.push(sub, snapshot, namesChanged);
  }

  /** A request carrying the nonce of our last response of its type: an ACK or a NACK of it. */
  private answered(sub: Subscription, typeUrl: TypeUrl, req: XdsRequest): void {
    const sentVersion = sub.sentVersion!;
    if (req.errorDetail !== undefined) {
      sub.nackedVersion = sentVersion;
      this.statuses.nacked(this.status!, typeUrl, {
        version: sentVersion,
        nonce: req.responseNonce,
        error: req.errorDetail,
        at: new Date().toISOString(),
      });
      logger.info(
        { node: this.key, type: shortName(typeUrl), version: sentVersion, error: req.errorDetail },
        'NACK',
      );
      return;
    }
    // An ACK names the version it accepts; one that names anything but what we sent is not an ACK.
    if (req.versionInfo !== sentVersion) {
      logger.debug(
        {
          node: this.key,
          type: shortName(typeUrl),
          sent: sentVersion,
          claimed: req.versionInfo.slice(0, 64),
        },
        'ACK of a version never sent ignored',
      );
      return;
    }
    const latency = sub.sentAt === undefined ? undefined : performance.now() - sub.sentAt;
    this.statuses.acked(this.status!, typeUrl, sentVersion, latency);
    if (typeUrl === LISTENER || typeUrl === ROUTE) this.finishDraining();
  }

  private subscribe(sub: Subscription, typeUrl: TypeUrl, names: readonly string[]): boolean {
    const wildcard = WILDCARD_TYPES.has(typeUrl) && (names.length === 0 || names.includes('*'));
    const next = new Set(names.filter((n) => n !== '*'));
    const changed =
      wildcard !== sub.wildcard || next.size !== sub.names.size || [...next].some((n) => !sub.names.has(n));
    sub.wildcard = wildcard;
    sub.names = next;
    return changed;
  }

  protected send(sub: Subscription, snapshot: TypeSnapshot, namesChanged: boolean): void {
    if (!namesChanged && snapshot.version === sub.sentVersion) return;
    if (!namesChanged && snapshot.version === sub.nackedVersion) return;
    if (!namesChanged && sub.sentVersion === `${snapshot.version}${KEEP_SUFFIX}` && this.routesPending())
      return;
    if (sub.sentVersion === undefined && sub.clientVersion === snapshot.version) {
      // Reconnected with what we have: push nothing. Later pushes compare against it.
      sub.sentVersion = snapshot.version;
      this.statuses.held(this.status!, snapshot.typeUrl, snapshot.version);
      return;
    }
    let resources = this.select(sub, snapshot);
    // Names requested before they exist: wait for them rather than answer with nothing.
    if (!sub.wildcard && resources.length === 0 && sub.sentVersion === undefined) return;
    let version = snapshot.version;
    if (snapshot.typeUrl === CLUSTER && this.routesPending()) {
      const removed = [...sub.sent.values()].filter((r) => !snapshot.resources.has(r.name));
      if (removed.length) {
        resources = [...resources, ...removed];
        version = `${snapshot.version}${KEEP_SUFFIX}`;
      }
    }
    const nonce = this.nextNonce();
    const bytes = encodeDiscoveryResponse({ version, typeUrl: snapshot.typeUrl, nonce, resources });
    // Only CDS keeps clusters being removed: no other type needs what it sent, by name, per push.
    if (snapshot.typeUrl === CLUSTER) sub.sent = new Map(resources.map((r) => [r.name, r]));
    sub.sentVersion = version;
    sub.sentNonce = nonce;
    sub.sentAt = snapshot.publishedAt;
    if (snapshot.typeUrl === CLUSTER) this.edsOwed = true;
    if (snapshot.typeUrl === ENDPOINT) this.edsOwed = false;
    this.statuses.pushed(this.status!, snapshot.typeUrl, version, nonce, bytes.length);
    if (logger.isLevelEnabled('debug'))
      logger.debug(
        { node: this.key, type: shortName(snapshot.typeUrl), version, nonce, bytes: bytes.length },
        'push',
      );
    this.write(bytes);
  }

  /** Once listeners and routes are ACKed, send the final CDS without the drained clusters. */
  private finishDraining(): void {
    const cds = this.subs.get(CLUSTER);
    const snapshot = this.cache.get(this.key!, CLUSTER);
    if (cds?.sentVersion?.endsWith(KEEP_SUFFIX) && snapshot && !this.routesPending())
      this.push(cds, snapshot, false);
  }

  private select(sub: Subscription, snapshot: TypeSnapshot): PreparedResource[] {
    if (sub.wildcard) return [...snapshot.resources.values()];
    const out: PreparedResource[] = [];
    for (const name of sub.names) {
      const r = snapshot.resources.get(name);
      if (r) out.push(r);
    }
    return out;
  }
}
