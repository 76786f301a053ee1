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
import type { XdsHooks } from './hooks.ts';
import { RestXds } from './rest.ts';

/** PEM material of the control plane's own serving certificate and the roots clients are checked against. */
export interface XdsTls {
  readonly certChainPem: string;
  readonly privateKeyPem: string;
  readonly trustBundlePem: string;
}

/** Where the serving TLS material comes from; it changes on rotation without a restart. */
export interface XdsTlsSource extends grpc.experimental.CertificateProvider {
  current(): XdsTls;
  onChange(listener: (tls: XdsTls) => void): void;
}

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

function bindGrpc(server: grpc.Server, address: string, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync(address, creds, (err, port) => (err ? reject(err) : resolve(port))),
  );
}

function grpcServer(o: XdsServerOptions, plaintext: boolean): grpc.Server {
  const server = new grpc.Server({
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_receive_message_length': 16 << 20,
  });
  server.addService(adsServiceDefinition, adsHandlers({ ...o, plaintext }));
  return server;
}

export async function startXdsServers(o: XdsServerOptions): Promise<XdsServers> {
  const main = grpcServer(o, false);
  const creds = o.tls
    ? grpc.experimental.createCertificateProviderServerCredentials(o.tls, o.tls, true)
    : grpc.ServerCredentials.createInsecure();
  const grpcPort = await bindGrpc(main, `${o.host}:${o.grpcPort}`, creds);

  let plain: grpc.Server | undefined;
  let plaintextGrpcPort: number | undefined;
  if (o.plaintextGrpcPort !== undefined) {
    plain = grpcServer(o, true);
    plaintextGrpcPort = await bindGrpc(
      plain,
      `127.0.0.1:${o.plaintextGrpcPort}`,
      grpc.ServerCredentials.createInsecure(),
    );
  }

  const rest = new RestXds({
    cache: o.cache,
    hooks: o.hooks,
    statuses: o.statuses,
    longPollMs: o.longPollMs ?? 30_000,
  });
  const handler = (req: IncomingMessage, res: ServerResponse) => {
    if (!rest.handle(req, res) && !o.routes?.(req, res)) res.writeHead(404).end();
  };
  const secure = (t: XdsTls) => ({ cert: t.certChainPem, key: t.privateKeyPem, ca: t.trustBundlePem });
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
    grpcPort,
    restPort,
    plaintextGrpcPort,
    close: async () => {
      rest.close();
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await closed;
      // Streams never end by themselves; give them a moment, then cut them (clients reconnect).
      const shutdown = (server: grpc.Server) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(() => server.forceShutdown(), 2_000);
          server.tryShutdown(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      await Promise.all([main, plain].map((server) => server && shutdown(server)));
    },
  };
}
