// The agent's local xDS proxy for proxyless gRPC applications (as pilot-agent's is for Istio's):
// gRPC's xDS clients cannot speak TLS to a control plane, so the application dials this loopback
// port in plaintext and the agent carries each ADS stream, byte for byte, to the control plane over
// mutual TLS with its own credential. The control plane then authenticates the application's node
// exactly as it does an Envoy's, and needs no plaintext port. With several control-plane replicas,
// each stream goes to the one that last worked; a stream that fails as UNAVAILABLE moves the next
// stream (the application re-opens it) to the next replica.
import * as grpc from '@grpc/grpc-js';
import { CONTROL_PLANE_SAN_REGEX } from '../bootstrap/envoy-bootstrap.ts';
import { uriSans } from '../ca/spiffe.ts';

const ADS_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const bytes = (b: Buffer): Buffer => b;

export interface ProxyCredential {
  readonly caPem: string;
  readonly certChainPem: string;
  readonly keyPem: string;
}

export interface XdsProxy {
  readonly port: number;
  close(): Promise<void>;
}

function upstreamCredentials(c: ProxyCredential): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(
    Buffer.from(c.caPem),
    Buffer.from(c.keyPem),
    Buffer.from(c.certChainPem),
    {
      // The control plane in any trust domain the CA signs; the host name dialled does not matter.
      checkServerIdentity: (_host, cert) => {
        return uriSans(cert.subjectaltname).some((u) => new RegExp(CONTROL_PLANE_SAN_REGEX).test(u))
          ? undefined
          : new Error('the xDS server is not the clinimesh control plane');
      },
    },
  );
}

/**
 * Listens on 127.0.0.1:`port` (0 picks one). `credential()` is read for every new stream, so streams
 * opened after a renewal use the renewed certificate.
 */
export async function startXdsProxy(
  controlPlanes: readonly string[],
  credential: () => ProxyCredential,
  port = 0,
): Promise<XdsProxy> {
  if (controlPlanes.length === 0) throw new TypeError('the xDS proxy needs a control plane');
  let current = 0;
  const server = new grpc.Server();
  const clients = new Set<grpc.Client>();
  const service: grpc.ServiceDefinition = {
    StreamAggregatedResources: {
      path: ADS_METHOD,
      requestStream: true,
      responseStream: true,
      requestSerialize: bytes,
      requestDeserialize: bytes,
      responseSerialize: bytes,
      responseDeserialize: bytes,
    },
  };
  server.addService(service, {
    StreamAggregatedResources: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
      const target = current;
      const client = new grpc.Client(controlPlanes[target]!, upstreamCredentials(credential()));
      clients.add(client);
      const upstream = client.makeBidiStreamRequest(ADS_METHOD, bytes, bytes);
      const finish = () => {
        clients.delete(client);
        client.close();
      };
      call.on('data', (b: Buffer) => upstream.write(b));
      call.on('end', () => upstream.end());
      call.on('cancelled', () => {
        upstream.cancel();
        finish();
      });
      upstream.on('data', (b: Buffer) => call.write(b));
      upstream.on('error', (e: grpc.ServiceError) => {
        if (e.code === grpc.status.UNAVAILABLE && current === target)
          current = (target + 1) % controlPlanes.length;
        // The control plane's verdict (PERMISSION_DENIED, UNAVAILABLE…) reaches the application as is.
        call.emit('error', { code: e.code, details: e.details, metadata: e.metadata });
        finish();
      });
      upstream.on('end', () => {
        call.end();
        finish();
      });
    },
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of clients) c.close();
        server.forceShutdown();
        resolve();
      }),
  };
}
