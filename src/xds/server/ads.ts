// gRPC transport for ADS (state of the world). Moves bytes only: requests are decoded and handed to
// a SotwStream; responses arrive pre-encoded.
import * as grpc from '@grpc/grpc-js';
import type { Problem } from '../../errors.ts';
import type { SnapshotCache } from '../cache/snapshot.ts';
import type { StatusRegistry } from '../status.ts';
import type { XdsHooks } from './hooks.ts';
import { decodeRequestBinary, type XdsRequest } from './node.ts';
import { spiffeIdOf } from './peer.ts';
import { SotwStream } from './sotw-stream.ts';

const ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService';
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
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
};

const STATUS_OF: Partial<Record<Problem['code'], grpc.status>> = {
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  NOT_FOUND: grpc.status.NOT_FOUND,
};

export interface AdsDeps {
  readonly cache: SnapshotCache;
  readonly hooks: XdsHooks;
  readonly statuses: StatusRegistry;
  /** This server is the explicit plaintext (loopback-only) listener. */
  readonly plaintext?: boolean;
}

export function adsHandlers(deps: AdsDeps): grpc.UntypedServiceImplementation {
  return {
    StreamAggregatedResources: (call: grpc.ServerDuplexStream<XdsRequest, Buffer>) => {
      let closed = false;
      const ctx = { transport: 'ads' as const, peer: call.getPeer(), credential: spiffeIdOf(call.getAuthContext().sslPeerCertificate), plaintext: deps.plaintext };
      const stream = new SotwStream(deps.cache, deps.hooks, deps.statuses, ctx, {
        send: (bytes) => {
          if (!closed) call.write(bytes);
        },
        close: (problem) => {
          if (closed) return;
          closed = true;
          call.emit('error', { code: STATUS_OF[problem.code] ?? grpc.status.INVALID_ARGUMENT, details: problem.message });
          stream.close();
        },
      });
      call.on('data', (req: XdsRequest) => {
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
    },
    DeltaAggregatedResources: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: 'delta xDS is not served yet; use state of the world (GRPC)' });
    },
  };
}
