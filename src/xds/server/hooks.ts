// What the transport asks of the rest of the control plane. The server never generates config:
// `connect` authenticates a node and makes sure the cache holds a snapshot for it; `disconnect` says
// a transport let go of it (an ADS stream closed, a REST poller stopped polling), once per ADS stream
// that connected and once per REST poller swept.
import type { Result } from '../../errors.ts';
import type { NodeInfo } from './node.ts';

export interface ConnectContext {
  readonly transport: 'ads' | 'rest';
  /** Remote address, e.g. `ipv4:127.0.0.1:50123`. */
  readonly peer: string;
  /** The SPIFFE ID the client proved with its TLS certificate; absent on a plaintext listener. */
  readonly credential?: string;
  /** The request came through the explicit, loopback-only plaintext listener (proxyless tests). */
  readonly plaintext?: boolean;
}

export interface XdsHooks {
  /** Returns the snapshot key for this node, or why it may not connect. */
  connect(node: NodeInfo, ctx: ConnectContext): Result<string>;
  disconnect?(key: string, ctx: ConnectContext): void;
}
