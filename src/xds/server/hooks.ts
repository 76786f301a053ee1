// What the transport asks of the rest of the control plane. The server never generates config:
// `connect` authenticates a node and makes sure the cache holds a snapshot for it; `disconnect` says
// a transport let go of it (an ADS stream closed, a REST poller stopped polling), once per ADS stream
// that connected and once per REST poller swept.
import { fail, ok, type Result } from '../../errors.ts';
import { nodeTooLarge, type NodeInfo } from './node.ts';

export interface ConnectContext {
  readonly transport: 'ads' | 'rest';
  /** Remote address, e.g. `ipv4:127.0.0.1:50123`. */
  readonly peer: string;
  /** The SPIFFE ID the client proved with its TLS certificate; absent on a plaintext listener. */
  readonly credential?: string;
  /** The one instance that certificate is bound to (its evidence named it); absent: any instance. */
  readonly instance?: string;
  /** The request came through the explicit, loopback-only plaintext listener (proxyless tests). */
  readonly plaintext?: boolean;
}

export interface XdsHooks {
  /** Returns the snapshot key for this node, or why it may not connect. */
  connect(node: NodeInfo, ctx: ConnectContext): Result<string>;
  disconnect?(key: string, ctx: ConnectContext): void;
}

/**
 * The first request of a stream, admitted: it names a node, of bounded size, that `connect` accepts.
 * Returns the node and its snapshot key, or the problem to close the stream with.
 */
export function admitNode(
  node: NodeInfo | undefined,
  hooks: XdsHooks,
  ctx: ConnectContext,
): Result<{ key: string; node: NodeInfo }> {
  if (!node)
    return fail([{ code: 'UNAUTHENTICATED', message: 'the first request of a stream must carry node' }]);
  const tooLarge = nodeTooLarge(node);
  if (tooLarge) return fail([tooLarge]);
  const connected = hooks.connect(node, ctx);
  return connected.ok ? ok({ key: connected.value, node }) : connected;
}
