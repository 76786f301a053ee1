// The floor under a sidecar's connect: how much server CPU a bare mutual-TLS handshake costs, under
// TLS configurations we could choose, and what HTTP/2 and our own gRPC listener add on top of it.
// Each variant's server runs in a child process of its own (its CPU is process.cpuUsage there, all
// threads), all of them at once; the clients run here and alternate between them (the machine is
// shared: one variant after another measured the load as much as the variant). Per round: W warm-up
// connections per variant, then N measured, 16 at a time, each one handshaking, waiting for the
// server's first bytes (a byte, or HTTP/2 SETTINGS) and closing; a server's CPU is read once its
// sockets have all closed, so teardown is counted too. The median round is reported.
//
// Usage: npx tsx bench/tls-floor.ts [N=600] [rounds=3]
// TLS_FLOOR_HOLD=1 measures memory instead: N connections are opened and kept, and the server's
// RSS and heap growth per open connection is reported (after a GC on both sides of it).
// TLS_FLOOR_ONLY=<regex> runs the variants whose names match; TLS_FLOOR_PROFILE=1 writes each server's
// CPU profiles to bench/out/tls-floor-<variant>/ (node --cpu-prof, one per thread: the largest is the main one; summarise with bench/profile-summary.ts).
import { fork, type ChildProcess } from 'node:child_process';
import { connect as h2connect, createServer as createH2Server, createSecureServer } from 'node:http2';
import { connect as netConnect, createServer as createNetServer, type Server, type Socket } from 'node:net';
import {
  connect as tlsConnect,
  createServer as createTlsServer,
  type ConnectionOptions,
  type TLSSocket,
} from 'node:tls';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { ask as askChild, floorCredentials, listenAsDeployed } from './floor-setup.ts';

const ask = (child: ChildProcess, m: ToServer) => askChild<FromServer>(child, m);
import { spiffeIdOfPeer, spiffeIdOfSan } from '../src/xds/server/peer.ts';
import { secureContextOptions, type XdsTls } from '../src/xds/server/grpc-listener.ts';

interface Variant {
  readonly name: string;
  /**
   * tls: a byte after the handshake; h2: HTTP/2 over it (Node's secure HTTP/2 server); h2-injected:
   * a TLS server that hands each verified socket to a plaintext HTTP/2 server (what our listener
   * does with grpc-js, without grpc-js); grpc: our listener and grpc-js (listenGrpc).
   */
  readonly layer: 'tls' | 'h2' | 'h2-injected' | 'grpc';
  readonly tls: boolean;
  /** Server-side TLS options on top of ours (secureContextOptions + requestCert + rejectUnauthorized). */
  readonly server?: Record<string, unknown>;
  readonly client?: ConnectionOptions;
  /** Session tickets on (our configuration turns them off). */
  readonly tickets?: boolean;
  /** Ask for no client certificate (one-way TLS: what mutual TLS costs, for comparison only). */
  readonly oneWay?: boolean;
  /** Read the client's SPIFFE ID after the handshake, as our listener does, through this call. */
  readonly peer?: 'getPeerCertificate' | 'getPeerX509Certificate';
}

