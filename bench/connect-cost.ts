// The connect phase of `npm run bench` alone, for working on its cost: one mesh size, the same
// mesh, control plane, simulators and measurement as bench/run.ts (connectAll), then the server's
// CPU per connect split by thread (the event loop; V8's helpers, named `node`: GC and compilers;
// the libuv pool), and memory per connected sidecar. Nothing is written to RESULTS.md.
//
// Usage: npx tsx bench/connect-cost.ts [sidecars=1000]; BENCH_PROFILE=1 profiles the connect
// (bench/out/<n>-connect-only.cpuprofile); BENCH_ALLOCATIONS=1 samples what the connect allocates
// (collected or not) and prints the top allocating functions, BENCH_ALLOCATIONS=live only what is
// still alive after it (what each connected sidecar keeps); BENCH_XDS_TLS=0 for plaintext xDS.
import { Session } from 'node:inspector/promises';
import { cpus } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { AckTracker } from './ack-tracker.ts';
import { TransportBytes, type BenchContext } from './harness.ts';
import { generateMesh } from './mesh-gen.ts';
import { profiled } from './profile.ts';
import { connectAll } from './scenarios.ts';
import { startMeshPlane } from './setup.ts';
import { threadCpuMs } from './stats.ts';
import { SimulatorPool } from './workers.ts';
import { WORKER_IDLE_MS } from '../src/xds/plan/set-check.ts';

const sidecars = Number(process.argv[2]) || 1000;
const xdsTls = process.env.BENCH_XDS_TLS !== '0';

async function main(): Promise<void> {
  const mesh = generateMesh({
    services: Math.max(1000, Math.ceil(sidecars / 2)),
    sidecars,
    upstreamsPerService: 3,
    seed: 20240601,
  });
  const pool = new SimulatorPool(Math.min(4, Math.max(2, cpus().length)));
  const plane = await startMeshPlane(mesh, xdsTls, `${sidecars}-only`);
  try {
    await sleep(WORKER_IDLE_MS + 500);
    const ctx: BenchContext = {
      cp: plane.cp,
      mesh,
      tracker: new AckTracker(plane.cp.statuses),
      pool,
      endpoints: new Map(mesh.endpoints),
      manifests: [...mesh.manifests],
      bytes: new TransportBytes(plane.cp.statuses),
      deltaNodes: new Set(mesh.sidecars.filter((s) => s.transport === 'delta').map((s) => s.nodeId)),
    };
    const allocations = process.env.BENCH_ALLOCATIONS
      ? await startAllocationSampling(process.env.BENCH_ALLOCATIONS !== 'live')
      : undefined;
    const before = threadCpuMs();
    const r = await profiled(`${sidecars}-connect-only`, () => connectAll(ctx, plane, 1, 180_000));
    const after = threadCpuMs();
    if (allocations) console.log(await allocations());
    const perThread = [...after]
      .map(([name, ms]) => [name, (ms - (before.get(name) ?? 0)) / sidecars] as const)
      .filter(([, ms]) => ms > 0)
      .map(([name, ms]) => `${name} ${ms.toFixed(2)}`)
      .join(', ');
    const { reconnects } = await pool.collect();
    console.log(
      [
        `${sidecars} sidecars${xdsTls ? ' (mutual TLS)' : ' (plaintext)'}: connected and ACKed in ${(r.connectMs / 1000).toFixed(2)} s, streams reopened ${[...reconnects.values()].reduce((a, b) => a + b, 0)}`,
        `server CPU per connect: all threads ${(r.cpuMs / sidecars).toFixed(2)} ms, event loop ${(r.mainThreadCpuMs / sidecars).toFixed(2)} ms`,
        `by thread (ms per connect, 10 ms ticks): ${perThread}`,
        `heap per connected sidecar ${(r.heapPerSidecar / 1024).toFixed(1)} KiB, RSS per connected sidecar ${(r.rssPerSidecar / 1024).toFixed(1)} KiB, RSS total ${(r.rssAfter / 2 ** 20).toFixed(1)} MiB`,
      ].join('\n'),
    );
  } finally {
    await pool.stop();
    await plane.cp.stop();
  }
}

interface SamplingNode {
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly selfSize: number;
  readonly children: readonly SamplingNode[];
}

/** Samples every allocation (including what GC collects again); the stop function summarises them. */
async function startAllocationSampling(collectedToo: boolean): Promise<() => Promise<string>> {
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', {
    samplingInterval: 4096,
    includeObjectsCollectedByMajorGC: collectedToo,
    includeObjectsCollectedByMinorGC: collectedToo,
  });
  return async () => {
    if (!collectedToo) await session.post('HeapProfiler.collectGarbage');
    const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as {
      profile: { head: SamplingNode };
    };
    const bySite = new Map<string, number>();
    let total = 0;
    const walk = (n: SamplingNode, stack: string) => {
      const f = n.callFrame;
      const here = `${f.functionName || '(anonymous)'} ${f.url.replace(/^.*?\/(src|bench|node_modules)\//, '$1/')}:${f.lineNumber + 1}`;
      const site = stack ? `${here} < ${stack}` : here;
      if (n.selfSize) bySite.set(site, (bySite.get(site) ?? 0) + n.selfSize);
      total += n.selfSize;
      for (const c of n.children)
        walk(c, [here, ...stack.split(' < ').slice(0, 2)].filter(Boolean).join(' < '));
    };
    walk(profile.head, '');
    session.disconnect();
    const rows = [...bySite].sort((a, b) => b[1] - a[1]).slice(0, 40);
    return [
      `${collectedToo ? 'allocated' : 'still alive:'} ${(total / 2 ** 20).toFixed(0)} MiB during the connect (${(total / sidecars / 1024).toFixed(0)} KiB per sidecar); top sites (KiB per sidecar):`,
      ...rows.map(
        ([site, bytes]) => `${(bytes / sidecars / 1024).toFixed(1).padStart(7)}  ${site.slice(0, 220)}`,
      ),
    ].join('\n');
  };
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
