// Per-sidecar sync status: what each connected sidecar has ACKed, what is in flight, and the last
// NACK with Envoy's own words. The server records; the admin API reads.
import { shortName, type TypeUrl } from './resources/type-urls.ts';

export interface NackRecord {
  readonly version: string;
  readonly nonce: string;
  readonly error: string;
  readonly at: string;
}

export interface TypeStatus {
  ackedVersion?: string;
  sentVersion?: string;
  pendingNonce?: string;
  lastNack?: NackRecord;
  pushes: number;
  nacks: number;
}

export interface SidecarStatus {
  readonly streamId: number;
  readonly nodeId: string;
  readonly transport: 'ads' | 'rest';
  readonly peer: string;
  readonly connectedSince: string;
  readonly types: Map<TypeUrl, TypeStatus>;
}

export interface StatusEvents {
  onPush?(typeUrl: TypeUrl, bytes: number): void;
  onAck?(typeUrl: TypeUrl, latencyMs: number): void;
  onNack?(typeUrl: TypeUrl): void;
  onConnectionChange?(connected: number): void;
}

export class StatusRegistry {
  private readonly streams = new Map<number, SidecarStatus>();
  private nextId = 1;

  constructor(private readonly events: StatusEvents = {}) {}

  open(nodeId: string, transport: 'ads' | 'rest', peer: string): SidecarStatus {
    const s: SidecarStatus = { streamId: this.nextId++, nodeId, transport, peer, connectedSince: new Date().toISOString(), types: new Map() };
    this.streams.set(s.streamId, s);
    this.events.onConnectionChange?.(this.streams.size);
    return s;
  }

  close(s: SidecarStatus): void {
    this.streams.delete(s.streamId);
    this.events.onConnectionChange?.(this.streams.size);
  }

  type(s: SidecarStatus, typeUrl: TypeUrl): TypeStatus {
    let t = s.types.get(typeUrl);
    if (!t) s.types.set(typeUrl, (t = { pushes: 0, nacks: 0 }));
    return t;
  }

  pushed(s: SidecarStatus, typeUrl: TypeUrl, version: string, nonce: string, bytes: number): void {
    const t = this.type(s, typeUrl);
    t.sentVersion = version;
    t.pendingNonce = nonce;
    t.pushes++;
    this.events.onPush?.(typeUrl, bytes);
  }

  acked(s: SidecarStatus, typeUrl: TypeUrl, version: string, latencyMs?: number): void {
    const t = this.type(s, typeUrl);
    t.ackedVersion = version;
    t.pendingNonce = undefined;
    if (latencyMs !== undefined) this.events.onAck?.(typeUrl, latencyMs);
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

  /** JSON for the admin API, types by short name (CDS, EDS, …). */
  toJSON(): object[] {
    return this.all().map((s) => ({
      streamId: s.streamId,
      nodeId: s.nodeId,
      transport: s.transport,
      peer: s.peer,
      connectedSince: s.connectedSince,
      types: Object.fromEntries([...s.types].map(([t, v]) => [shortName(t), v])),
    }));
  }
}
