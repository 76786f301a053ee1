// The listening sockets of the gRPC ports. We accept connections (and do the TLS handshake)
// ourselves and hand each one to grpc-js, rather than letting grpc-js listen, for three reasons:
// - a backlog sized for a fleet that connects at once (after a control-plane restart, a rollout):
//   grpc-js listens with Node's default of 511, and at thousands of simultaneous connects the
//   kernel drops the rest, so sidecars wait out SYN retransmits (1 s, 3 s, 7 s…);
// - the client's SPIFFE ID (and bound instance) is read once per connection from its certificate, cheaply
//   instead of grpc-js's getAuthContext reading it again on every stream;
// - rotation swaps the secure context of the one listener we own, and the TLS settings are ours
//   (no session tickets, below).
import { constants } from 'node:crypto';
import { createServer as createNetServer, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer, type SecureContextOptions, type TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { log } from '../../log.ts';
import { peerIdentity, type PeerIdentity } from './peer.ts';

/** Pending connections the kernel holds for us (capped by net.core.somaxconn). */
export const LISTEN_BACKLOG = 4096;

const logger = log.child({ component: 'xds' });

/** PEM material of the control plane's own serving certificate and the roots clients are checked against. */
export interface XdsTls {
  readonly certChainPem: string;
  readonly privateKeyPem: string;
  readonly trustBundlePem: string;
}

/** Where the serving TLS material comes from; it changes on rotation without a restart. */
export interface XdsTlsSource {
  current(): XdsTls;
  onChange(listener: (tls: XdsTls) => void): void;
}

/** What each open TLS connection's client proved (SPIFFE ID, bound instance), by peer address. */
export class PeerCredentials {
  private readonly byPeer = new Map<string, { socket: Socket; credential: PeerIdentity | undefined }>();

  /**
   * What the client at `peer` (as grpc-js's `call.getPeer()` names it) proved with its
   * certificate; undefined on a plaintext listener or without a SPIFFE URI.
   */
  readonly of = (peer: string): PeerIdentity | undefined => this.byPeer.get(peer)?.credential;

  add(socket: Socket, credential: PeerIdentity | undefined): void {
    // grpc-js reports `${remoteAddress}:${remotePort}` as the call's peer.
    const peer = `${socket.remoteAddress}:${socket.remotePort}`;
    this.byPeer.set(peer, { socket, credential });
    socket.once('close', () => this.byPeer.get(peer)?.socket === socket && this.byPeer.delete(peer));
  }
}

export interface GrpcListener {
  readonly port: number;
  /**
   * Stops accepting; resolves once every connection handed over has closed, cutting those still
   * open after `graceMs` (grpc-js's forceShutdown does not reach sessions of injected connections
   * when channelz is off).
   */
  close(graceMs: number): Promise<void>;
}

/** A TLS handshake not finished by then is cut: a socket that never says hello holds nothing. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

export function secureContextOptions(t: XdsTls): SecureContextOptions {
  return {
    cert: t.certChainPem,
    key: t.privateKeyPem,
    ca: t.trustBundlePem,
    // No session tickets: making them is ~20 % of a handshake's CPU here, and they would only
    // resume a connection to this very process (the ticket key is made at start), which a sidecar
    // reconnecting after a restart or to another replica cannot use. Here, not on the server only:
    // setSecureContext on rotation resets the options it is not given.
    secureOptions: constants.SSL_OP_NO_TICKET,
  };
}

/**
 * Listens on host:port and hands every connection to `server`; with `tls`, only after a verified
 * handshake, recording in `peers` what the client proved.
 */
export async function listenGrpc(
  server: grpc.Server,
  address: { readonly host: string; readonly port: number },
  tls?: { readonly source: XdsTlsSource; readonly peers: PeerCredentials },
): Promise<GrpcListener> {
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  // Every accepted socket, handed over or still in its handshake, so close() can cut them all.
  const sockets = new Set<Socket>();
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  let closing = false;
  const hand = (socket: Socket) => {
    if (closing) return void socket.destroy();
    track(socket);
    // The HTTP/2 session handles what it can; an error on a socket nobody listens to would throw.
    socket.on('error', (e) =>
      logger.debug({ peer: socket.remoteAddress, error: e.message }, 'xDS connection error'),
    );
    injector.injectConnection(socket);
  };

  let listener: Server;
  if (tls) {
    const secure = createTlsServer({
      ...secureContextOptions(tls.source.current()),
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
      handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
    });
    secure.on('connection', track);
    secure.on('secureConnection', (socket: TLSSocket) => {
      tls.peers.add(socket, peerIdentity(socket));
      hand(socket);
    });
    secure.on('tlsClientError', (e, socket) =>
      logger.debug(
        { peer: `${socket.remoteAddress}:${socket.remotePort}`, error: e.message },
        'TLS handshake failed',
      ),
    );
    tls.source.onChange((t) => secure.setSecureContext(secureContextOptions(t)));
    listener = secure;
  } else listener = createNetServer((socket) => hand(socket));

  const bound = await new Promise<number>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen({ ...address, backlog: LISTEN_BACKLOG }, () => {
      listener.off('error', reject);
      const addr = listener.address();
      resolve(typeof addr === 'object' && addr ? addr.port : address.port);
    });
  });
  return {
    port: bound,
    close: (graceMs) =>
      new Promise<void>((resolve) => {
        closing = true;
        const cut = setTimeout(() => sockets.forEach((s) => s.destroy()), graceMs);
        listener.close(() => {
          clearTimeout(cut);
          resolve();
        });
      }),
  };
}