const TLS12 = { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' } as const;
const VARIANTS: readonly Variant[] = [
  { name: 'TLS 1.3, X25519 (Node default), no tickets: ours', layer: 'tls', tls: true },
  {
    name: 'TLS 1.3, P-256 key exchange',
    layer: 'tls',
    tls: true,
    server: { ecdhCurve: 'P-256' },
    client: { ecdhCurve: 'P-256' },
  },
  {
    name: 'TLS 1.3, X25519 only',
    layer: 'tls',
    tls: true,
    server: { ecdhCurve: 'X25519' },
    client: { ecdhCurve: 'X25519' },
  },
  { name: 'TLS 1.3, session tickets on', layer: 'tls', tls: true, tickets: true },
  { name: 'TLS 1.2 ECDHE-ECDSA-AES128-GCM, X25519', layer: 'tls', tls: true, server: TLS12, client: TLS12 },
  {
    name: 'TLS 1.2 ECDHE-ECDSA-AES128-GCM, P-256',
    layer: 'tls',
    tls: true,
    server: { ...TLS12, ecdhCurve: 'P-256' },
    client: { ...TLS12, ecdhCurve: 'P-256' },
  },
  { name: 'TLS 1.3, one-way (no client certificate)', layer: 'tls', tls: true, oneWay: true },
  {
    name: 'TLS 1.3, SPIFFE ID read by getPeerCertificate(false)',
    layer: 'tls',
    tls: true,
    peer: 'getPeerCertificate',
  },
  {
    name: 'TLS 1.3, SPIFFE ID read by getPeerX509Certificate()',
    layer: 'tls',
    tls: true,
    peer: 'getPeerX509Certificate',
  },
  { name: 'TLS 1.3 + HTTP/2 session', layer: 'h2', tls: true },
  {
    name: 'TLS 1.3 + HTTP/2 session, TLS socket handed to a plaintext HTTP/2 server',
    layer: 'h2-injected',
    tls: true,
  },
  { name: 'TLS 1.3 + our gRPC listener (listenGrpc, grpc-js session)', layer: 'grpc', tls: true },
  { name: 'plaintext TCP, a byte', layer: 'tls', tls: false },
  { name: 'plaintext HTTP/2 session', layer: 'h2', tls: false },
  { name: 'plaintext, our gRPC listener', layer: 'grpc', tls: false },
];

type ToServer = { variant: number; material?: XdsTls } | { cpuWhenIdle: true } | { memory: true };
type FromServer = { port: number } | { cpuUs: number } | { rss: number; heap: number };

// ---------------------------------------------------------------- server (child process)

async function serve(v: Variant, t: XdsTls | undefined): Promise<number> {
  const ours = t && {
    ...secureContextOptions(t),
    ...(v.tickets && { secureOptions: 0 }),
    requestCert: !v.oneWay,
    rejectUnauthorized: !v.oneWay,
    ...v.server,
  };
  const listen = (s: Server) =>
    new Promise<number>((resolve) =>
      s.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () =>
        resolve((s.address() as { port: number }).port),
      ),
    );
  if (v.layer === 'grpc') {
    const server = new grpc.Server({ 'grpc.enable_channelz': 0, 'grpc.keepalive_time_ms': 30_000 });
    return listenAsDeployed(server, t);
  }
  if (v.layer === 'h2-injected' && ours) {
    const h2 = createH2Server();
    return listen(
      createTlsServer({ ...ours, ALPNProtocols: ['h2'] }, (socket) => h2.emit('connection', socket)),
    );
  }
  if (v.layer !== 'tls')
    return listen(ours ? createSecureServer({ ...ours, ALPNProtocols: ['h2'] }) : createH2Server());
  const hello = (s: Socket | TLSSocket) => {
    if (v.peer === 'getPeerCertificate')
      spiffeIdOfSan((s as TLSSocket).getPeerCertificate(false).subjectaltname);
    if (v.peer === 'getPeerX509Certificate') spiffeIdOfPeer(s as TLSSocket);
    s.write('x');
  };
  return listen(ours ? createTlsServer(ours, hello) : createNetServer(hello));
}

/** Server CPU (µs, all threads) once no TCP socket is open any more. */
async function cpuWhenIdle(): Promise<number> {
  const open = () => process.getActiveResourcesInfo().filter((r) => r === 'TCPSocketWrap').length;
  while (open() > 0) await new Promise((r) => setTimeout(r, 20));
  const u = process.cpuUsage();
  return u.user + u.system;
}

function serverMain(): void {
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: ToServer) => {
    if ('variant' in m) void serve(VARIANTS[m.variant]!, m.material).then((port) => process.send!({ port }));
    else if ('memory' in m) {
      // Twice: what the first frees, the second finds settled.
      (globalThis as { gc?: () => void }).gc?.();
      (globalThis as { gc?: () => void }).gc?.();
      const u = process.memoryUsage();
      process.send!({ rss: u.rss, heap: u.heapUsed });
    } else void cpuWhenIdle().then((cpuUs) => process.send!({ cpuUs }));
  });
}

// ---------------------------------------------------------------- clients (this process)

/** Connections a memory measurement keeps open until the server has been measured. */
const held: { destroy(): void }[] = [];
const hold = process.env.TLS_FLOOR_HOLD === '1';

function once(v: Variant, port: number, client: ConnectionOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    if (v.layer !== 'tls') {
      const session = h2connect(
        `${v.tls ? 'https' : 'http'}://localhost:${port}`,
        v.tls ? { ...client, ALPNProtocols: ['h2'] } : {},
      );
      session.once('remoteSettings', () => {
        if (hold) held.push(session);
        else session.destroy();
        resolve();
      });
      session.once('error', reject);
      return;
    }
    const socket = v.tls
      ? tlsConnect({ ...client, port, host: '127.0.0.1' })
      : netConnect({ port, host: '127.0.0.1' });
    socket.once('data', () => {
      if (hold) held.push(socket);
      else socket.destroy();
      resolve();
    });
    socket.once('error', reject);
  });
}

async function many(n: number, concurrency: number, one: () => Promise<void>): Promise<void> {
  let started = 0;
  const lane = async () => {
    while (started < n) {
      started++;
      await one();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, lane));
}

interface RunningServer {
  readonly variant: Variant;
  readonly child: ChildProcess;
  readonly port: number;
  readonly client: ConnectionOptions;
}

