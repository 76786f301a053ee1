// Raw xDS clients for tests that speak to the control plane directly (not through Envoy): REST polls
// over mutual TLS, and ADS streams with grpc-js, with or without a workload credential.
import { request } from 'node:https';
import * as grpc from '@grpc/grpc-js';
import type { RunningControlPlane } from '../../src/main.ts';

export interface Credential {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

export function credentialFor(cp: RunningControlPlane, service: string, namespace = 'clinical'): Credential {
  const c = cp.ca.issueWorkload({ namespace, service });
  return { cert: c.certChainPem, key: c.privateKeyPem, ca: cp.ca.trustBundle().join('\n') };
}

/** POST /v3/discovery:<type> over mutual TLS; resolves with the status and parsed body. */
export function restPoll(
  cp: RunningControlPlane,
  type: string,
  body: unknown,
  cred: Credential,
): Promise<{ status: number; json?: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: cp.host,
        port: cp.xdsRestPort,
        path: `/v3/discovery:${type}`,
        method: 'POST',
        cert: cred.cert,
        key: cred.key,
        ca: cred.ca,
        checkServerIdentity: () => undefined,
        agent: false,
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, json: text ? (JSON.parse(text) as unknown) : undefined }),
        );
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

const ADS_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

/**
 * Opens an ADS stream, sends one DiscoveryRequest (as JSON-encoded protobuf via the caller's
 * encoder) and resolves with the first response or the stream's error.
 */
export function adsFirstResponse(
  cp: RunningControlPlane,
  request: Uint8Array,
  cred: Credential | undefined,
): Promise<{ response?: Buffer; error?: grpc.ServiceError }> {
  const creds = cred
    ? grpc.credentials.createSsl(Buffer.from(cred.ca), Buffer.from(cred.key), Buffer.from(cred.cert), {
        checkServerIdentity: () => undefined,
      })
    : grpc.credentials.createSsl(Buffer.from(credCa(cp)), null, null, {
        checkServerIdentity: () => undefined,
      });
  const client = new grpc.Client(`${cp.host}:${cp.xdsPort}`, creds);
  return new Promise((resolve) => {
    const call = client.makeBidiStreamRequest(
      ADS_PATH,
      (b: Uint8Array) => Buffer.from(b),
      (b: Buffer) => b,
    );
    const done = (r: { response?: Buffer; error?: grpc.ServiceError }) => {
      call.cancel();
      client.close();
      resolve(r);
    };
    call.on('data', (response: Buffer) => done({ response }));
    call.on('error', (error: grpc.ServiceError) => done({ error }));
    call.write(request);
  });
}

function credCa(cp: RunningControlPlane): string {
  return cp.ca.trustBundle().join('\n');
}
