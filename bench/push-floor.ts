// The floor under an xDS push: what one response written to a sidecar's open stream and its ACK read
// back cost the server in transport alone (no planning, no xDS state), over the layers a push crosses:
// grpc-js behind our listener (as deployed), and node:http2 with gRPC framing by hand (what grpc-js
// adds), each over mutual TLS and in plaintext (what TLS adds). The server runs in a child process of
// its own; N client streams (bench/grpc-h2.ts, as the simulated sidecars) answer every message with
// an ACK-sized one. A round pushes one message to every stream and ends when the server has read
// every ACK; the server's CPU per push + ACK is reported, median of the rounds.
// Compare with bench/push-path.ts (the control plane's own share, without any transport).
//
// Usage: npx tsx bench/push-floor.ts [N=500] [rounds=20]
import { fork, type ChildProcess } from 'node:child_process';
import { createSecureServer, createServer as createH2Server, type ServerHttp2Stream } from 'node:http2';
import { createSecureContext } from 'node:tls';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { ask as askChild, floorCredentials, listenAsDeployed } from './floor-setup.ts';

const ask = (child: ChildProcess, m: ToServer) => askChild<FromServer>(child, m);
import { secureContextOptions, type XdsTls } from '../src/xds/server/grpc-listener.ts';
import type { GrpcCall } from './grpc-h2.ts';
import { H2Channel } from './grpc-h2.ts';
import { median } from './stats.ts';

const PATH = '/bench.Floor/Stream';
/** About a SotW EDS response with three assignments, and a typical ACK. */
const PUSH_BYTES = 900;
const ACK_BYTES = 250;

interface Variant {
  readonly name: string;
  readonly layer: 'grpc-js' | 'http2';
  readonly tls: boolean;
}
const VARIANTS: readonly Variant[] = [
  { name: 'grpc-js behind our listener, mutual TLS (as deployed)', layer: 'grpc-js', tls: true },
  { name: 'node:http2, gRPC framing by hand, mutual TLS', layer: 'http2', tls: true },
  { name: 'grpc-js behind our listener, plaintext', layer: 'grpc-js', tls: false },
  { name: 'node:http2, gRPC framing by hand, plaintext', layer: 'http2', tls: false },
];

type ToServer = { variant: number; material?: XdsTls } | { push: number };
type FromServer = { port: number } | { cpuUs: number };

// ---------------------------------------------------------------- server (child process)

/** Open streams, each a way to write one framed message; ACKs read are counted. */
const writers: Array<(frame: Buffer) => void> = [];
let acks = 0;
let waitingFor = 0;
let roundDone: (() => void) | undefined;

function ackRead(): void {
  if (++acks >= waitingFor) roundDone?.();
}

function frameOf(bytes: number): Buffer {
  const frame = Buffer.alloc(5 + bytes, 7);
  frame[0] = 0;
  frame.writeUInt32BE(bytes, 1);
  return frame;
}

async function serve(v: Variant, t: XdsTls | undefined): Promise<number> {
  if (v.layer === 'grpc-js') {
    const server = new grpc.Server({ 'grpc.enable_channelz': 0, 'grpc.keepalive_time_ms': 30_000 });
    const same = (b: Buffer) => b;
    server.addService(
      {
        stream: {
          path: PATH,
          requestStream: true,
          responseStream: true,
          requestSerialize: same,
          requestDeserialize: same,
          responseSerialize: same,
          responseDeserialize: same,
        },
      },
      {
        stream: (call: grpc.ServerDuplexStream<Buffer, Buffer>) => {
          // grpc-js frames what it is given: hand it the message without our 5-byte header.
          writers.push((frame) => call.write(frame.subarray(5)));
          call.on('data', ackRead);
        },
      },
    );
    return listenAsDeployed(server, t);
  }
  const h2 = t
    ? createSecureServer({
        ...secureContextOptions(t),
        requestCert: true,
        rejectUnauthorized: true,
        ALPNProtocols: ['h2'],
      })
    : createH2Server();
  h2.on('stream', (stream: ServerHttp2Stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
    writers.push((frame) => stream.write(frame));
    // Every ACK arrives whole in one DATA frame here (small, one at a time): a frame per chunk.
    stream.on('data', ackRead);
  });
  return new Promise((resolve) =>
    h2.listen({ host: '127.0.0.1', port: 0 }, () => resolve((h2.address() as { port: number }).port)),
  );
}

function serverMain(): void {
  process.on('disconnect', () => process.exit(0));
  process.on('message', (m: ToServer) => {
    if ('variant' in m) void serve(VARIANTS[m.variant]!, m.material).then((port) => process.send!({ port }));
    else {
      const frame = frameOf(m.push);
      acks = 0;
      waitingFor = writers.length;
      const u0 = process.cpuUsage();
      roundDone = () => {
        roundDone = undefined;
        const u = process.cpuUsage(u0);
        process.send!({ cpuUs: u.user + u.system });
      };
      for (const write of writers) write(frame);
    }
  });
}

// ---------------------------------------------------------------- clients (this process)

async function measure(
  index: number,
  material: XdsTls,
  client: { cert: string; key: string; ca: string },
  n: number,
  rounds: number,
): Promise<number[]> {
  const v = VARIANTS[index]!;
  const child = fork(fileURLToPath(import.meta.url), ['server'], { execArgv: ['--import', 'tsx'] });
  try {
    const { port } = (await ask(child, { variant: index, material: v.tls ? material : undefined })) as {
      port: number;
    };
    const secureContext = v.tls
      ? createSecureContext({ ...client, ALPNProtocols: ['h2'] } as never)
      : undefined;
    const ack = Buffer.alloc(ACK_BYTES, 1);
    let opened = 0;
    let measuring = true;
    for (let i = 0; i < n; i++) {
      const channel = new H2Channel({ address: `127.0.0.1:${port}`, secureContext, servername: 'localhost' });
      const call: GrpcCall = channel.call(PATH, {
        message: () => call.write(ack),
        failed: (why) => measuring && console.error(`stream ${i} failed: ${why}`),
      });
      // The server learns of a stream when its first bytes come: an opening message it does not count.
      call.write(ack);
      opened++;
    }
    await new Promise((r) => setTimeout(r, 2_000));
    const cpu: number[] = [];
    for (let r = 0; r < rounds + 2; r++) {
      const { cpuUs } = (await ask(child, { push: PUSH_BYTES })) as { cpuUs: number };
      if (r >= 2) cpu.push(cpuUs / opened); // two warm-up rounds
    }
    measuring = false;
    return cpu;
  } finally {
    child.kill();
  }
}

async function main(): Promise<void> {
  const n = Number(process.argv[2]) || 500;
  const rounds = Number(process.argv[3]) || 20;
  const creds = await floorCredentials('push-floor');
  try {
    console.log(
      `\n${n} streams, ${rounds} rounds of one ${PUSH_BYTES}-byte push each answered by a ${ACK_BYTES}-byte ACK; ${new Date().toISOString()}, Node ${process.version}, OpenSSL ${process.versions.openssl}\n`,
    );
    console.log('| transport | server CPU per push + ACK, median (min–max) µs |\n|---|---:|');
    for (const [i, v] of VARIANTS.entries()) {
      const xs = await measure(i, creds.server, creds.client, n, rounds);
      console.log(
        `| ${v.name} | ${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)}) |`,
      );
    }
  } finally {
    await creds.dispose();
  }
}

if (process.argv[2] === 'server') serverMain();
else void main();
