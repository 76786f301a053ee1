// One state-of-the-world ADS stream: per type, what the client subscribed to, what we sent, and
// whether it was ACKed or NACKed. Rules (xDS protocol):
// - a request whose nonce is not the last one we sent for its type is stale and ignored;
// - a current nonce with error_detail is a NACK: the version is remembered and never re-pushed;
//   the sidecar keeps its last good config until a new version exists;
// - a client that reconnects already holding the current version is not sent it again;
// - make before break: clusters that a change removes are kept in the CDS response until the
//   listeners and routes that stop using them are ACKed, so no request meets a missing cluster.
import type { Problem } from '../../errors.ts';
import type { SnapshotCache, TypeSnapshot } from '../cache/snapshot.ts';
import type { PreparedResource } from '../resources/prepared.ts';
import { CLUSTER, isTypeUrl, LISTENER, ROUTE, WILDCARD_TYPES, type TypeUrl } from '../resources/type-urls.ts';
import type { SidecarStatus, StatusRegistry } from '../status.ts';
import type { ConnectContext, XdsHooks } from './hooks.ts';
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

export interface StreamIo {
  send(response: Buffer): void;
  /** Ends the stream with an error the client can read. */
  close(problem: Problem): void;
}

export class SotwStream {
  private key: string | undefined;
  private status: SidecarStatus | undefined;
  private unwatch: (() => void) | undefined;
  private readonly subs = new Map<TypeUrl, Subscription>();
  private nonce = 0;

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
    const sub: Subscription = this.subs.get(typeUrl) ?? { wildcard: false, names: new Set<string>(), sent: new Map() };
    this.subs.set(typeUrl, sub);
    if (req.responseNonce !== '' && req.responseNonce !== sub.sentNonce) return; // stale

    if (req.responseNonce !== '' && sub.sentVersion !== undefined) {
      if (req.errorDetail !== undefined) {
        sub.nackedVersion = sub.sentVersion;
        this.statuses.nacked(this.status!, typeUrl, {
          version: sub.sentVersion,
          nonce: req.responseNonce,
          error: req.errorDetail,
          at: new Date().toISOString(),
        });
      } else {
        const latency = sub.sentAt === undefined ? undefined : performance.now() - sub.sentAt;
        this.statuses.acked(this.status!, typeUrl, req.versionInfo, latency);
        if (typeUrl === LISTENER || typeUrl === ROUTE) this.finishDraining();
      }
    }
    const namesChanged = this.subscribe(sub, typeUrl, req.resourceNames);
    const snapshot = this.cache.get(this.key!, typeUrl);
    if (snapshot) this.maybeSend(sub, snapshot, namesChanged, req.responseNonce === '' ? req.versionInfo : undefined);
  }

  close(): void {
    this.unwatch?.();
    if (this.status) this.statuses.close(this.status);
    if (this.key) this.hooks.disconnect?.(this.key);
  }

  private open(req: XdsRequest): boolean {
    if (!req.node) {
      this.io.close({ code: 'UNAUTHENTICATED', message: 'the first request of a stream must carry node' });
      return false;
    }
    const result = this.hooks.connect(req.node, this.ctx);
    if (!result.ok) {
      this.io.close(result.errors[0]!);
      return false;
    }
    this.key = result.value;
    this.status = this.statuses.open(req.node.id, this.ctx.transport, this.ctx.peer);
    this.unwatch = this.cache.watch(this.key, (snapshot) => {
      const sub = this.subs.get(snapshot.typeUrl);
      if (sub) this.maybeSend(sub, snapshot, false, undefined);
    });
    return true;
  }

  private subscribe(sub: Subscription, typeUrl: TypeUrl, names: readonly string[]): boolean {
    const wildcard = WILDCARD_TYPES.has(typeUrl) && (names.length === 0 || names.includes('*'));
    const next = new Set(names.filter((n) => n !== '*'));
    const changed = wildcard !== sub.wildcard || next.size !== sub.names.size || [...next].some((n) => !sub.names.has(n));
    sub.wildcard = wildcard;
    sub.names = next;
    return changed;
  }

  private maybeSend(sub: Subscription, snapshot: TypeSnapshot, namesChanged: boolean, clientVersion: string | undefined): void {
    if (!namesChanged && snapshot.version === sub.sentVersion) return;
    if (!namesChanged && snapshot.version === sub.nackedVersion) return;
    if (!namesChanged && sub.sentVersion === `${snapshot.version}${KEEP_SUFFIX}` && this.routesPending()) return;
    if (sub.sentVersion === undefined && clientVersion === snapshot.version) {
      // Reconnected with what we have: acknowledge silently, push nothing.
      sub.sentVersion = snapshot.version;
      this.statuses.acked(this.status!, snapshot.typeUrl, snapshot.version);
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
    this.statuses.pushed(this.status!, snapshot.typeUrl, version, nonce, bytes.length);
    this.io.send(bytes);
  }

  /** Listeners or routes this client has not yet ACKed at the cache's current version. */
  private routesPending(): boolean {
    return ([LISTENER, ROUTE] as const).some((t) => {
      const sub = this.subs.get(t);
      const current = this.cache.get(this.key!, t);
      return sub !== undefined && current !== undefined && this.status!.types.get(t)?.ackedVersion !== current.version;
    });
  }

  /** Once listeners and routes are ACKed, send the final CDS without the drained clusters. */
  private finishDraining(): void {
    const cds = this.subs.get(CLUSTER);
    const snapshot = this.cache.get(this.key!, CLUSTER);
    if (cds?.sentVersion?.endsWith(KEEP_SUFFIX) && snapshot && !this.routesPending()) this.maybeSend(cds, snapshot, false, undefined);
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
