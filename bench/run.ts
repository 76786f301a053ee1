// `npm run bench`: the xDS scale benchmark (issue 2 item 10, issue 4 item 7). For each mesh size it
// starts a fresh control plane in this process (so its CPU and memory are what process.cpuUsage and
// process.memoryUsage report), connects N simulated sidecars from worker processes, and measures
// connect, one-at-a-time endpoint changes and a burst of churn. Results go to stdout and RESULTS.md.
//
// Environment: BENCH_SIDECARS=1000,2000 (sizes; default 1000,2000,5000), BENCH_QUICK=1 (100 only),
// BENCH_CHANGES (50), BENCH_APPLIES (30), BENCH_DEADLINE_MIN (9.5; on a machine others load too),
// BENCH_BURST (200), BENCH_WORKERS (cores, 2–4), BENCH_STREAMS_PER_CHANNEL (1), BENCH_SEED,
// BENCH_RAMP_MS (0: every sidecar opens its stream at once; else spread evenly over that long),
// BENCH_XDS_TLS=0 (plaintext xDS instead of mutual TLS), BENCH_PROFILE=1 (a CPU profile per phase
// in bench/out/; timings then include profiler overhead), BENCH_STANDALONE=only|0 (only, or not, the
// phase that measures `clinimesh serve` in its own process; default both), BENCH_SERVE_BUILD=0 (that
// phase runs the sources through tsx instead of building dist/ as the image runs it).
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { AckTracker } from './ack-tracker.ts';
import { TransportBytes, type BenchContext } from './harness.ts';
import { generateMesh } from './mesh-gen.ts';
import { profiled } from './profile.ts';
import { renderReport, writeResults, type RunConfig, type SizeResult } from './report.ts';
import { applyEdits, churn, connectAll, reapplyOneService, sequentialChanges } from './scenarios.ts';
import { startMeshPlane, type StartedPlane } from './setup.ts';
import { measureStandalone, prepareServeBuild, type StandaloneResult } from './standalone.ts';
import { SimulatorPool } from './workers.ts';
import { WORKER_IDLE_MS } from '../src/xds/plan/set-check.ts';

const RESULTS = fileURLToPath(new URL('./RESULTS.md', import.meta.url));
/** The whole run must stay under 10 minutes on 2 cores; past this it is abandoned, workers killed. */
const RUN_DEADLINE_MS = (Number(process.env.BENCH_DEADLINE_MIN) || 9.5) * 60_000;
const CONNECT_TIMEOUT_MS = 180_000;
const CHANGE_TIMEOUT_MS = 10_000;
const CHURN_TIMEOUT_MS = 60_000;
/** A steady stream: one flap every 10 ms, which never pauses long enough for the batcher to flush on its own. */
const STREAM_INTERVAL_MS = 10;

function intEnv(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isInteger(v) && v > 0 ? v : fallback;
}

const FULL_RUN = '1000,2000,5000';

function sizes(): number[] {
  if (process.env.BENCH_QUICK === '1') return [100];
  const list = (process.env.BENCH_SIDECARS ?? FULL_RUN).split(',').map((s) => Number(s.trim()));
  if (list.some((n) => !Number.isInteger(n) || n < 1 || n > 6000))
    throw new Error('BENCH_SIDECARS: a list of sizes from 1 to 6000');
  return list;
}

/** 1000 services up to 2000 sidecars; beyond, two sidecars per service (5000 sidecars = 2500 services). */
const servicesFor = (sidecars: number) => Math.max(1000, Math.ceil(sidecars / 2));

const config: RunConfig = {
  services: 1000,
  applies: intEnv('BENCH_APPLIES', 30),
  upstreams: 3,
  changes: intEnv('BENCH_CHANGES', 50),
  burst: intEnv('BENCH_BURST', 200),
  workers: intEnv('BENCH_WORKERS', Math.min(4, Math.max(2, cpus().length))),
  streamsPerChannel: intEnv('BENCH_STREAMS_PER_CHANNEL', 1),
  rampMs: Number(process.env.BENCH_RAMP_MS ?? 0) || 0,
  seed: intEnv('BENCH_SEED', 20240601),
  xdsTls: process.env.BENCH_XDS_TLS !== '0',
};

