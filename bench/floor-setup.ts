// What the floor benchmarks (tls-floor.ts, push-floor.ts) share: the certificates they handshake
// with (a fresh CA in a temporary directory, the control plane's serving certificate from it and one
// workload's, as a deployment has them; removed again by `dispose`), a grpc-js server behind our
// listener on loopback, as `serve` runs it, and asking the child process a server runs in.
import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../src/ca/index.ts';
import type * as grpc from '@grpc/grpc-js';
import { listenGrpc, PeerCredentials, type XdsTls } from '../src/xds/server/grpc-listener.ts';

export interface FloorCredentials {
  /** What the server presents and checks clients against. */
  readonly server: XdsTls;
  /** What a sidecar presents, and the roots it checks the server against. */
  readonly client: { readonly ca: string; readonly cert: string; readonly key: string };
  dispose(): Promise<void>;
}

export async function floorCredentials(name: string): Promise<FloorCredentials> {
  const dir = await mkdtemp(join(tmpdir(), `${name}-`));
  const opened = await CertificateAuthority.open({ dir, trustDomain: 'bench.local' });
  if (!opened.ok) throw new Error(JSON.stringify(opened.errors));
  const ca = opened.value;
  const bundle = ca.trustBundle().join('\n');
  const server = ca.issueWorkload(
    { namespace: 'clinimesh-system', service: 'control-plane' },
    { dnsNames: ['localhost'] },
  );
  const workload = ca.issueWorkload({ namespace: 'default', service: 'emr' });
  return {
    server: {
      certChainPem: server.certChainPem,
      privateKeyPem: server.privateKeyPem,
      trustBundlePem: bundle,
    },
    client: { ca: bundle, cert: workload.certChainPem, key: workload.privateKeyPem },
    dispose: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Listens on a free loopback port through our listener (mutual TLS with `tls`); returns the port. */
export async function listenAsDeployed(server: grpc.Server, tls: XdsTls | undefined): Promise<number> {
  const source = tls && { current: () => tls, onChange: () => undefined };
  const l = await listenGrpc(
    server,
    { host: '127.0.0.1', port: 0 },
    source && { source, peers: new PeerCredentials() },
  );
  return l.port;
}

/** Sends `m` to the server's child process and resolves with its next message. */
export function ask<R>(child: ChildProcess, m: unknown): Promise<R> {
  return new Promise((resolve) => {
    child.once('message', (r: R) => resolve(r));
    child.send(m as object);
  });
}
