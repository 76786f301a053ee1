// The control plane measured as a user runs it: `node bin/clinimesh.js serve` in its own process, so
// its CPU and memory are its own and not shared with the benchmark's driver, tsx or bookkeeping. The
// mesh goes in as manifest files (`serve -f DIR`), the Consul-discovered services' endpoints come from
// the in-process Consul double the server watches (`--consul-addr`), and the CA is brought by the
// operator (`--ca-dir`, made here first), so the bench can issue each service the workload
// certificate its simulated sidecars prove their identity with. CPU and memory are read from
// /proc/<pid>; "all ACKed" is read from the admin API, as `clinimesh proxy-status` does.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { ConsulDouble } from '../test/consul-double/server.ts';
import { adminRequest, type AdminTarget } from '../test/helpers/admin.ts';
import { startReplica, type Replica } from '../test/helpers/replicas.ts';
import { CertificateAuthority } from '../src/ca/index.ts';
import { typeVersion } from '../src/xds/cache/snapshot.ts';
import { WORKER_IDLE_MS } from '../src/xds/plan/set-check.ts';
import { consulCatalog, writeMeshManifests } from './mesh-files.ts';
import type { BenchMesh } from './mesh-gen.ts';
import { mainThreadCpuMs, processCpuMs, processMemory, type ProcMemory } from './proc.ts';
import { measureStandaloneApplies, type StandaloneApplyResult } from './standalone-apply.ts';
import { workloadCredentials } from './setup.ts';
import { describeCounts } from './stats.ts';
import type { SimulatorPool } from './workers.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Reading the manifests and planning every sidecar at start takes a while at 5000 on two cores. */
const START_TIMEOUT_MS = 240_000;
const POLL_MS = 250;
/** The server is polled at least this often even when the simulators' count says it is too early. */
const SLOW_POLL_MS = 2_000;
const IDLE_SAMPLE_MS = 5_000;
/** After every sidecar ACKed: long enough for buffers to drain and the allocator to settle. */
const SETTLE_MS = 3_000;

export interface StandaloneResult {
  readonly sidecars: number;
  /** What bin/clinimesh.js ran: the compiled JavaScript in dist/ or the TypeScript sources through tsx. */
  readonly runs: 'dist' | 'tsx';
  /** From spawning `serve` until its admin API answered with the mesh applied. */
  readonly startMs: number;
  /** Consul services watched, all synced before any sidecar connected. */
  readonly consulServices: number;
  /** From the first stream opened until the admin API showed every sidecar ACKed every type. */
  readonly connectMs: number;
  /** Server CPU (utime + stime, all threads) across the connect phase, and its event-loop thread's part. */
  readonly cpuMs: number;
  readonly mainThreadCpuMs: number;
  /** The driver's status polls during the connect phase, and what one costs the server (measured after). */
  readonly polls: number;
  readonly pollCpuMs: number;
  /** Server CPU per second before anyone connected (Consul watches renewing, timers). */
  readonly idleCpuMsPerS: number;
  readonly reconnects: ReadonlyMap<string, number>;
  /** Resident memory with the mesh planned and nobody connected, and after connect and settle. */
  readonly before: ProcMemory;
  readonly after: ProcMemory;
  /** V8's view from the server's own metrics (process.memoryUsage there), after connect and settle. */
  readonly heapUsed?: number;
  readonly heapTotal?: number;
  readonly external?: number;
  /** One Service edit applied at a time through the admin API, after connect (when asked for). */
  readonly applies?: StandaloneApplyResult;
}

/** How `bin/clinimesh.js` decides: dist/ when it is there and not older than the sources. */
function binRunsBuild(): boolean {
  const built = join(ROOT, 'dist', 'cli', 'main.js');
  const newest = (dir: string): number =>
    readdirSync(dir, { withFileTypes: true }).reduce((latest, e) => {
      const path = join(dir, e.name);
      return Math.max(latest, e.isDirectory() ? newest(path) : statSync(path).mtimeMs);
    }, 0);
  return existsSync(built) && statSync(built).mtimeMs >= newest(join(ROOT, 'src'));
}

/**
 * Builds dist/ when it is missing or stale (the image runs it; `npm run build`), unless
 * BENCH_SERVE_BUILD=0 asks to measure the sources through tsx as `npm start` runs them unbuilt.
 */
export function prepareServeBuild(log: (m: string) => void): 'dist' | 'tsx' {
  if (process.env.BENCH_SERVE_BUILD !== '0' && !binRunsBuild()) {
    log('building dist/ (npm run build) so `serve` runs the compiled JavaScript, as the image does');
    const built = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
    if (built.status !== 0) throw new Error(`npm run build failed (${built.status})`);
  }
  return binRunsBuild() ? 'dist' : 'tsx';
}

/** The `clinimesh_*`/`nodejs_*` gauges without labels, or with the labels given, from Prometheus text. */
export function metricValue(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels ? `{${labels}}` : ''} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

