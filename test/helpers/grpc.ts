// Real gRPC for tests: a tiny imaging-query server that answers with its own name (so a test can
// count which instance served a call) and what its sidecar told it about the caller, and proxyless
// grpc-js-xds clients bootstrapped per channel against clinimesh's loopback plaintext ADS port.
import { Socket } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { register as registerXds, XdsChannelCredentials } from '@grpc/grpc-js-xds';

export interface ImagingQuery {
  study: string;
}

export interface ImagingAnswer {
  served_by: string;
  study: string;
  /** The x-forwarded-client-cert header the server's sidecar set: who called, as the sidecar proved it. */
  xfcc: string;
}

const json = {
  serialize: (value: unknown): Buffer => Buffer.from(JSON.stringify(value)),
  deserialize: (bytes: Buffer): unknown => JSON.parse(bytes.toString('utf8')),
};

/** One unary method with JSON bodies: no .proto file to ship. */
const imagingService: grpc.ServiceDefinition = {
  query: {
    path: '/clinimesh.test.Imaging/Query',
    requestStream: false,
    responseStream: false,
    requestSerialize: json.serialize,
    requestDeserialize: json.deserialize,
    responseSerialize: json.serialize,
    responseDeserialize: json.deserialize,
    originalName: 'Query',
  },
};

const ImagingClientCtor = grpc.makeGenericClientConstructor(imagingService, 'Imaging');

export interface GrpcUpstream {
  readonly name: string;
  /** Calls served so far; read it live. */
  readonly count: number;
  close(): Promise<void>;
}

/** An imaging-query server on `host:port`, plaintext h2c (its sidecar terminates mTLS in front of it). */
export async function startImagingServer({
  name,
  host,
  port,
}: {
  name: string;
  host: string;
  port: number;
}): Promise<GrpcUpstream> {
  let count = 0;
  const server = new grpc.Server();
  server.addService(imagingService, {
    query: (
      call: grpc.ServerUnaryCall<ImagingQuery, ImagingAnswer>,
      callback: grpc.sendUnaryData<ImagingAnswer>,
    ) => {
      count++;
      const xfcc = call.metadata.get('x-forwarded-client-cert').map(String).join(',');
      callback(null, { served_by: name, study: call.request.study, xfcc });
    },
  });
  await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    ),
  );
  return {
    name,
    get count() {
      return count;
    },
    close: () =>
      new Promise<void>((resolve) => server.tryShutdown(() => resolve())).then(() => server.forceShutdown()),
  };
}

export interface ImagingClient {
  query(study: string, timeoutMs?: number): Promise<ImagingAnswer>;
  close(): void;
}

/**
 * A proxyless client of `xds:///<target>`, with its own bootstrap (the per-channel test option, not
 * the process-wide GRPC_XDS_BOOTSTRAP). Security comes from the cluster's TLS context; without
 * one, XdsChannelCredentials falls back to plaintext.
 */
export function proxylessImagingClient(target: string, bootstrap: object): ImagingClient {
  registerXds();
  const client = new ImagingClientCtor(
    `xds:///${target}`,
    new XdsChannelCredentials(grpc.credentials.createInsecure()),
    {
      'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(bootstrap),
    },
  );
  const query = client['query'] as unknown as (
    req: ImagingQuery,
    meta: grpc.Metadata,
    opts: grpc.CallOptions,
    cb: (err: grpc.ServiceError | null, res?: ImagingAnswer) => void,
  ) => void;
  return {
    query: (study, timeoutMs = 5_000) =>
      new Promise((resolve, reject) => {
        query.call(
          client,
          { study },
          new grpc.Metadata(),
          { deadline: Date.now() + timeoutMs },
          (err, res) => (err || !res ? reject(err ?? new Error('empty response')) : resolve(res)),
        );
      }),
    close: () => client.close(),
  };
}

/**
 * Drops this process's connections to an xDS port, as the client process exiting would. A channel
 * bootstrapped per channel gets its own XdsClient, and closing the channel does not close that
 * client's connection to the control plane; it also never finishes its side after the server's
 * GOAWAY, so grpc-js's `tryShutdown` on the control plane would wait for it forever.
 */
export function dropConnectionsTo(port: number): number {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  const sockets = handles.filter(
    (h): h is Socket => h instanceof Socket && h.remotePort === port && h.remoteAddress === '127.0.0.1',
  );
  for (const s of sockets) s.destroy();
  return sockets.length;
}
