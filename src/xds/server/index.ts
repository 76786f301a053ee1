// Starts the xDS transports: gRPC ADS and REST-JSON polling, on their own ports.
import { createServer, type Server as HttpServer } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import type { SnapshotCache } from '../cache/snapshot.ts';
import type { StatusRegistry } from '../status.ts';
import { adsHandlers, adsServiceDefinition } from './ads.ts';
import type { XdsHooks } from './hooks.ts';
import { RestXds } from './rest.ts';

export interface XdsServerOptions {
  readonly host: string;
  /** 0 picks a free port; the bound port is returned. */
  readonly grpcPort: number;
  readonly restPort: number;
  readonly cache: SnapshotCache;
  readonly hooks: XdsHooks;
  readonly statuses: StatusRegistry;
  readonly longPollMs?: number;
  readonly grpcCredentials?: grpc.ServerCredentials;
}

export interface XdsServers {
  readonly grpcPort: number;
  readonly restPort: number;
  close(): Promise<void>;
}

export async function startXdsServers(o: XdsServerOptions): Promise<XdsServers> {
  const grpcServer = new grpc.Server({
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_permit_without_calls': 1,
    'grpc.max_receive_message_length': 16 << 20,
  });
  grpcServer.addService(adsServiceDefinition, adsHandlers(o));
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync(`${o.host}:${o.grpcPort}`, o.grpcCredentials ?? grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );

  const rest = new RestXds({ cache: o.cache, hooks: o.hooks, statuses: o.statuses, longPollMs: o.longPollMs ?? 30_000 });
  const http: HttpServer = createServer((req, res) => {
    if (!rest.handle(req, res)) res.writeHead(404).end();
  });
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
    close: async () => {
      rest.close();
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeAllConnections();
      await closed;
      await new Promise<void>((resolve) => grpcServer.tryShutdown(() => resolve()));
    },
  };
}
