// Per-sidecar sync status: what each connected sidecar has ACKed, what is in flight, and the last
// NACK with Envoy's own words. The server records; the admin API reads. A stream that closes stays
// listed (with `disconnectedAt`) for a grace period, then is dropped, so the registry stays bounded.
import { shortName, type TypeUrl } from './resources/type-urls.ts';

export interface NackRecord {
  readonly version: string;
  readonly nonce: string;
  readonly error: string;
  readonly at: string;
}

export interface TypeStatus {
  /** The last version this stream sent and the client ACKed. */
  ackedVersion?: string;
  /**
   * The version the client said it already held when it (re)connected, equal to ours, so nothing
   * was sent: in sync, but not an ACK of anything this stream sent.
   */
  heldVersion?: string;
  sentVersion?: string;
  pendingNonce?: string;
  lastNack?: NackRecord;
  pushes: number;
  nacks: number;
  /** Delta streams: how many resources, and removals, the last response carried. */
  lastPush?: PushCounts;
}

export interface PushCounts {
  readonly resources: number;
  readonly removed: number;
}

/** How a sidecar talks xDS: ADS state of the world, ADS incremental (delta), or REST polling. */
export type StatusTransport = 'ads' | 'delta' | 'rest';

/** The client has `version`: it ACKed it on this stream, or said it held it when it connected. */
export function hasVersion(t: TypeStatus | undefined, version: string): boolean {
  return t !== undefined && (t.ackedVersion === version || t.heldVersion === version);
}

export interface SidecarStatus {
  readonly streamId: number;
  readonly nodeId: string;
  readonly transport: StatusTransport;
  readonly peer: string;
  readonly connectedSince: string;
  disconnectedAt?: string;
  readonly types: Map<TypeUrl, TypeStatus>;
}

export interface StatusOptions {
  /** How long a closed stream's status stays listed (default 60 s). */
  readonly keepClosedMs?: number;
}

export interface StatusEvents {
  onPush?(typeUrl: TypeUrl, bytes: number): void;
  onAck?(typeUrl: TypeUrl, latencyMs: number): void;
  onNack?(typeUrl: TypeUrl): void;
  onConnectionChange?(connected: number): void;
}

export class StatusRegistry {
  private readonly streams = new Map<number, SidecarStatus>();
  /** Closed streams kept for a while, oldest first, with the time they may be dropped. */
  private readonly closed = new Map<number, { status: SidecarStatus; dropAt: number }>();
  /** The closed streams of each node, so a node that comes back finds its own without a scan. */
  private readonly closedOf = new Map<string, Set<number>>();
  private nextId = 1;
  private readonly keepClosedMs: number;

  constructor(
    private readonly events: StatusEvents = {},
    o: StatusOptions = {},
  ) {
    this.keepClosedMs = o.keepClosedMs ?? 60_000;
  }

  open(nodeId: string, transport: StatusTransport, peer: string): SidecarStatus {
    this.dropExpired();
    // A sidecar that is back replaces what its closed streams left.
    for (const id of this.closedOf.get(nodeId) ?? []) this.closed.delete(id);
    this.closedOf.delete(nodeId);
    const s: SidecarStatus = {
      streamId: this.nextId++,
      nodeId,
      transport,
      peer,
      connectedSince: new Date().toISOString(),
      types: new Map(),
    };
    this.streams.set(s.streamId, s);
    this.events.onConnectionChange?.(this.streams.size);
    return s;
  }

  close(s: SidecarStatus): void {
    if (!this.streams.delete(s.streamId)) return;
    s.disconnectedAt = new Date().toISOString();
    this.closed.set(s.streamId, { status: s, dropAt: Date.now() + this.keepClosedMs });
    const ids = this.closedOf.get(s.nodeId) ?? new Set<number>();
    this.closedOf.set(s.nodeId, ids.add(s.streamId));
    this.dropExpired();
    this.events.onConnectionChange?.(this.streams.size);
  }

  /** Closed streams still within their grace period. */
  recentlyClosed(): SidecarStatus[] {
    this.dropExpired();
    return [...this.closed.values()].map((c) => c.status);
  }

  private dropExpired(now = Date.now()): void {
    for (const [id, c] of this.closed) {
      if (c.dropAt > now) break; // insertion order is closing order
      this.closed.delete(id);
      const ids = this.closedOf.get(c.status.nodeId);
      ids?.delete(id);
      if (ids?.size === 0) this.closedOf.delete(c.status.nodeId);
    }
  }

  type(s: SidecarStatus, typeUrl: TypeUrl): TypeStatus {
    let t = s.types.get(typeUrl);
    if (!t) s.types.set(typeUrl, (t = { pushes: 0, nacks: 0 }));
    return t;
  }

  pushed(
    s: SidecarStatus,
    typeUrl: TypeUrl,
    version: string,
    nonce: string,
    bytes: number,
    counts?: PushCounts,
  ): void {
    const t = this.type(s, typeUrl);
    t.sentVersion = version;
    t.pendingNonce = nonce;
    t.pushes++;
    if (counts) t.lastPush = counts;
    this.events.onPush?.(typeUrl, bytes);
  }

  acked(s: SidecarStatus, typeUrl: TypeUrl, version: string, latencyMs?: number): void {
    const t = this.type(s, typeUrl);
    t.ackedVersion = version;
    t.heldVersion = undefined;
    t.pendingNonce = undefined;
    if (latencyMs !== undefined) this.events.onAck?.(typeUrl, latencyMs);
  }

  /** The client already holds our current version (it said so on a new stream); nothing was sent. */
  held(s: SidecarStatus, typeUrl: TypeUrl, version: string): void {
    this.type(s, typeUrl).heldVersion = version;
  }

  nacked(s: SidecarStatus, typeUrl: TypeUrl, nack: NackRecord): void {
    const t = this.type(s, typeUrl);
    t.lastNack = nack;
    t.pendingNonce = undefined;
    t.nacks++;
    this.events.onNack?.(typeUrl);
  }

  all(): SidecarStatus[] {
    return [...this.streams.values()];
  }

  /** JSON for the admin API, types by short name (CDS, EDS, …); recently closed streams last. */
  toJSON(): object[] {
    return [...this.all(), ...this.recentlyClosed()].map((s) => ({
      streamId: s.streamId,
      nodeId: s.nodeId,
      transport: s.transport,
      peer: s.peer,
      connectedSince: s.connectedSince,
      ...(s.disconnectedAt ? { disconnectedAt: s.disconnectedAt } : {}),
      types: Object.fromEntries([...s.types].map(([t, v]) => [shortName(t), v])),
    }));
  }
}