export interface ProxyStatus {
  readonly sidecars: ReadonlyArray<{
    readonly node: string;
    readonly types: Readonly<Record<string, { readonly state: string; readonly current?: string }>>;
  }>;
}

/** The version of a type with no resources: what a TCP-only sidecar's route configurations are at. */
const EMPTY_VERSION = typeVersion([]);

/**
 * Sidecars that hold the current version of every type the cache has for them (what the in-process
 * bench's `steadySidecars` checks): SYNCED everywhere, except a type with nothing cached for them,
 * which they have no reason to ask for.
 */
export function steadyNodes(status: ProxyStatus): number {
  const steady = new Set<string>();
  for (const s of status.sidecars)
    if (
      Object.values(s.types).every(
        (t) =>
          t.state === 'SYNCED' ||
          t.current === undefined ||
          (t.state === 'NOT SENT' && t.current === EMPTY_VERSION),
      )
    )
      steady.add(s.node);
  return steady.size;
}

async function admin(target: AdminTarget, path: string): Promise<string> {
  const res = await adminRequest(target, 'GET', path);
  if (res.status !== 200) throw new Error(`GET ${path}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
  return res.text;
}

/** One poll: the cheap gauge first, the per-sidecar status only once the gauge says all are synced. */
async function allSteady(target: AdminTarget, n: number): Promise<Poll> {
  const synced = metricValue(await admin(target, '/metrics'), 'clinimesh_sidecars', 'state="synced"') ?? 0;
  if (synced < n) return { synced, steady: 0 };
  const status = JSON.parse(await admin(target, '/v1/proxy-status')) as ProxyStatus;
  return { synced, steady: steadyNodes(status) };
}

/** Sidecars the gauge counts synced, and those the per-sidecar status shows steady (when it was read). */
interface Poll {
  readonly synced: number;
  readonly steady: number;
}

/** Waits until every Consul service the server watches has answered (its endpoints are in the cache). */
async function consulSynced(target: AdminTarget, want: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let seen = 0;
  while (performance.now() < deadline) {
    const status = JSON.parse(await admin(target, '/v1/status')) as { consul?: Array<{ synced: boolean }> };
    seen = (status.consul ?? []).filter((c) => c.synced).length;
    if (seen >= want) return;
    await sleep(POLL_MS);
  }
  throw new Error(`only ${seen} of ${want} Consul services synced within ${timeoutMs} ms`);
}

export interface StandaloneOptions {
  readonly mesh: BenchMesh;
  readonly pool: SimulatorPool;
  readonly runs: 'dist' | 'tsx';
  /** Mutual TLS on xDS as deployed (false: `serve --xds-insecure`, plaintext on loopback). */
  readonly xdsTls: boolean;
  readonly streamsPerChannel: number;
  readonly rampMs: number;
  readonly timeoutMs: number;
  /** Service edits applied one at a time after connect (0: none), drawn after this many Consul changes. */
  readonly applies: number;
  readonly consulChanges: number;
  readonly log: (m: string) => void;
}

export async function measureStandalone(o: StandaloneOptions): Promise<StandaloneResult> {
  const { mesh, pool, log } = o;
  const n = mesh.sidecars.length;
  const work = await mkdtemp(join(tmpdir(), 'clinimesh-bench-serve-'));
  let consul: ConsulDouble | undefined;
  let server: Replica | undefined;
  try {
    const manifests = join(work, 'manifests');
    await writeMeshManifests(mesh, manifests);
    const meshDoc = mesh.manifests.find((m) => m.kind === 'Mesh');
    if (meshDoc?.kind !== 'Mesh') throw new Error('the bench mesh has no Mesh document');
    const caDir = join(work, 'ca');
    const caOpened = await CertificateAuthority.open({
      dir: caDir,
      create: true,
      trustDomain: meshDoc.trustDomain,
    });
    if (!caOpened.ok) throw new Error(`CA: ${JSON.stringify(caOpened.errors)}`);
    const tls = o.xdsTls ? workloadCredentials(caOpened.value, mesh) : undefined;
    consul = await ConsulDouble.start();
    const catalog = consulCatalog(mesh);
    for (const node of catalog.nodes) consul.addNode(node);
    for (const r of catalog.registrations) consul.registerService(r.body, { node: r.node });

    const t0 = performance.now();
    server = await startReplica({
      name: 'bench-serve',
      args: [
        ...['-f', manifests, '--ca-dir', caDir, '--consul-addr', consul.address],
        ...(o.xdsTls ? [] : ['--xds-insecure']),
      ],
      startTimeoutMs: START_TIMEOUT_MS,
      // Node flags NODE_OPTIONS refuses (`--cpu-prof --cpu-prof-dir=…`), space-separated; default none.
      nodeArgs: process.env.BENCH_SERVE_NODE_ARGS?.split(' ').filter(Boolean),
      // For experiments with V8 or allocator settings (`--max-semi-space-size=…`); default none.
      env: process.env.BENCH_SERVE_NODE_OPTIONS
        ? { NODE_OPTIONS: process.env.BENCH_SERVE_NODE_OPTIONS }
        : undefined,
    });
    const startMs = performance.now() - t0;
    await consulSynced(server, mesh.endpoints.size, o.timeoutMs);
    log(`serve (${o.runs}) up in ${startMs.toFixed(0)} ms, ${mesh.endpoints.size} Consul services synced`);
    // The start-up apply's whole-set check ran on a worker thread that retires when idle: measured
    // from after it has gone, as a control plane that has been running a while would be.
    await pool.prepare(mesh.sidecars, tls);
    await sleep(WORKER_IDLE_MS + 1_000);
    const pid = server.pid;
    // What the server spends with nobody connected (Consul watches renewing, timers), for scale.
    const idle0 = await processCpuMs(pid);
    await sleep(IDLE_SAMPLE_MS);
    const idleCpuMsPerS = ((await processCpuMs(pid)) - idle0) / (IDLE_SAMPLE_MS / 1000);
    const before = await processMemory(pid);
    const cpu0 = await processCpuMs(pid);
    const main0 = await mainThreadCpuMs(pid);
    const c0 = performance.now();
    await pool.connect(`${server.host}:${server.xdsPort}`, mesh.sidecars, o.streamsPerChannel, tls, o.rampMs);
    const reconnects = new Map<string, number>();
    let polls = 0;
    let statusReads = 0;
    let lastPoll = 0;
    for (;;) {
      // The simulators' count costs the server nothing: it is asked only once every sidecar could
      // have had its first four responses, or every few seconds in case that count says too little.
      const seen = await pool.collect();
      for (const [why, k] of seen.reconnects) reconnects.set(why, (reconnects.get(why) ?? 0) + k);
      if (seen.responses >= 4 * n || performance.now() - lastPoll > SLOW_POLL_MS) {
        lastPoll = performance.now();
        const poll = await allSteady(server, n);
        polls++;
        if (poll.synced >= n) statusReads++;
        if (poll.steady >= n) break;
        if (lastPoll - c0 > o.timeoutMs)
          throw new Error(
            `not every sidecar ACKed within ${o.timeoutMs} ms (${poll.synced} synced by the gauge, ${poll.steady} steady by proxy-status); streams reopened: ${describeCounts(reconnects) || 'none'}`,
          );
      }
      await sleep(POLL_MS);
    }
    const connectMs = performance.now() - c0;
    const cpuMs = (await processCpuMs(pid)) - cpu0;
    const mainMs = (await mainThreadCpuMs(pid)) - main0;
    await sleep(SETTLE_MS);
    const after = await processMemory(pid);
    const metrics = await admin(server, '/metrics');
    const pollCpuMs = await pollCost(server, n, polls, statusReads);
    const applies =
      o.applies > 0
        ? await measureStandaloneApplies({
            server,
            pool,
            mesh,
            count: o.applies,
            consulChanges: o.consulChanges,
            timeoutMs: o.timeoutMs,
          })
        : undefined;
    return {
      sidecars: n,
      runs: o.runs,
      startMs,
      consulServices: mesh.endpoints.size,
      connectMs,
      cpuMs,
      mainThreadCpuMs: mainMs,
      polls,
      pollCpuMs,
      idleCpuMsPerS,
      reconnects,
      before,
      after,
      heapUsed: metricValue(metrics, 'nodejs_heap_size_used_bytes'),
      heapTotal: metricValue(metrics, 'nodejs_heap_size_total_bytes'),
      external: metricValue(metrics, 'nodejs_external_memory_bytes'),
      applies,
    };
  } catch (e) {
    if (server) console.error(`serve's last output:\n${server.output().slice(-3000)}`);
    throw e;
  } finally {
    await server?.stop();
    await consul?.stop();
    await rm(work, { recursive: true, force: true });
  }
}

/**
 * What the connect phase's polls cost the server, from the same requests made again with everyone
 * connected (the gauge every time, the per-sidecar status as often as it was read), so it can be told
 * apart from the sidecars' own cost.
 */
async function pollCost(server: Replica, n: number, polls: number, statusReads: number): Promise<number> {
  const rounds = 3;
  const m0 = await processCpuMs(server.pid);
  for (let i = 0; i < rounds; i++) await admin(server, '/metrics');
  const m1 = await processCpuMs(server.pid);
  for (let i = 0; i < rounds; i++) await allSteady(server, n);
  const s1 = await processCpuMs(server.pid);
  const gauge = (m1 - m0) / rounds;
  const status = Math.max(0, (s1 - m1) / rounds - gauge);
  return polls * gauge + statusReads * status;
}
