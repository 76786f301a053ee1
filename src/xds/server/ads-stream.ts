// What a state-of-the-world and an incremental ADS stream share: admitting the node on the first
// request, watching the cache for it, holding responses while the transport is full (per type,
// only the latest waits), and letting go of it all on close. The protocol rules live in the
// subclasses (sotw-stream.ts, delta-stream.ts).
import type { Problem } from '../../errors.ts';
import { log } from '../../log.ts';
import type { SnapshotCache, TypeSnapshot } from '../cache/snapshot.ts';
import { isTypeUrl, PUSH_ORDER, type TypeUrl } from '../resources/type-urls.ts';
import type { SidecarStatus, StatusRegistry, StatusTransport } from '../status.ts';
import { admitNode, type ConnectContext, type XdsHooks } from './hooks.ts';
import { routesPending } from './make-before-break.ts';
import type { NodeInfo } from './node.ts';

export interface StreamIo {
  /**
   * Writes a response. false: the transport is full; the stream writes nothing more until
   * `resume()` is called.
   */
  send(response: Buffer): boolean;
  /** Ends the stream with an error the client can read. */
  close(problem: Problem): void;
}

const logger = log.child({ component: 'xds' });

export abstract class AdsStream<Req extends { readonly node?: NodeInfo; readonly typeUrl: string }, Sub> {
  /** The node's snapshot key, once admitted. */
  protected key: string | undefined;
  protected status: SidecarStatus | undefined;
  protected readonly subs = new Map<TypeUrl, Sub>();
  private unwatch: (() => void) | undefined;
  private nonce = 0;
  /** The transport said it is full: responses wait (per type, latest wins) until `resume`. */
  private blocked = false;
  /**
   * Types with something to send once unblocked, and whether their subscribed names changed (made
   * when the transport first fills: most streams never hold anything).
   */
  private waiting: Map<TypeUrl, boolean> | undefined;

  constructor(
    protected readonly cache: SnapshotCache,
    private readonly hooks: XdsHooks,
    protected readonly statuses: StatusRegistry,
    private readonly ctx: ConnectContext,
    private readonly io: StreamIo,
    private readonly transport: StatusTransport,
  ) {}

  onRequest(req: Req): void {
    if (!this.key && !this.open(req)) return;
    if (isTypeUrl(req.typeUrl)) this.request(req, req.typeUrl); // a type we do not serve: nothing to say
  }

  /** The transport drained: each waiting type gets its latest version, in push order. */
  resume(): void {
    if (!this.blocked || !this.key) return;
    this.blocked = false;
    const waiting = this.waiting ?? new Map<TypeUrl, boolean>();
    this.waiting = undefined;
    for (const typeUrl of PUSH_ORDER) {
      const namesChanged = waiting.get(typeUrl);
      if (namesChanged === undefined) continue;
      const sub = this.subs.get(typeUrl);
      const snapshot = this.cache.get(this.key, typeUrl);
      if (sub && snapshot) this.push(sub, snapshot, namesChanged);
    }
  }

  close(): void {
    this.unwatch?.();
    this.waiting = undefined;
    if (this.status) this.statuses.close(this.status);
    if (!this.key) return;
    this.hooks.disconnect?.(this.key, this.ctx);
    logger.debug({ node: this.key, transport: this.transport, peer: this.ctx.peer }, 'sidecar disconnected');
  }

  /** One request of an admitted node, for a type we serve. */
  protected abstract request(req: Req, typeUrl: TypeUrl): void;

  /** Sends what the client lacks of `snapshot`, if anything (called only while not held). */
  protected abstract send(sub: Sub, snapshot: TypeSnapshot, namesChanged: boolean): void;

  /** Sends, or while the transport is full remembers that this type has something waiting. */
  protected push(sub: Sub, snapshot: TypeSnapshot, namesChanged: boolean): void {
    if (!this.blocked) return this.send(sub, snapshot, namesChanged);
    const waiting = (this.waiting ??= new Map());
    waiting.set(snapshot.typeUrl, namesChanged || (waiting.get(snapshot.typeUrl) ?? false));
  }

  protected nextNonce(): string {
    return String(++this.nonce);
  }

  /** Writes a response; a full transport holds every later one until `resume`. */
  protected write(bytes: Buffer): void {
    if (!this.io.send(bytes)) this.blocked = true;
  }

  /** Listeners or routes the client subscribes to but does not hold at the cache's current version. */
  protected routesPending(): boolean {
    return routesPending(this.cache, this.key!, this.status!, (t) => this.subs.has(t));
  }

  private open(req: Req): boolean {
    const admitted = admitNode(req.node, this.hooks, this.ctx);
    if (!admitted.ok) {
      this.io.close(admitted.errors[0]!);
      return false;
    }
    this.key = admitted.value.key;
    this.status = this.statuses.open(admitted.value.node.id, this.transport, this.ctx.peer);
    logger.debug({ node: this.key, transport: this.transport, peer: this.ctx.peer }, 'sidecar connected');
    this.unwatch = this.cache.watch(this.key, (snapshot) => {
      const sub = this.subs.get(snapshot.typeUrl);
      if (sub) this.push(sub, snapshot, false);
    });
    return true;
  }
}