/** One server process for variant `index`, listening. */
async function startServer(
  index: number,
  material: XdsTls,
  client: ConnectionOptions,
): Promise<RunningServer> {
  const v = VARIANTS[index]!;
  const profile =
    process.env.TLS_FLOOR_PROFILE === '1'
      ? [
          '--cpu-prof',
          `--cpu-prof-dir=${fileURLToPath(new URL(`./out/tls-floor-${index}/`, import.meta.url))}`,
        ]
      : [];
  const child = fork(fileURLToPath(import.meta.url), ['server'], {
    execArgv: [...process.execArgv, ...profile, '--expose-gc'],
  });
  const { port } = (await ask(child, { variant: index, material: v.tls ? material : undefined })) as {
    port: number;
  };
  const c = {
    ...client,
    servername: 'localhost',
    ...v.client,
    ...(v.oneWay && { cert: undefined, key: undefined }),
  };
  return { variant: v, child, port, client: c };
}

/**
 * n connections to each server, 16 at a time, in blocks of BLOCK per server in turn: every server
 * sees the same load over a round, and each block runs with warm caches (one connection per server
 * in turn made each pay for the others' cache misses: +0.6 ms on every variant).
 */
const BLOCK = 50;
function interleaved(servers: readonly RunningServer[], n: number): Promise<void> {
  let k = 0;
  return many(n * servers.length, 16, () => {
    const s = servers[Math.floor(k++ / BLOCK) % servers.length]!;
    return once(s.variant, s.port, s.client);
  });
}

/**
 * Server CPU per connection of each variant, all servers running at once and the connections
 * alternating between them: on a machine others load too, measuring variants one after another
 * mistook a change of load for a difference between them.
 */
async function measureCpu(
  indices: readonly number[],
  material: XdsTls,
  client: ConnectionOptions,
  n: number,
): Promise<number[]> {
  const servers = await Promise.all(indices.map((i) => startServer(i, material, client)));
  try {
    await interleaved(servers, Math.max(100, n / 5));
    const cpu = () =>
      Promise.all(servers.map((s) => ask(s.child, { cpuWhenIdle: true }) as Promise<{ cpuUs: number }>));
    const before = await cpu();
    await interleaved(servers, n);
    const after = await cpu();
    return servers.map((_, k) => (after[k]!.cpuUs - before[k]!.cpuUs) / 1000 / n);
  } finally {
    // SIGTERM would lose a profile: let each server exit on its own.
    servers.forEach((s) => s.child.disconnect());
  }
}

/** Server RSS growth (KiB) per connection held open, one variant at a time. */
async function measureMemory(
  index: number,
  material: XdsTls,
  client: ConnectionOptions,
  n: number,
): Promise<number> {
  const s = await startServer(index, material, client);
  try {
    await many(Math.min(100, n / 5), 16, () => once(s.variant, s.port, s.client));
    const m0 = (await ask(s.child, { memory: true })) as { rss: number; heap: number };
    await many(n, 16, () => once(s.variant, s.port, s.client));
    const m1 = (await ask(s.child, { memory: true })) as { rss: number; heap: number };
    held.splice(0).forEach((h) => h.destroy());
    console.error(`  heap per connection ${((m1.heap - m0.heap) / n / 1024).toFixed(1)} KiB`);
    return (m1.rss - m0.rss) / n / 1024;
  } finally {
    s.child.disconnect();
  }
}

async function main(): Promise<void> {
  const n = Number(process.argv[2]) || 600;
  const rounds = Number(process.argv[3]) || 3;
  const creds = await floorCredentials('tls-floor');
  try {
    const material = creds.server;
    const client: ConnectionOptions = creds.client;
    const only = new RegExp(process.env.TLS_FLOOR_ONLY ?? '');
    const chosen = VARIANTS.flatMap((v, i) => (only.test(v.name) ? [i] : []));
    const results = VARIANTS.map(() => [] as number[]);
    for (let r = 0; r < rounds; r++) {
      const round = hold
        ? await chosen.reduce<Promise<number[]>>(
            async (acc, i) => [...(await acc), await measureMemory(i, material, client, n)],
            Promise.resolve([]),
          )
        : await measureCpu(chosen, material, client, n);
      chosen.forEach((i, k) => {
        results[i]!.push(round[k]!);
        console.error(`round ${r + 1}: ${VARIANTS[i]!.name}: ${round[k]!.toFixed(3)}`);
      });
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    console.log(
      `\n${n} connections per variant, ${rounds} rounds (median, min–max); ${new Date().toISOString()}, Node ${process.version}, OpenSSL ${process.versions.openssl}\n`,
    );
    const unit = hold ? 'server RSS per open connection (KiB)' : 'server CPU per connection (ms)';
    console.log(`| variant | ${unit} |\n|---|---:|`);
    chosen.forEach((i) => {
      const v = VARIANTS[i]!;
      const xs = results[i]!;
      console.log(
        `| ${v.name} | ${median(xs).toFixed(3)} (${Math.min(...xs).toFixed(3)}–${Math.max(...xs).toFixed(3)}) |`,
      );
    });
  } finally {
    await creds.dispose();
  }
}

if (process.argv[2] === 'server') serverMain();
else void main();
