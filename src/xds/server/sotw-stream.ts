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
import type { Problem } from '../../errors.ts';
import { log } from '../../log.ts';
import type { SnapshotCache, TypeSnapshot } from '../cache/snapshot.ts';
import type { PreparedResource } from '../resources/prepared.ts';
import {
  CLUSTER,
  ENDPOINT,
  isTypeUrl,
  LISTENER,
  PUSH_ORDER,
  ROUTE,
  shortName,
  WILDCARD_TYPES,
  type TypeUrl,
} from '../resources/type-urls.ts';
import type { SidecarStatus, StatusRegistry } from '../status.ts';
import { routesPending } from './make-before-break.ts';
import { admitNode, type ConnectContext, type XdsHooks } from './hooks.ts';
import type { XdsRequest } from './node.ts';
import { encodeDiscoveryResponse } from './response.ts';

interface Subscription {
  wildcard: boolean;
  names: Set<string>;
  sentVersion?: string;
  sentNonce?: string;
  sentAt?: number;
  nackedVersion?: string;
  /** What the last response carried, for keeping removed clusters until routes move off them. */
  sent: ReadonlyMap<string, PreparedResource>;
}

/** Marks a CDS version that still carries clusters being removed; the final version follows. */
const KEEP_SUFFIX = '+draining';

const logger = log.child({ component: 'xds' });

export interface StreamIo {
  /**
   * Writes a response. false: the transport is full; the stream writes nothing more until
   * `SotwStream.resume()` is called.
   */
  send(response: Buffer): boolean;
  /** Ends the stream with an error the client can read. */
  close(problem: Problem): void;
}

export class SotwStream {
  private key: string | undefined;
  private status: SidecarStatus | undefined;
  private unwatch: (() => void) | undefined;
  private readonly subs = new Map<TypeUrl, Subscription>();
  private nonce = 0;
  /** The transport said it is full: responses wait (per type, latest wins) until `resume`. */
  private blocked = false;
  /** Types with something to send once unblocked, and whether their subscribed names changed. */
  private readonly waiting = new Map<TypeUrl, boolean>();
  /** CDS was pushed and no EDS since: Envoy's warming clusters are owed an EDS response. */
  private edsOwed = false;

  constructor(
    private readonly cache: SnapshotCache,
    private readonly hooks: XdsHooks,
    private readonly statuses: StatusRegistry,
    private readonly ctx: ConnectContext,
    private readonly io: StreamIo,
  ) {}

  onRequest(req: XdsRequest): void {
    if (!this.key && !this.open(req)) return;
    if (!isTypeUrl(req.typeUrl)) return; // a type we do not serve: nothing to say
    const typeUrl = req.typeUrl;
    const sub: Subscription = this.subs.get(typeUrl) ?? {
      wildcard: false,
      names: new Set<string>(),
      sent: new Map(),
    };
    this.subs.set(typeUrl, sub);
    if (req.responseNonce !== '' && req.responseNonce !== sub.sentNonce) return; // stale

    if (req.responseNonce !== '' && sub.sentVersion !== undefined) this.answered(sub, typeUrl, req);
    const owed =
      typeUrl === ENDPOINT && this.edsOwed && req.responseNonce !== '' && req.errorDetail === undefined;
    const namesChanged = this.subscribe(sub, typeUrl, req.resourceNames) || owed;
    const snapshot = this.cache.get(this.key!, typeUrl);
    if (snapshot)
      this.maybeSend(sub, snapshot, namesChanged, req.responseNonce === '' ? req.versionInfo : undefined);
  }

  /** The transport drained: send each waiting type's latest version, in push order. */
  resume(): void {
    if (!this.blocked || !this.key) return;
    this.blocked = false;
    const waiting = new Map(this.waiting);
    this.waiting.clear();
    for (const typeUrl of PUSH_ORDER) {
      const namesChanged = waiting.get(typeUrl);
      if (namesChanged === undefined) continue;
      const sub = this.subs.get(typeUrl);
      const snapshot = this.cache.get(this.key, typeUrl);
      if (sub && snapshot) this.maybeSend(sub, snapshot, namesChanged, undefined);
    }
  }

  close(): void {
    this.unwatch?.();
    this.waiting.clear();
    if (this.status) this.statuses.close(this.status);
    if (this.key) {
      this.hooks.disconnect?.(this.key, this.ctx);
      logger.info(
        { node: this.key, transport: this.ctx.transport, peer: this.ctx.peer },
        'sidecar disconnected',
      );
    }
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

  private open(req: XdsRequest): boolean {
    const admitted = admitNode(req.node, this.hooks, this.ctx);
    if (!admitted.ok) {
      this.io.close(admitted.errors[0]!);
      return false;
    }
    this.key = admitted.value.key;
    this.status = this.statuses.open(admitted.value.node.id, this.ctx.transport, this.ctx.peer);
    logger.info({ node: this.key, transport: this.ctx.transport, peer: this.ctx.peer }, 'sidecar connected');
    this.unwatch = this.cache.watch(this.key, (snapshot) => {
      const sub = this.subs.get(snapshot.typeUrl);
      if (sub) this.maybeSend(sub, snapshot, false, undefined);
    });
    return true;
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

  private maybeSend(
    sub: Subscription,
    snapshot: TypeSnapshot,
    namesChanged: boolean,
    clientVersion: string | undefined,
  ): void {
    if (this.blocked) {
      this.waiting.set(snapshot.typeUrl, namesChanged || (this.waiting.get(snapshot.typeUrl) ?? false));
      return;
    }
    if (!namesChanged && snapshot.version === sub.sentVersion) return;
    if (!namesChanged && snapshot.version === sub.nackedVersion) return;
    if (!namesChanged && sub.sentVersion === `${snapshot.version}${KEEP_SUFFIX}` && this.routesPending())
      return;
    if (sub.sentVersion === undefined && clientVersion === snapshot.version) {
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
    const nonce = String(++this.nonce);
    const bytes = encodeDiscoveryResponse({ version, typeUrl: snapshot.typeUrl, nonce, resources });
    sub.sent = new Map(resources.map((r) => [r.name, r]));
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
    if (!this.io.send(bytes)) this.blocked = true;
  }

  private routesPending(): boolean {
    return routesPending(this.cache, this.key!, this.status!, (t) => this.subs.has(t));
  }

  /** Once listeners and routes are ACKed, send the final CDS without the drained clusters. */
  private finishDraining(): void {
    const cds = this.subs.get(CLUSTER);
    const snapshot = this.cache.get(this.key!, CLUSTER);
    if (cds?.sentVersion?.endsWith(KEEP_SUFFIX) && snapshot && !this.routesPending())
      this.maybeSend(cds, snapshot, false, undefined);
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
