// The xDS gRPC port's listening socket, over real sockets: it holds a fleet's worth of connections
// arriving at once, and names each stream's client by the SPIFFE ID it proved at the handshake.
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectTcp } from 'node:net';
import { connect as connectTls } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../../src/ca/index.ts';
import { ok } from '../../../src/errors.ts';
import { SnapshotCache } from '../../../src/xds/cache/snapshot.ts';
import type { ConnectContext } from '../../../src/xds/server/hooks.ts';
import { startXdsServers, type XdsServerOptions, type XdsServers } from '../../../src/xds/server/index.ts';
import { StatusRegistry } from '../../../src/xds/status.ts';

const ADS_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
/** DiscoveryRequest { node { id: clinical/emr/emr-1 } }, encoded by hand (field 2, then id = field 1). */
const FIRST_REQUEST = Buffer.from([0x12, 0x14, 0x0a, 0x12, ...Buffer.from('clinical/emr/emr-1')]);
const identity = (b: Buffer) => b;

/** Opens `count` TCP connections to a port and says how many the server's kernel completed. */
const CONNECTOR = `
const net = require('node:net');
const [port, count] = process.argv.slice(2).map(Number);
let connected = 0;
const sockets = [];
for (let i = 0; i < count; i++) {
  const s = net.connect(port, '127.0.0.1', () => connected++);
  s.on('error', () => {});
  sockets.push(s);
}
process.send('started');
setTimeout(() => { process.send(connected); sockets.forEach((s) => s.destroy()); process.exit(0); }, 1500);
`;

describe('xDS gRPC listener', () => {
  let servers: XdsServers | undefined;
  const dirs: string[] = [];
  afterEach(async () => {
    await servers?.close();
    servers = undefined;
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const tempDir = () => {
    const d = mkdtempSync(join(tmpdir(), 'clinimesh-listener-'));
    dirs.push(d);
    return d;
  };
  /** xDS servers on loopback ports of the kernel's choosing, admitting every node. */
  const start = (o: Partial<XdsServerOptions> = {}): Promise<XdsServers> =>
    startXdsServers({
      host: '127.0.0.1',
      grpcPort: 0,
      restPort: 0,
      cache: new SnapshotCache(),
      statuses: new StatusRegistry(),
      hooks: { connect: (n) => ok(n.id) },
      ...o,
    });

  it('holds a thousand connections that arrive while the event loop is busy', async () => {
    servers = await start();
    const script = join(tempDir(), 'connector.cjs');
    writeFileSync(script, CONNECTOR);
    const child = fork(script, [String(servers.grpcPort), '1000'], { stdio: 'ignore' });
    const messages: unknown[] = [];
    const started = new Promise<void>((resolve) =>
      child.on('message', (m) => {
        messages.push(m);
        if (m === 'started') resolve();
      }),
    );
    const done = new Promise<void>((resolve) => child.on('exit', () => resolve()));
    await started;
    // Nothing is accepted while the event loop is blocked: only the kernel's backlog holds them.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 1200);
    await done;
    expect(messages[1]).toBe(1000);
  });

  /** A CA, the control plane's serving material from it, and a workload certificate for EMR. */
  async function pki() {
    const ca = await CertificateAuthority.open({ dir: tempDir(), trustDomain: 'clinic.example' });
    if (!ca.ok) throw new Error(JSON.stringify(ca.errors));
    const serving = ca.value.issueWorkload({ namespace: 'clinimesh-system', service: 'control-plane' });
    const tls = {
      certChainPem: serving.certChainPem,
      privateKeyPem: serving.privateKeyPem,
      trustBundlePem: ca.value.trustBundle().join('\n'),
    };
    return { tls, emr: ca.value.issueWorkload({ namespace: 'clinical', service: 'emr' }) };
  }

  it('names a stream by the SPIFFE ID its client proved at the TLS handshake', async () => {
    const { tls, emr } = await pki();
    const seen: ConnectContext[] = [];
    servers = await start({
      hooks: {
        connect: (n, ctx) => {
          seen.push(ctx);
          return ok(n.id);
        },
      },
      tls: { current: () => tls, onChange: () => undefined },
    });
    const clients = [0, 1].map(
      () =>
        new grpc.Client(
          `127.0.0.1:${servers!.grpcPort}`,
          grpc.credentials.createSsl(
            Buffer.from(tls.trustBundlePem),
            Buffer.from(emr.privateKeyPem),
            Buffer.from(emr.certChainPem),
            { checkServerIdentity: () => undefined },
          ),
          { 'grpc.use_local_subchannel_pool': 1, 'grpc.ssl_target_name_override': 'localhost' },
        ),
    );
    try {
      for (const client of clients) {
        const call = client.makeBidiStreamRequest<Buffer, Buffer>(ADS_PATH, identity, identity);
        call.on('error', () => undefined);
        call.write(FIRST_REQUEST);
      }
      await expect.poll(() => seen.length, { timeout: 10_000 }).toBe(2);
      expect(seen.map((c) => c.credential)).toEqual([emr.spiffeId, emr.spiffeId]);
      expect(new Set(seen.map((c) => c.peer)).size).toBe(2);
    } finally {
      clients.forEach((c) => c.close());
    }
  });

  it('issues no resumable TLS session, also after the serving certificate rotates', async () => {
    const { tls, emr } = await pki();
    const rotations: ((t: typeof tls) => void)[] = [];
    servers = await start({ tls: { current: () => tls, onChange: (l) => void rotations.push(l) } });
    const options = {
      host: '127.0.0.1',
      port: servers.grpcPort,
      ca: tls.trustBundlePem,
      cert: emr.certChainPem,
      key: emr.privateKeyPem,
      ALPNProtocols: ['h2'],
      checkServerIdentity: () => undefined,
    };
    const resumed = async () => {
      const sessions: Buffer[] = [];
      const first = connectTls(options);
      first.on('session', (s: Buffer) => sessions.push(s));
      await expect.poll(() => sessions.length, { timeout: 10_000 }).toBeGreaterThan(0);
      first.destroy();
      const second = connectTls({ ...options, session: sessions[0] });
      await new Promise<void>((resolve, reject) =>
        second.once('secureConnect', resolve).once('error', reject),
      );
      const reused = second.isSessionReused();
      second.destroy();
      return reused;
    };
    expect(await resumed()).toBe(false);
    // A rotation swaps the secure context; Node resets the options setSecureContext is not given.
    expect(rotations.length).toBeGreaterThan(0);
    rotations.forEach((l) => l(tls));
    expect(await resumed()).toBe(false);
  });

  it('closes with a connection that never finishes its TLS handshake', async () => {
    const { tls } = await pki();
    servers = await start({ tls: { current: () => tls, onChange: () => undefined } });
    // Connected, says nothing: close() must cut it after its grace, not wait out the handshake timeout.
    const silent = connectTcp(servers.grpcPort, '127.0.0.1');
    silent.on('error', () => undefined);
    await new Promise<void>((resolve) => silent.once('connect', () => resolve()));
    const closed = servers.close().then(() => 'closed');
    servers = undefined;
    const outcome = await Promise.race([
      closed,
      new Promise((r) => setTimeout(() => r('still open'), 8_000)),
    ]);
    silent.destroy();
    expect(outcome).toBe('closed');
  });
});
