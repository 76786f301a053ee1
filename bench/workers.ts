// The parent's side of the simulator workers: fork them, split the sidecars among them, collect
// what they saw, and always kill them, even when a measurement fails.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { isFromWorker, type FromWorker, type Receipt, type XdsTlsMaterial } from './ipc.ts';
import type { SidecarSpec } from './mesh-gen.ts';

const SIM = fileURLToPath(new URL('./sidecar-sim.ts', import.meta.url));
const OUT = fileURLToPath(new URL('./out/', import.meta.url));
// Opening thousands of TLS channels on a loaded machine takes a while; every other answer is quick.
const REPLY_TIMEOUT_MS = 180_000;

export interface Collected {
  readonly receipts: Receipt[];
  /** Streams the simulators had to open again, by reason (the gRPC status message). */
  readonly reconnects: ReadonlyMap<string, number>;
  readonly responses: number;
  /** CPU and RSS of all workers together: the simulated sidecars' cost, not the server's. */
  readonly cpuMs: number;
  readonly rssBytes: number;
}

type Reply<K extends FromWorker['kind']> = Extract<FromWorker, { kind: K }>;

class Worker {
  readonly child: ChildProcess;
  private waiting:
    { kind: FromWorker['kind']; resolve: (m: FromWorker) => void; reject: (e: Error) => void } | undefined;

  constructor(index: number) {
    // tsx as a loader so the worker runs the same TypeScript sources without a build.
    this.child = fork(SIM, [], {
      // BENCH_PROFILE=1 profiles the simulators too (bench/out/sim-<n>/, written at exit).
      execArgv: [
        '--import',
        'tsx',
        ...(process.env.BENCH_PROFILE === '1' ? ['--cpu-prof', `--cpu-prof-dir=${OUT}sim-${index}`] : []),
      ],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, BENCH_WORKER: String(index) },
    });
    this.child.on('message', (m: unknown) => {
      if (!isFromWorker(m) || !this.waiting) return;
      const w = this.waiting;
      this.waiting = undefined;
      if (m.kind === 'failed') w.reject(new Error(`worker ${index}: ${m.message}`));
      else if (m.kind !== w.kind) w.reject(new Error(`worker ${index}: expected ${w.kind}, got ${m.kind}`));
      else w.resolve(m);
    });
    this.child.on('exit', (code) =>
      this.waiting?.reject(
        new Error(`worker ${index} exited (${code}) while we waited for '${this.waiting.kind}'`),
      ),
    );
  }

  ask<K extends FromWorker['kind']>(message: object, kind: K): Promise<Reply<K>> {
    return new Promise<Reply<K>>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`worker did not answer '${kind}' within ${REPLY_TIMEOUT_MS} ms`)),
        REPLY_TIMEOUT_MS,
      );
      this.waiting = {
        kind,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m as Reply<K>);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.child.send(message);
    });
  }
}

export class SimulatorPool {
  private readonly workers: Worker[];

  constructor(count: number) {
    this.workers = Array.from({ length: count }, (_, i) => new Worker(i));
  }

  /** Builds, in each worker, the TLS credentials of the sidecars `connect` will give it. */
  async prepare(sidecars: readonly SidecarSpec[], tls: XdsTlsMaterial | undefined): Promise<void> {
    const shares = this.shares(sidecars);
    await Promise.all(
      this.workers.map((w, i) => w.ask({ kind: 'prepare', sidecars: shares[i], tls }, 'opened')),
    );
  }

  /** Opens every sidecar's stream; resolves once all are opened (not yet ACKed). */
  async connect(
    target: string,
    sidecars: readonly SidecarSpec[],
    streamsPerChannel: number,
    tls: XdsTlsMaterial | undefined,
    rampMs = 0,
  ): Promise<number> {
    const shares = this.shares(sidecars);
    const opened = await Promise.all(
      this.workers.map((w, i) =>
        w.ask({ kind: 'start', target, sidecars: shares[i], streamsPerChannel, rampMs, tls }, 'opened'),
      ),
    );
    return opened.reduce((sum, m) => sum + m.streams, 0);
  }

  /** A service's sidecars stay together: a worker builds one TLS context per service it holds. */
  private shares(sidecars: readonly SidecarSpec[]): SidecarSpec[][] {
    const n = this.workers.length;
    const workerOf = new Map<string, number>();
    for (const s of sidecars) if (!workerOf.has(s.cluster)) workerOf.set(s.cluster, workerOf.size % n);
    return this.workers.map((_, i) => sidecars.filter((s) => workerOf.get(s.cluster) === i));
  }

  /** Every simulated sidecar stops reading its stream (and never reads again). */
  async stall(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.ask({ kind: 'stall' }, 'opened')));
  }

  async collect(): Promise<Collected> {
    const replies = await Promise.all(this.workers.map((w) => w.ask({ kind: 'collect' }, 'collected')));
    return {
      receipts: replies.flatMap((r) => r.receipts),
      reconnects: mergeCounts(replies.map((r) => r.reconnects)),
      responses: replies.reduce((n, r) => n + r.responses, 0),
      cpuMs: replies.reduce((n, r) => n + r.cpuMs, 0),
      rssBytes: replies.reduce((n, r) => n + r.rssBytes, 0),
    };
  }

  /** Asks politely, then kills whatever is still running after a short grace period. */
  async stop(): Promise<void> {
    const exited = this.workers.map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.child.exitCode !== null || w.child.signalCode !== null) return resolve();
          w.child.once('exit', () => resolve());
          if (w.child.connected) w.child.send({ kind: 'stop' });
        }),
    );
    const grace = new Promise<void>((resolve) => setTimeout(resolve, 2_000).unref());
    await Promise.race([Promise.all(exited), grace]);
    this.kill();
  }

  /** Synchronous last resort, safe to call from an exit handler. */
  kill(): void {
    for (const w of this.workers)
      if (w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
  }
}

function mergeCounts(counts: readonly Readonly<Record<string, number>>[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const c of counts) for (const [k, n] of Object.entries(c)) out.set(k, (out.get(k) ?? 0) + n);
  return out;
}