const live = new Set<SimulatorPool>();
// Whatever happens (exception, deadline, Ctrl-C), no simulator outlives the benchmark.
process.on('exit', () => live.forEach((p) => p.kill()));
process.on('SIGINT', () => process.exit(130));

async function runSize(sidecars: number, firstInProcess: boolean): Promise<SizeResult> {
  const log = (m: string) => console.log(`[${sidecars}] ${m}`);
  const services = servicesFor(sidecars);
  const mesh = generateMesh({
    services,
    sidecars,
    upstreamsPerService: config.upstreams,
    seed: config.seed,
  });
  let plane: StartedPlane | undefined;
  const pool = new SimulatorPool(config.workers);
  live.add(pool);
  try {
    plane = await startMeshPlane(mesh, config.xdsTls, String(sidecars));
    const { cp } = plane;
    log(`applied ${services} services / ${sidecars} sidecars in ${plane.applyMs.toFixed(0)} ms`);
    // The first apply's whole-set check ran on a worker thread that retires when idle; memory per
    // connected sidecar is measured from after it has gone, as a running control plane would be.
    await sleep(WORKER_IDLE_MS + 500);
    const pooled = () => cp.controlPlane.reconciler.pool.size;
    const ctx: BenchContext = {
      cp,
      mesh,
      tracker: new AckTracker(cp.statuses),
      pool,
      endpoints: new Map(mesh.endpoints),
      manifests: [...mesh.manifests],
      bytes: new TransportBytes(cp.statuses),
      deltaNodes: new Set(mesh.sidecars.filter((s) => s.transport === 'delta').map((s) => s.nodeId)),
    };
    const phase = <T>(name: string, run: () => Promise<T>) => profiled(`${sidecars}-${name}`, run);

    const connect = await phase('connect', () =>
      connectAll(ctx, plane!, config.streamsPerChannel, CONNECT_TIMEOUT_MS, config.rampMs),
    );
    log(`all ${sidecars} sidecars steady after ${connect.connectMs.toFixed(0)} ms`);
    const poolAfterApply = pooled();
    const sequential = await phase('sequential', () =>
      sequentialChanges(ctx, config.changes, CHANGE_TIMEOUT_MS),
    );
    log(
      `${sequential.changes} changes: p50 ${sequential.allAcked.p50.toFixed(1)} ms, p99 ${sequential.allAcked.p99.toFixed(1)} ms`,
    );
    const applies = await phase('applies', () => applyEdits(ctx, config.applies, CHANGE_TIMEOUT_MS));
    log(
      `${applies.applies} applies of one Service edit: p50 ${applies.allAcked.p50.toFixed(1)} ms, p99 ${applies.allAcked.p99.toFixed(1)} ms, CPU mean ${applies.totalCpuMs.mean.toFixed(1)} ms`,
    );
    const poolAfterChanges = pooled();
    ctx.tracker.reset();
    let firstId = config.changes;
    const burst = await phase('burst', () =>
      churn(ctx, {
        count: config.burst,
        intervalMs: 0,
        firstId,
        seed: config.seed + 1,
        timeoutMs: CHURN_TIMEOUT_MS,
      }),
    );
    log(
      `burst of ${burst.changes} flaps: ${burst.batches} batch(es), converged in ${burst.convergeMs.toFixed(0)} ms`,
    );
    firstId += config.burst;
    const stream = await phase('stream', () =>
      churn(ctx, {
        count: config.burst,
        intervalMs: STREAM_INTERVAL_MS,
        firstId,
        seed: config.seed + 2,
        timeoutMs: CHURN_TIMEOUT_MS,
      }),
    );
    log(
      `steady stream of ${stream.changes} flaps: ${stream.batches} batches, p99 ${stream.changeToAllAcked.p99.toFixed(0)} ms`,
    );
    const poolAfterChurn = pooled();
    const reapply = await phase('reapply', () => reapplyOneService(ctx));
    log(`re-applying with one Service edited took ${reapply.ms.toFixed(0)} ms (${reapply.pushes} pushes)`);
    const workers = await pool.collect();
    return {
      sidecars,
      services,
      meshedServices: mesh.meshedServices,
      applyMs: plane.applyMs,
      connect,
      sequential,
      applies,
      burst,
      stream,
      reapply,
      poolSizes: [poolAfterApply, poolAfterChanges, poolAfterChurn],
      workerCpuMs: workers.cpuMs,
      workerRssBytes: workers.rssBytes,
      laterReconnects: workers.reconnects,
      firstInProcess,
    };
  } finally {
    await pool.stop();
    live.delete(pool);
    await plane?.cp.stop();
  }
}

