// gRPC transport for ADS, state of the world and incremental (delta). Moves bytes only: requests are
// decoded and handed to a SotwStream or a DeltaStream; responses arrive pre-encoded. Writes are bounded per stream: once responses that
// gRPC has not yet handed to HTTP/2 (flow control holds them for a client that does not read) reach
// WRITE_HIGH_WATER bytes, or grpc-js says its buffer is full, the stream stops writing until they
// drain, and then sends only the latest version of each type.
import * as grpc from '@grpc/grpc-js';
import type { Problem } from '../../errors.ts';
import { log } from '../../log.ts';
import type { SnapshotCache } from '../cache/snapshot.ts';
import type { StatusRegistry } from '../status.ts';
import { DeltaStream } from './delta-stream.ts';
import { decodeDeltaRequestBinary, type DeltaRequest } from './delta-wire.ts';
import type { ConnectContext, XdsHooks } from './hooks.ts';
import { decodeRequestBinary, type XdsRequest } from './node.ts';
import type { PeerIdentity } from './peer.ts';
import type { StreamIo } from './ads-stream.ts';
import { SotwStream } from './sotw-stream.ts';

const ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService';
/** Bytes written but not yet flushed beyond which a stream holds further responses. */
export const WRITE_HIGH_WATER = 256 << 10;
const logger = log.child({ component: 'xds' });
const identity = (b: Buffer): Buffer => b;

export const adsServiceDefinition: grpc.ServiceDefinition = {
  StreamAggregatedResources: {
    path: `${ADS}/StreamAggregatedResources`,
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: decodeRequestBinary,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  DeltaAggregatedResources: {
    path: `${ADS}/DeltaAggregatedResources`,
    requestStream: true,
    responseStream: true,
    requestSerialize: identity,
    requestDeserialize: decodeDeltaRequestBinary,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

const STATUS_OF: Partial<Record<Problem['code'], grpc.status>> = {
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  NOT_FOUND: grpc.status.NOT_FOUND,
  // Another connection holds the node with other node metadata (see plan/node-sessions.ts).
  CONFLICT: grpc.status.ALREADY_EXISTS,
};

export interface AdsDeps {
  readonly cache: SnapshotCache;
  readonly hooks: XdsHooks;
  readonly statuses: StatusRegistry;
  /** This server is the explicit plaintext (loopback-only) listener. */
  readonly plaintext?: boolean;
  /** What the client at a peer address proved at the TLS handshake (see grpc-listener.ts). */
  readonly credentialOf?: (peer: string) => PeerIdentity | undefined;
}

/** What the gRPC handler drives: a SotW or a delta stream state machine. */
interface StreamMachine<Req> {
  onRequest(req: Req): void;
  resume(): void;
  close(): void;
}

/** One gRPC stream with bounded writes, for either protocol variant. */
function serveStream<Req>(
  call: grpc.ServerDuplexStream<Req, Buffer>,
  deps: AdsDeps,
  make: (ctx: ConnectContext, io: StreamIo) => StreamMachine<Req>,
): void {
  let closed = false;
  let unflushed = 0;
  let full = false;
  const flushed = (bytes: number) => {
    unflushed -= bytes;
    if (full && !closed && unflushed < WRITE_HIGH_WATER && call.writableLength === 0) {
      full = false;
      logger.debug({ peer: ctx.peer }, 'stream drained; sending the latest of what waited');
      stream.resume();
    }
  };
  // Delta streams connect as 'ads' too: the config sources a sidecar gets are the same ADS ones.
  const peer = call.getPeer();
  const proved = deps.credentialOf?.(peer);
  const ctx: ConnectContext = {
    transport: 'ads',
    peer,
    credential: proved?.spiffeId,
    ...(proved?.instance && { instance: proved.instance }),
    plaintext: deps.plaintext,
  };
  const stream = make(ctx, {
    send: (bytes) => {
      if (closed) return false;
      unflushed += bytes.length;
      const room = call.write(bytes, () => flushed(bytes.length));
      full = !room || unflushed >= WRITE_HIGH_WATER;
      if (full)
        logger.debug(
          { peer: ctx.peer, unflushed, buffered: call.writableLength },
          'stream full; holding further responses',
        );
      return !full;
    },
    close: (problem) => {
      if (closed) return;
      closed = true;
      call.emit('error', {
        code: STATUS_OF[problem.code] ?? grpc.status.INVALID_ARGUMENT,
        details: problem.message,
      });
      stream.close();
    },
  });
  call.on('data', (req: Req) => {
    if (!closed) stream.onRequest(req);
  });
  const end = () => {
    if (closed) return;
    closed = true;
    stream.close();
    call.end();
  };
  call.on('end', end);
  call.on('error', end);
  call.on('cancelled', end);
  call.on('drain', () => flushed(0));
}

export function adsHandlers(deps: AdsDeps): grpc.UntypedServiceImplementation {
  return {
    StreamAggregatedResources: (call: grpc.ServerDuplexStream<XdsRequest, Buffer>) =>
      serveStream(call, deps, (ctx, io) => new SotwStream(deps.cache, deps.hooks, deps.statuses, ctx, io)),
    DeltaAggregatedResources: (call: grpc.ServerDuplexStream<DeltaRequest, Buffer>) =>
      serveStream(call, deps, (ctx, io) => new DeltaStream(deps.cache, deps.hooks, deps.statuses, ctx, io)),
  };
}
