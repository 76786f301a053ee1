// Starts the xDS transports: gRPC ADS and REST-JSON polling over mutual TLS, and, only when asked, a
// plaintext gRPC listener bound to loopback for proxyless clients that cannot do TLS to a control plane.
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server as HttpServer,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import * as grpc from '@grpc/grpc-js';
import type { SnapshotCache } from '../cache/snapshot.ts';
import type { StatusRegistry } from '../status.ts';
import { adsHandlers, adsServiceDefinition } from './ads.ts';
import {
  listenGrpc,
  PeerCredentials,
  secureContextOptions,
  type GrpcListener,
  type XdsTlsSource,
} from './grpc-listener.ts';
import type { XdsHooks } from './hooks.ts';
import { RestXds } from './rest.ts';

export type { XdsTls, XdsTlsSource } from './grpc-listener.ts';

export interface XdsServerOptions {
  readonly host: string;
  /** 0 picks a free port; the bound port is returned. */
  readonly grpcPort: number;
  readonly restPort: number;
  /** A plaintext gRPC port on 127.0.0.1 (tests with proxyless clients only); undefined: none. */
  readonly plaintextGrpcPort?: number;
  readonly cache: SnapshotCache;
  readonly hooks: XdsHooks;
  readonly statuses: StatusRegistry;
  readonly longPollMs?: number;
  /** Without it the main ports are plaintext too (development only; the CLI always passes it). */
  readonly tls?: XdsTlsSource;
  /** Other HTTP routes on the REST port (the node agents' identity API); returns false when not its own. */
  readonly routes?: (req: IncomingMessage, res: ServerResponse) => boolean;
}

export interface XdsServers {
  readonly grpcPort: number;
  readonly restPort: number;
  readonly plaintextGrpcPort?: number;
  close(): Promise<void>;
}

/** How long streams get to end on their own at shutdown before they are cut. */
const SHUTDOWN_GRACE_MS = 2_000;

/** A gRPC server for ADS, listening on host:port (see grpc-listener.ts for why we listen ourselves). */
async function serveGrpc(
  o: XdsServerOptions,
  host: string,
  port: number,
  tls: XdsTlsSource | undefined,
  plaintext: boolean,
): Promise<{ server: grpc.Server; listener: GrpcListener }> {
  const server = new grpc.Server({
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_receive_message_length': 16 << 20,
    // Channelz tracks every connection and call for a debugging service we do not expose.
    'grpc.enable_channelz': 0,
  });
  const peers = new PeerCredentials();
  server.addService(adsServiceDefinition, adsHandlers({ ...o, plaintext, credentialOf: peers.of }));
  const listener = await listenGrpc(server, { host, port }, tls && { source: tls, peers });
  return { server, listener };
}

export async function startXdsServers(o: XdsServerOptions): Promise<XdsServers> {
  const main = await serveGrpc(o, o.host, o.grpcPort, o.tls, false);
  const plain =
    o.plaintextGrpcPort === undefined
      ? undefined
      : await serveGrpc(o, '127.0.0.1', o.plaintextGrpcPort, undefined, true);

  const rest = new RestXds({
    cache: o.cache,
    hooks: o.hooks,
    statuses: o.statuses,
    longPollMs: o.longPollMs ?? 30_000,
  });
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (!rest.handle(req, res) && !o.routes?.(req, res)) res.writeHead(404).end();
  };
  const secure = secureContextOptions;
  // A client certificate is asked for but not required at the handshake: an agent attesting for the
  // first time has none yet. Every route that needs one checks `socket.authorized` itself.
  const https = o.tls
    ? createHttpsServer({ ...secure(o.tls.current()), requestCert: true, rejectUnauthorized: false }, handler)
    : undefined;
  if (https) o.tls?.onChange((t) => https.setSecureContext(secure(t)));
  const http: HttpServer = https ?? createHttpServer(handler);
  const restPort = await new Promise<number>((resolve, reject) => {
    http.once('error', reject);
    http.listen(o.restPort, o.host, () => {
      const addr = http.address();
      resolve(typeof addr === 'object' && addr ? addr.port : o.restPort);
    });
  });

  return {
    grpcPort: main.listener.port,
    restPort,
    plaintextGrpcPort: plain?.listener.port,
    close: async () => {
      rest.close();
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await closed;
      // Streams never end by themselves; give them a moment, then cut them (clients reconnect).
      const shutdown = (server: grpc.Server) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => server.forceShutdown(), SHUTDOWN_GRACE_MS);
          server.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      const served = [main, plain].flatMap((s) => (s ? [s] : []));
      await Promise.all(served.flatMap((s) => [shutdown(s.server), s.listener.close(SHUTDOWN_GRACE_MS)]));
    },
  };
}