/** The same mesh and simulated sidecars against `clinimesh serve` running as its own process. */
async function runStandalone(sidecars: number, runs: 'dist' | 'tsx'): Promise<StandaloneResult> {
  const log = (m: string) => console.log(`[serve ${sidecars}] ${m}`);
  const mesh = generateMesh({
    services: servicesFor(sidecars),
    sidecars,
    upstreamsPerService: config.upstreams,
    seed: config.seed,
  });
  const pool = new SimulatorPool(config.workers);
  live.add(pool);
  try {
    const r = await measureStandalone({
      mesh,
      pool,
      runs,
      xdsTls: config.xdsTls,
      streamsPerChannel: config.streamsPerChannel,
      rampMs: config.rampMs,
      timeoutMs: CONNECT_TIMEOUT_MS,
      applies: config.applies,
      consulChanges: config.changes,
      log,
    });
    log(
      `all ${sidecars} sidecars ACKed after ${r.connectMs.toFixed(0)} ms; ${(r.cpuMs / sidecars).toFixed(2)} ms CPU per connect; RSS ${(r.before.rss / 2 ** 20).toFixed(0)} → ${(r.after.rss / 2 ** 20).toFixed(0)} MiB`,
    );
    const series = r.applies
      ? ([
          ['warmup', r.applies.warmup],
          ['measured', r.applies.measured],
        ] as const)
      : [];
    for (const [name, a] of series)
      log(
        `${name}: ${a.applies} applies of one Service edit: p50 ${a.allReceived.p50.toFixed(1)} ms, p99 ${a.allReceived.p99.toFixed(1)} ms, CPU ${a.cpuMsPerApply.toFixed(1)} ms per apply (${a.otherThreadsMsPerApply.toFixed(1)} off the event loop), event loop ${a.fixedMs.toFixed(1)} ms + ${(a.perSidecarMs * 1000).toFixed(0)} µs per sidecar pushed, fanout p50/max ${a.fanout.p50}/${a.fanout.max}`,
      );
    return r;
  } finally {
    await pool.stop();
    live.delete(pool);
  }
}

async function main(): Promise<number> {
  const startedAt = new Date();
  const deadline = setTimeout(() => {
    console.error(`benchmark exceeded ${RUN_DEADLINE_MS / 60_000} minutes; giving up`);
    process.exit(2);
  }, RUN_DEADLINE_MS);
  deadline.unref();
  const list = sizes();
  const results: SizeResult[] = [];
  const standalone: StandaloneResult[] = [];
  const mode = process.env.BENCH_STANDALONE;
  const fullRun = list.join(',') === FULL_RUN && mode !== 'only' && mode !== '0';
  const section = fullRun ? 'xds-scale' : 'xds-scale-partial';
  let report = '';
  // Built before anything is timed, so no phase shares the machine with the compiler.
  const runs = mode === '0' ? 'tsx' : prepareServeBuild((m) => console.log(m));
  // Largest first: the allocator keeps what one size's connections freed, so only the first size
  // measured in this process starts clean, and the 5000-sidecar memory target is the one that counts.
  for (const n of mode === 'only' ? [] : [...list].sort((a, b) => b - a)) {
    results.push(await runSize(n, results.length === 0));
    results.sort((a, b) => a.sidecars - b.sidecars);
    // Written after every size, so a run cut short by its deadline still leaves what it measured.
    report = renderReport(results, standalone, config, startedAt, Date.now() - startedAt.getTime());
    writeResults(RESULTS, section, report);
  }
  // Each size in a fresh `serve` process, so every one starts clean; largest first, as the targets
  // are set at 5000 and a run cut short by its deadline keeps what it measured.
  for (const n of mode === '0' ? [] : [...list].sort((a, b) => b - a)) {
    standalone.push(await runStandalone(n, runs));
    standalone.sort((a, b) => a.sidecars - b.sidecars);
    report = renderReport(results, standalone, config, startedAt, Date.now() - startedAt.getTime());
    writeResults(RESULTS, section, report);
  }
  console.log(`\n${report}`);
  console.log(`results written to ${RESULTS}${fullRun ? '' : ' (partial-run section)'}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  },
);
