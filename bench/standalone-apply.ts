// Applies measured on `clinimesh serve` in its own process, as an operator makes them: one Service
// edited (an instance's weight) and sent alone, as `clinimesh apply -f service.yaml` sends it, over
// HTTPS to the admin API. The server's CPU per apply is its event loop's while the apply is under way
// (schedstat) plus what its other threads used over the whole series; "all affected received" is
// when the simulated sidecars that consume the service have each had their push.
import { setTimeout as sleep } from 'node:timers/promises';
import { toYaml } from '../src/cli/manifest-document.ts';
import type { Manifest } from '../src/manifest/index.ts';
import { adminRequest, type AdminTarget } from '../test/helpers/admin.ts';
import { changeTargets, type BenchMesh } from './mesh-gen.ts';
import { mainThreadCpuMs, mainThreadRunMs, processCpuMs } from './proc.ts';
import { leastSquares, summarize, type Summary } from './stats.ts';
import type { SimulatorPool } from './workers.ts';

/** How often the simulators' response count is read while a push is under way. */
const RECEIPT_POLL_MS = 2;
const IDLE_SAMPLE_MS = 3_000;
/** After the last push: for the ACKs to be read before the CPU is. */
const ACK_SETTLE_MS = 300;

export interface StandaloneApplyResult {
  readonly applies: number;
  /** Sidecars that consume the edited Service, each of which gets one EDS push. */
  readonly fanout: Summary;
  /** From sending the apply until every affected simulated sidecar had its push. */
  readonly allReceived: Summary;
  /**
   * Server CPU per apply: its event loop's from sending it until its pushes were received, plus
   * what the other threads (garbage collection, file writes) used over the series, per apply.
   */
  readonly cpuMsPerApply: number;
  readonly otherThreadsMsPerApply: number;
  /** The event loop's CPU per apply, from sending it until its pushes were received (no idle taken out). */
  readonly mainThreadMs: Summary;
  /** Least squares of the event loop's CPU over the fanout: what an apply costs, and each sidecar pushed to. */
  readonly fixedMs: number;
  readonly perSidecarMs: number;
  /** All threads from /proc/<pid>/stat over the whole series (10 ms ticks), idle CPU in between left in. */
  readonly rawCpuMsPerApply: number;
  /** What the server used per second connected and unchanged, before the series. */
  readonly idleCpuMsPerS: number;
}

function edited(m: Manifest): Manifest {
  if (m.kind !== 'Service') throw new Error(`${m.kind} ${m.name} is not a Service`);
  return { ...m, instances: m.instances.map((i, j) => (j === 0 ? { ...i, weight: (i.weight % 5) + 1 } : i)) };
}

async function responsesReach(pool: SimulatorPool, want: number, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const seen = (await pool.collect()).responses;
    if (seen >= want) return;
    if (performance.now() > deadline)
      throw new Error(`pushes not all received: ${seen} of ${want} responses`);
    await sleep(RECEIPT_POLL_MS);
  }
}

export async function measureStandaloneApplies(o: {
  readonly server: AdminTarget & { readonly pid: number };
  readonly pool: SimulatorPool;
  readonly mesh: BenchMesh;
  readonly count: number;
  /** The Consul changes the in-process phase draws first: drawn here too, so both edit the same Services. */
  readonly consulChanges: number;
  readonly timeoutMs: number;
}): Promise<StandaloneApplyResult> {
  const { server, pool, mesh } = o;
  const idle0 = await processCpuMs(server.pid);
  await sleep(IDLE_SAMPLE_MS);
  const idleCpuMsPerS = ((await processCpuMs(server.pid)) - idle0) / (IDLE_SAMPLE_MS / 1000);

  const byKey = new Map<string, Manifest>(
    mesh.manifests.flatMap((m) => (m.kind === 'Service' ? [[`${m.name}.${m.namespace}`, m] as const] : [])),
  );
  const fanout: number[] = [];
  const received: number[] = [];
  const mainMs: number[] = [];
  const responses0 = (await pool.collect()).responses;
  let expected = 0;
  const cpu0 = await processCpuMs(server.pid);
  const statMain0 = await mainThreadCpuMs(server.pid);
  changeTargets(mesh, o.consulChanges, true);
  for (const key of changeTargets(mesh, o.count, false)) {
    const next = edited(byKey.get(key)!);
    byKey.set(key, next);
    const affected = mesh.consumers.get(key)?.length ?? 0;
    // Counted afresh for each apply: one that brought more than its pushes is found below, not
    // carried into the next one's wait.
    const before = (await pool.collect()).responses;
    const main0 = await mainThreadRunMs(server.pid);
    const sent = performance.now();
    const res = await adminRequest(server, 'POST', '/v1/apply?file=edit.yaml', { body: toYaml(next) });
    if (res.status !== 200) throw new Error(`apply of ${key}: HTTP ${res.status} ${res.text.slice(0, 300)}`);
    expected += affected;
    await responsesReach(pool, before + affected, o.timeoutMs);
    received.push(performance.now() - sent);
    mainMs.push((await mainThreadRunMs(server.pid)) - main0);
    fanout.push(affected);
  }
  await sleep(ACK_SETTLE_MS);
  const cpuMs = (await processCpuMs(server.pid)) - cpu0;
  // From /proc stat (ticks) over the series: the kernel keeps the CPU of threads that ended in it.
  const othersMs = Math.max(0, cpuMs - ((await mainThreadCpuMs(server.pid)) - statMain0));
  const extra = (await pool.collect()).responses - responses0 - expected;
  if (extra !== 0)
    throw new Error(`the simulated sidecars had ${extra} response(s) more than the applies' pushes`);
  const stale = await adminRequest(server, 'GET', '/v1/proxy-status?state=STALE,NACKED');
  const behind = (stale.json as { sidecars?: unknown[] } | undefined)?.sidecars?.length;
  if (stale.status !== 200 || behind !== 0)
    throw new Error(`after the applies: HTTP ${stale.status}, ${behind ?? '?'} sidecar(s) stale or NACKed`);
  const line = leastSquares(fanout, mainMs);
  return {
    fixedMs: line.intercept,
    perSidecarMs: line.slope,
    applies: received.length,
    fanout: summarize(fanout),
    allReceived: summarize(received),
    mainThreadMs: summarize(mainMs),
    cpuMsPerApply: (mainMs.reduce((a, b) => a + b, 0) + othersMs) / received.length,
    otherThreadsMsPerApply: othersMs / received.length,
    rawCpuMsPerApply: cpuMs / received.length,
    idleCpuMsPerS,
  };
}
