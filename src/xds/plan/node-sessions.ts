// Who holds each node now: its open transports (ADS streams counted, a REST poller once until it is
// swept) and what they said about it when admitted. Every connection naming a node id shares that
// node's snapshot, and the snapshot is planned from what the connecting client says (transport,
// audit log, SDS directory, proxyless, admin port). So while a node is held, a connection that says
// something else is refused rather than re-planning the node under the sidecar holding it; its own
// reconnects say the same and are admitted, beside an old stream not yet seen to close. Once every
// connection has closed, the next may say something new (a sidecar reconfigured and restarted).
// The plaintext port authenticates no one: it never reaches a node a client with a certificate held.
import type { Problem } from '../../errors.ts';
import type { SidecarRef } from '../generate/types.ts';
import type { ConnectContext } from '../server/hooks.ts';
import { sidecarDifferences } from './sidecar-differences.ts';

interface Held {
  ads: number;
  rest: boolean;
  /** What the first of the open connections said; the others said the same. */
  readonly ref: SidecarRef;
}

export class NodeSessions {
  private readonly held = new Map<string, Held>();
  /** Nodes a client with a certificate has held, until the reconciler forgets them. */
  private readonly heldWithCertificate = new Set<string>();

  /** Why a connection saying `ref` may not join its node now; undefined when it may. */
  refusal(ref: SidecarRef, ctx: ConnectContext): Problem | undefined {
    if (ctx.plaintext && this.heldWithCertificate.has(ref.nodeId))
      return {
        code: 'PERMISSION_DENIED',
        field: 'node.id',
        message: `node ${ref.nodeId} is served to clients with a certificate; the plaintext xDS port cannot claim it`,
      };
    const held = this.held.get(ref.nodeId);
    const differ = held ? sidecarDifferences(held.ref, ref) : [];
    if (differ.length === 0) return undefined;
    return {
      code: 'CONFLICT',
      field: 'node.metadata',
      message: `node ${ref.nodeId} is connected already with other ${differ.join(', ')}; it is not planned again while that connection is open`,
    };
  }

  opened(ref: SidecarRef, ctx: ConnectContext): void {
    const held = this.held.get(ref.nodeId) ?? { ads: 0, rest: false, ref };
    if (ctx.transport === 'ads') held.ads++;
    else held.rest = true;
    this.held.set(ref.nodeId, held);
    if (!ctx.plaintext) this.heldWithCertificate.add(ref.nodeId);
  }

  /** Returns whether the node is left with no open connection. */
  closed(nodeId: string, ctx: ConnectContext): boolean {
    const held = this.held.get(nodeId);
    if (!held) return false;
    if (ctx.transport === 'ads') held.ads = Math.max(0, held.ads - 1);
    else held.rest = false;
    if (held.ads > 0 || held.rest) return false;
    this.held.delete(nodeId);
    return true;
  }

  isHeld(nodeId: string): boolean {
    return this.held.has(nodeId);
  }

  nodes(): string[] {
    return [...this.held.keys()];
  }

  /** The reconciler forgot the node (released and no longer declared): nothing holds it any more. */
  forget(nodeId: string): void {
    if (!this.held.has(nodeId)) this.heldWithCertificate.delete(nodeId);
  }
}
