// `npx tsx bench/responsive.ts`: issue 8's "responsive server" and "bounded state" figures.
//
// 1. During a 10k-document apply (10 000 Services, 2000 sidecars planned, every document touched),
//    how long /healthz and an EDS push to an already connected sidecar take. The /healthz probe runs
//    in a worker thread (its own event loop, so a blocked control plane shows as latency rather than
//    as a probe that never fired); an endpoint change is scheduled every 100 ms and its latency is
//    counted from when it was due to when the simulated sidecar (another process) received it.
// 2. 10 rounds of 2000 streams connecting and dropping, beside 10 streams that stopped reading, with
//    endpoint churn pushed to everyone: the server's RSS and open file descriptors after each round.
// Plaintext xDS on loopback (TLS costs are bench/run.ts's subject). Results go to stdout and to
// RESULTS.md between the `responsive` markers.
import { execSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { settledMemory, waitSteady } from './harness.ts';
import { MARKER_BASE } from './ipc.ts';
import { generateMesh, moveFirstEndpoint, type BenchMesh, type SidecarSpec } from './mesh-gen.ts';
import { writeResults } from './report.ts';
import { startMeshPlane, type StartedPlane } from './setup.ts';
import { summarize, type Summary } from './stats.ts';
import { SimulatorPool } from './workers.ts';
import type { Manifest } from '../src/manifest/index.ts';

const RESULTS = fileURLToPath(new URL('./RESULTS.md', import.meta.url));
const live = new Set<SimulatorPool>();
process.on('exit', () => live.forEach((p) => p.kill()));

const PROBE = `
const { parentPort, workerData } = require('node:worker_threads');
const https = require('node:https');
const agent = new https.Agent({ keepAlive: true, maxSockets: 1 });
const samples = [];
let running = true;
parentPort.on('message', () => { running = false; });
function probe() {
  if (!running) return parentPort.postMessage(samples);
  const t0 = performance.now();
  https.get(workerData.url, { agent, rejectUnauthorized: false }, (res) => {
    res.resume();
    res.on('end', () => { samples.push(performance.now() - t0); setTimeout(probe, 20); });
  }).on('error', () => setTimeout(probe, 20));
}
probe();
`;

function pool(workers: number): SimulatorPool {
  const p = new SimulatorPool(workers);
  live.add(p);
  return p;
}

async function release(p: SimulatorPool): Promise<void> {
  await p.stop();
  live.delete(p);
}

/** Someone this sidecar calls, so its endpoint moves reach it. */
function upstreamOf(mesh: BenchMesh, sidecar: SidecarSpec): string {
  for (const [service, consumers] of mesh.consumers) if (consumers.includes(sidecar.nodeId)) return service;
  throw new Error(`${sidecar.nodeId} calls no one`);
}

interface DuringApply {
  readonly documents: number;
  readonly sidecars: number;
  readonly applyMs: number;
  readonly firstApplyMs: number;
  readonly healthz: Summary;
  readonly push: Summary;
  readonly pushesDue: number;
  readonly maxLoopDelayMs: number;
}

async function duringBigApply(): Promise<DuringApply> {
  const mesh = generateMesh({ services: 10_000, sidecars: 2000, upstreamsPerService: 3, seed: 20261130 });
  const plane = await startMeshPlane(mesh, false, 'responsive');
  const sims = pool(1);
  try {
    const sidecar = mesh.sidecars.find(
      (s) => mesh.consumers.size && [...mesh.consumers.values()].some((c) => c.includes(s.nodeId)),
    )!;
    const service = upstreamOf(mesh, sidecar);
    await sims.connect(plane.target, [sidecar], 1, undefined);
    await waitSteady(plane.cp, 1, 60_000);
    await sims.collect();

    const touched: Manifest[] = mesh.manifests.map((m) =>
      m.kind === 'Service' ? { ...m, labels: { ...m.labels, revision: '2' } } : m,
    );
    const probe = new Worker(PROBE, { eval: true, workerData: { url: `${plane.cp.adminUrl}/healthz` } });
    const healthz = new Promise<number[]>((resolve) => probe.once('message', resolve));
    await new Promise((r) => setTimeout(r, 200));

    const delay = monitorEventLoopDelay({ resolution: 5 });
    const due: number[] = [];
    let endpoints = mesh.endpoints.get(service)!;
    const t0 = performance.timeOrigin + performance.now();
    const mover = setInterval(() => {
      const k = due.length;
      due.push(t0 + (k + 1) * 100);
      endpoints = moveFirstEndpoint(endpoints, MARKER_BASE + k);
      void plane.cp.controlPlane.updateEndpoints(endpoints);
    }, 100);
    delay.enable();
    const a0 = performance.now();
    const applied = await plane.cp.controlPlane.apply(touched);
    const applyMs = performance.now() - a0;
    delay.disable();
    clearInterval(mover);
    if (!applied.ok || applied.value.touched.length < 10_000)
      throw new Error(`apply: ${JSON.stringify(applied).slice(0, 300)}`);
    await new Promise((r) => setTimeout(r, 500));
    probe.postMessage('stop');
    const healthSamples = await healthz;
    await probe.terminate();
    const { receipts } = await sims.collect();
    // A receipt's marker is the change's index (the simulator subtracts MARKER_BASE).
    const latencies = receipts
      .filter(([, marker]) => marker < due.length)
      .map(([, marker, at]) => at - due[marker]!);
    return {
      documents: touched.length,
      sidecars: mesh.sidecars.length,
      applyMs,
      firstApplyMs: plane.applyMs,
      healthz: summarize(healthSamples),
      push: summarize(latencies),
      pushesDue: due.length,
      maxLoopDelayMs: delay.max / 1e6,
    };
  } finally {
    await release(sims);
    await plane.cp.stop();
  }
}

interface ChurnRound {
  readonly round: number;
  readonly rssMiB: number;
  readonly heapMiB: number;
  readonly fds: number;
  readonly statuses: number;
}

interface Churn {
  readonly baselineFds: number;
  readonly baselineRssMiB: number;
  readonly rounds: ChurnRound[];
  readonly stalledPushes: number;
  readonly endpointChanges: number;
}

const openFds = (): number => readdirSync('/proc/self/fd').length;

async function connectAndDrop(plane: StartedPlane, mesh: BenchMesh, stalledCount: number): Promise<void> {
  const sims = pool(2);
  try {
    await sims.connect(plane.target, mesh.sidecars, 1, undefined);
    await waitSteady(plane.cp, mesh.sidecars.length, 120_000);
  } finally {
    await release(sims);
  }
  // The server sees the streams end; wait until only the stalled ones remain.
  const deadline = Date.now() + 30_000;
  while (plane.cp.statuses.all().length > stalledCount && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
}

async function churnRounds(rounds: number, stalledCount: number): Promise<Churn> {
  const mesh = generateMesh({ services: 1000, sidecars: 2000, upstreamsPerService: 3, seed: 20261130 });
  // Short grace so released state is visible within the run; the default is 60 s.
  const plane = await startMeshPlane(mesh, false, 'churn', 2_000);
  const stalledSpecs = [...mesh.sidecars]
    .sort((a, b) => hubScore(mesh, b) - hubScore(mesh, a))
    .slice(0, stalledCount);
  const stalled = pool(1);
  let changes = 0;
  try {
    await stalled.connect(plane.target, stalledSpecs, 1, undefined);
    await waitSteady(plane.cp, stalledCount, 60_000);
    await stalled.stall();
    const baseline = settledMemory();
    const baselineFds = openFds();
    const out: ChurnRound[] = [];
    const endpoints = new Map(mesh.endpoints);
    const watched = [
      ...new Set(
        stalledSpecs.flatMap((s) =>
          [...mesh.consumers].filter(([, c]) => c.includes(s.nodeId)).map(([k]) => k),
        ),
      ),
      // Only Consul-discovered services take endpoint changes; the others declare their instances.
    ].filter((k) => endpoints.has(k));
    for (let round = 1; round <= rounds; round++) {
      await connectAndDrop(plane, mesh, stalledCount);
      // Endpoint churn on what the stalled sidecars call: every change is a push they never read.
      for (let k = 0; k < 50; k++) {
        const service = watched[k % watched.length]!;
        const next = moveFirstEndpoint(endpoints.get(service)!, MARKER_BASE + changes++);
        endpoints.set(service, next);
        await plane.cp.controlPlane.updateEndpoints(next);
      }
      await new Promise((r) => setTimeout(r, 2_500)); // past the release grace period
      const m = settledMemory();
      out.push({
        round,
        rssMiB: m.rss / 2 ** 20,
        heapMiB: m.heapUsed / 2 ** 20,
        fds: openFds(),
        statuses: plane.cp.statuses.toJSON().length,
      });
      console.log(
        `[churn] round ${round}: RSS ${(m.rss / 2 ** 20).toFixed(1)} MiB, fds ${openFds()} (baseline ${baselineFds})`,
      );
    }
    const stalledPushes = plane.cp.statuses
      .all()
      .filter((s) => stalledSpecs.some((x) => x.nodeId === s.nodeId))
      .reduce((n, s) => n + [...s.types.values()].reduce((k, t) => k + t.pushes, 0), 0);
    return {
      baselineFds,
      baselineRssMiB: baseline.rss / 2 ** 20,
      rounds: out,
      stalledPushes,
      endpointChanges: changes,
    };
  } finally {
    await release(stalled);
    await plane.cp.stop();
  }
}

function hubScore(mesh: BenchMesh, s: SidecarSpec): number {
  let n = 0;
  for (const c of mesh.consumers.values()) if (c.includes(s.nodeId)) n++;
  return n;
}

function machine(): string {
  const sh = (c: string) => {
    try {
      return execSync(c, { encoding: 'utf8' }).trim();
    } catch {
      return '?';
    }
  };
  return `${sh('nproc')} cores (\`nproc\`), ${sh("lscpu | grep 'Model name' | sed 's/Model name: *//'")}, Node ${process.version}`;
}

function render(a: DuringApply, c: Churn, date: string): string {
  const first = c.rounds[0]!;
  const last = c.rounds.at(-1)!;
  const maxRss = Math.max(...c.rounds.map((r) => r.rssMiB));
  const spread = ((maxRss - first.rssMiB) / first.rssMiB) * 100;
  const f = (n: number) => n.toFixed(1);
  return [
    `### Responsiveness and bounded state (${date})`,
    '',
    `Machine: ${machine()}. Command: \`npx tsx bench/responsive.ts\`.`,
    '',
    `**During a ${a.documents}-document apply** (10 000 Services, every one touched; ${a.sidecars} sidecars planned; apply took ${f(a.applyMs)} ms, the first apply ${f(a.firstApplyMs)} ms; applied through \`ControlPlane.apply\`, so YAML parsing and the admin API's body handling are not in this figure):`,
    '',
    '| probe | samples | p50 (ms) | p99 (ms) | max (ms) | target |',
    '|---|---:|---:|---:|---:|---|',
    `| GET /healthz (admin API, from a worker thread) | ${a.healthz.count} | ${f(a.healthz.p50)} | ${f(a.healthz.p99)} | ${f(a.healthz.max)} | < 200 ms: ${a.healthz.max < 200 ? 'met' : 'NOT met'} |`,
    `| EDS push to a connected sidecar (change due → received, another process) | ${a.push.count} of ${a.pushesDue} | ${f(a.push.p50)} | ${f(a.push.p99)} | ${f(a.push.max)} | < 200 ms: ${a.push.max < 200 ? 'met' : 'NOT met'} |`,
    '',
    `Longest event-loop stall during the apply (monitorEventLoopDelay): ${f(a.maxLoopDelayMs)} ms.`,
    '',
    `**Connect/drop churn**: ${c.rounds.length} rounds of 2000 streams connecting (until every one ACKed) and dropping, beside 10 streams that stopped reading; ${c.endpointChanges} endpoint changes pushed at what the stalled streams call; release grace 2 s for the run. Baseline (10 stalled streams, before round 1): RSS ${f(c.baselineRssMiB)} MiB, ${c.baselineFds} fds.`,
    '',
    '| round | RSS (MiB) | heap (MiB) | open fds | statuses listed |',
    '|---:|---:|---:|---:|---:|',
    ...c.rounds.map((r) => `| ${r.round} | ${f(r.rssMiB)} | ${f(r.heapMiB)} | ${r.fds} | ${r.statuses} |`),
    '',
    `- RSS: highest round ${f(maxRss)} MiB vs the first ${f(first.rssMiB)} MiB (${spread >= 0 ? '+' : ''}${f(spread)} %; target within 10 %: ${Math.abs(spread) <= 10 ? 'met' : 'NOT met'}); last round ${f(last.rssMiB)} MiB.`,
    `- File descriptors after the last round: ${last.fds} (baseline ${c.baselineFds}: ${last.fds <= c.baselineFds ? 'met' : 'NOT met'}).`,
    `- Responses written to the 10 stalled streams over the whole run: ${c.stalledPushes} (the rest coalesced while their transport was full).`,
    '',
  ].join('\n');
}

async function main(): Promise<void> {
  const date = process.env.BENCH_DATE ?? new Date().toISOString().slice(0, 10);
  const a = await duringBigApply();
  console.log(
    `[apply] healthz p99 ${a.healthz.p99.toFixed(1)} max ${a.healthz.max.toFixed(1)} ms; push p99 ${a.push.p99.toFixed(1)} max ${a.push.max.toFixed(1)} ms`,
  );
  const c = await churnRounds(Number(process.env.BENCH_ROUNDS ?? 10), 10);
  const report = render(a, c, date);
  console.log(`\n${report}`);
  writeResults(RESULTS, 'responsive', report);
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? (e.stack ?? e.message) : e);
    process.exit(1);
  },
);
