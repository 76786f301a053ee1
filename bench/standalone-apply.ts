// Applies measured on `clinimesh serve` in its own process, as an operator makes them: one Service
// edited (an instance's weight) and sent alone, as `clinimesh apply -f service.yaml` sends it, over
// HTTPS to the admin API. The server's CPU per apply is its event loop's while the apply is under way
// (schedstat) plus what its other threads used over the whole series; "all affected received" is
// when the simulated sidecars that consume the service have each had their push. A first series of
// as many edits, drawn by the same law, runs before and is reported apart: a process fresh from connect
// has never applied anything, and V8 compiles the apply's code on its first runs (its optimising
// compiler works on other threads), which a control plane that has been running does not pay again.
import { setTimeout as sleep } from 'node:timers/promises';
import { toYaml } from '../src/cli/manifest-document.ts';
import { serviceKey, type Service } from '../src/manifest/index.ts';
import { adminRequest, type AdminTarget } from '../test/helpers/admin.ts';
import { changeTargets, weightEdited, type BenchMesh } from './mesh-gen.ts';
import { mainThreadCpuMs, mainThreadRunMs, processCpuMs } from './proc.ts';
import { leastSquares, summarize, type Summary } from './stats.ts';
import type { SimulatorPool } from './workers.ts';

/** How often the simulators' response count is read while a push is under way. */
const RECEIPT_POLL_MS = 2;
const IDLE_SAMPLE_MS = 3_000;
/** After the last push: for the ACKs to be read before the CPU is. */
const ACK_SETTLE_MS = 300;

/** One series of applies, each waited on until every affected simulated sidecar had its push. */
export interface ApplySeries {
  readonly applies: number;
  /** Sidecars that consume the edited Service, each of which gets one EDS push. */
  readonly fanout: Summary;
  /** From sending the apply until every affected simulated sidecar had its push. */
  readonly allReceived: Summary;
  /**
   * Server CPU per apply: its event loop's from sending it until its pushes were received, plus
   * what the other threads (garbage collection, the optimising compiler, file writes) used over
   * the series, per apply.
   */
  readonly cpuMsPerApply: number;
  readonly otherThreadsMsPerApply: number;
  /** The event loop's CPU per apply, from sending it until its pushes were received. */
  readonly mainThreadMs: Summary;
  /** Least squares of the event loop's CPU over the fanout: what an apply costs, and each sidecar pushed to. */
  readonly fixedMs: number;
  readonly perSidecarMs: number;
  /** All threads from /proc/<pid>/stat over the whole series (10 ms ticks), idle CPU in between left in. */
  readonly rawCpuMsPerApply: number;
}

export interface StandaloneApplyResult {
  /** As many edits first, drawn by the same law, while the apply's code is new to the process. */
  readonly warmup: ApplySeries;
  /** The Services the in-process phase edits: the figures judged. */
  readonly measured: ApplySeries;
  /** What the server used per second connected and unchanged, before the series. */
  readonly idleCpuMsPerS: number;
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

interface SeriesContext {
  readonly server: AdminTarget & { readonly pid: number };
  readonly pool: SimulatorPool;
  readonly mesh: BenchMesh;
  /** The manifests as last applied, by service key (an edit builds on the one before). */
  readonly byKey: Map<string, Service>;
  readonly timeoutMs: number;
}

async function series(c: SeriesContext, keys: readonly string[]): Promise<ApplySeries> {
  const { server, pool, mesh, byKey } = c;
  const fanout: number[] = [];
  const received: number[] = [];
  const mainMs: number[] = [];
  const responses0 = (await pool.collect()).responses;
  let expected = 0;
  const cpu0 = await processCpuMs(server.pid);
  const statMain0 = await mainThreadCpuMs(server.pid);
  for (const key of keys) {
    const next = weightEdited(byKey.get(key)!);
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
    await responsesReach(pool, before + affected, c.timeoutMs);
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
  };
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
  const { server, mesh } = o;
  const idle0 = await processCpuMs(server.pid);
  await sleep(IDLE_SAMPLE_MS);
  const idleCpuMsPerS = ((await processCpuMs(server.pid)) - idle0) / (IDLE_SAMPLE_MS / 1000);
  const byKey = new Map<string, Service>(
    mesh.manifests.flatMap((m) => (m.kind === 'Service' ? [[serviceKey(m), m] as const] : [])),
  );
  changeTargets(mesh, o.consulChanges, true);
  const measured = changeTargets(mesh, o.count, false);
  // Drawn after, by the same law (hubs as often as they come, the measured ones too): what a running
  // control plane has been through. Warming on a few small Services only leaves the first pushes
  // to hundreds of streams to the measured series (measured: 43–45 ms an apply, against 30–36).
  const warmup = changeTargets(mesh, o.count, false);
  const c = { ...o, byKey };
  return { warmup: await series(c, warmup), measured: await series(c, measured), idleCpuMsPerS };
}
