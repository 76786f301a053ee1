// The measurements per mesh size: connecting every sidecar to steady state, endpoint changes one at
// a time (latency to "every affected sidecar ACKed"), Consul-style flapping through the endpoint
// batcher (as fast as possible, and as a steady stream), and a small re-apply. Every wait is
// bounded in time.
import { setImmediate as nextTick, setTimeout as sleep } from 'node:timers/promises';
import {
  EndpointChanges,
  edsCounters,
  settledMemory,
  waitSteady,
  type BenchContext,
  type MadeChange,
} from './harness.ts';
import { MARKER_BASE, type XdsTlsMaterial } from './ipc.ts';
import type { Manifest } from '../src/manifest/index.ts';
import {
  changeTargets,
  flapFirstEndpoint,
  weightEdited,
  moveFirstEndpoint,
  seededRandom,
} from './mesh-gen.ts';
import { cpuMs, describeCounts, summarize, threadCpuMs, type Summary } from './stats.ts';
import type { TypeSnapshot } from '../src/xds/cache/snapshot.ts';
import { ENDPOINT } from '../src/xds/resources/type-urls.ts';
import { encodeDeltaResponse } from '../src/xds/server/delta-wire.ts';

export interface ConnectResult {
  readonly sidecars: number;
  /** Streams were opened evenly over this long (0: all at once). */
  readonly rampMs: number;
  readonly connectMs: number;
  readonly cpuMs: number;
  /** The part of `cpuMs` spent on the event loop's thread (the rest: GC helpers, libuv pool, workers). */
  readonly mainThreadCpuMs: number;
  /** Streams that failed while connecting and were opened again, by reason. */
  readonly reconnects: ReadonlyMap<string, number>;
  /** CPU the simulators (all worker processes) used from opening the streams until all were steady. */
  readonly simulatorCpuMs: number;
  /** Heap and RSS growth from "snapshots built, nobody connected" to "all connected and steady". */
  readonly heapPerSidecar: number;
  readonly rssPerSidecar: number;
  readonly heapAfter: number;
  readonly rssAfter: number;
}

export async function connectAll(
  ctx: BenchContext,
  xds: { readonly target: string; readonly tls?: XdsTlsMaterial },
  streamsPerChannel: number,
  timeoutMs: number,
  rampMs = 0,
): Promise<ConnectResult> {
  const n = ctx.mesh.sidecars.length;
  await ctx.pool.prepare(ctx.mesh.sidecars, xds.tls);
  const simulatorCpu0 = (await ctx.pool.collect()).cpuMs;
  const before = settledMemory();
  const cpu0 = process.cpuUsage();
  const main0 = threadCpuMs().get('main') ?? 0;
  const t0 = performance.now();
  await ctx.pool.connect(xds.target, ctx.mesh.sidecars, streamsPerChannel, xds.tls, rampMs);
  const steadyAt = await waitSteady(ctx.cp, n, timeoutMs).catch(async (e: Error) => {
    // The simulators know why their streams failed (TLS, authentication); say it with the timeout.
    const { reconnects } = await ctx.pool.collect();
    throw new Error(`${e.message}; streams reopened: ${describeCounts(reconnects) || 'none'}`);
  });
  const cpu = cpuMs(process.cpuUsage(cpu0));
  const mainThreadCpuMs = (threadCpuMs().get('main') ?? 0) - main0;
  const { reconnects, cpuMs: simulatorCpu } = await ctx.pool.collect();
  const after = settledMemory();
  return {
    sidecars: n,
    rampMs,
    connectMs: steadyAt - t0,
    cpuMs: cpu,
    mainThreadCpuMs,
    reconnects,
    simulatorCpuMs: simulatorCpu - simulatorCpu0,
    heapPerSidecar: (after.heapUsed - before.heapUsed) / n,
    rssPerSidecar: (after.rss - before.rss) / n,
    heapAfter: after.heapUsed,
    rssAfter: after.rss,
  };
}

export interface SequentialResult {
  readonly changes: number;
  readonly fanout: Summary;
  /** Per change: from the change to the last affected sidecar's ACK (server clock). */
  readonly allAcked: Summary;
  /** Per (change, sidecar): from the change to the server receiving that sidecar's ACK. */
  readonly perSidecarAck: Summary;
  /** Per (change, sidecar): from the change to the EDS response arriving at the simulator. */
  readonly perSidecarDelivery: Summary;
  readonly missingDeliveries: number;
  readonly bytesPerChange: Summary;
  readonly cpuMsPerChange: Summary;
  readonly syncMs: Summary;
  readonly transports: TransportBytesPerChange;
}

/** EDS bytes an endpoint change needs at least: per affected delta sidecar, one response with only the assignments that changed. */
function minimumDeltaBytes(before: ReadonlyMap<string, TypeSnapshot | undefined>, ctx: BenchContext): number {
  let total = 0;
  for (const [node, was] of before) {
    const now = ctx.cp.cache.get(node, ENDPOINT);
    if (!now || now.version === was?.version) continue;
    const changed = [...now.resources.values()].filter((r) => was?.resources.get(r.name)?.hash !== r.hash);
    const removed = [...(was?.resources.keys() ?? [])].filter((n) => !now.resources.has(n));
    total += encodeDeltaResponse({
      systemVersion: now.version,
      typeUrl: ENDPOINT,
      nonce: '1',
      resources: changed,
      removed,
    }).length;
  }
  return total;
}

export interface TransportBytesPerChange {
  /** EDS bytes to SotW sidecars, to delta sidecars, and the least delta could have sent. */
  readonly sotw: Summary;
  readonly delta: Summary;
  readonly deltaMinimum: Summary;
  /** Affected sidecars per change on each transport. */
  readonly sotwSidecars: Summary;
  readonly deltaSidecars: Summary;
}

export async function sequentialChanges(
  ctx: BenchContext,
  count: number,
  timeoutMs: number,
): Promise<SequentialResult> {
  await ctx.pool.collect(); // drop receipts from the connect phase
  const made: Array<MadeChange & { bytes: number; cpuMs: number }> = [];
  const changes = new EndpointChanges(ctx);
  const t = {
    sotw: [] as number[],
    delta: [] as number[],
    min: [] as number[],
    ns: [] as number[],
    nd: [] as number[],
  };
  for (const [k, service] of changeTargets(ctx.mesh, count, true).entries()) {
    const c0 = await edsCounters(ctx.cp);
    const consumers = ctx.mesh.consumers.get(service) ?? [];
    const before = new Map(consumers.map((n) => [n, ctx.cp.cache.get(n, ENDPOINT)]));
    const b0 = { sotw: ctx.bytes.sotw, delta: ctx.bytes.delta };
    const cpu0 = process.cpuUsage();
    // Through the batcher as the Consul watcher's answers go: an isolated change pays no debounce.
    const m = changes.viaBatcher(k, moveFirstEndpoint(ctx.endpoints.get(service)!, MARKER_BASE + k));
    await ctx.tracker.settle([m.change], timeoutMs);
    const cpu = cpuMs(process.cpuUsage(cpu0));
    const c1 = await edsCounters(ctx.cp);
    made.push({ ...m, bytes: c1.bytes - c0.bytes, cpuMs: cpu });
    const deltaNodes = new Map([...before].filter(([n]) => ctx.deltaNodes.has(n)));
    t.sotw.push(ctx.bytes.sotw - b0.sotw);
    t.delta.push(ctx.bytes.delta - b0.delta);
    t.min.push(minimumDeltaBytes(deltaNodes, ctx));
    t.nd.push(deltaNodes.size);
    t.ns.push(before.size - deltaNodes.size);
  }
  changes.stop();
  const { receipts } = await ctx.pool.collect();
  const delivery: number[] = [];
  for (const [, marker, at] of receipts) {
    const m = made[marker];
    if (m) delivery.push(at - m.wallStart);
  }
  const expected = made.reduce((n, m) => n + m.change.nodes, 0);
  return {
    changes: made.length,
    fanout: summarize(made.map((m) => m.change.nodes)),
    allAcked: summarize(made.map((m) => m.change.doneAt! - m.change.startedAt)),
    perSidecarAck: summarize(made.flatMap((m) => m.change.ackMs)),
    perSidecarDelivery: summarize(delivery),
    missingDeliveries: expected - delivery.length,
    bytesPerChange: summarize(made.map((m) => m.bytes)),
    cpuMsPerChange: summarize(made.map((m) => m.cpuMs)),
    syncMs: summarize(changes.syncMs),
    transports: {
      sotw: summarize(t.sotw),
      delta: summarize(t.delta),
      deltaMinimum: summarize(t.min),
      sotwSidecars: summarize(t.ns),
      deltaSidecars: summarize(t.nd),
    },
  };
}

export interface ApplyResult {
  readonly applies: number;
  readonly fanout: Summary;
  /** From calling apply to the last affected sidecar's ACK (server clock). */
  readonly allAcked: Summary;
  /** Server CPU of the apply call itself (check, plan, commit, publish). */
  readonly applyCpuMs: Summary;
  /** Server CPU from the apply until every affected sidecar ACKed (pushes and ACKs included). */
  readonly totalCpuMs: Summary;
}

/**
 * An operator edits one Service whose instances the manifest declares (an instance's weight, so
 * its callers' assignments change) and applies the whole set again, as `clinimesh apply -f dir/`
 * does, one Service at a time, picked by popularity like the endpoint moves.
 */
export async function applyEdits(ctx: BenchContext, count: number, timeoutMs: number): Promise<ApplyResult> {
  const rows: { nodes: number; ms: number; applyCpu: number; totalCpu: number }[] = [];
  for (const [k, key] of changeTargets(ctx.mesh, count, false).entries()) {
    const index = ctx.manifests.findIndex((m) => m.kind === 'Service' && `${m.name}.${m.namespace}` === key);
    const svc = ctx.manifests[index];
    if (svc?.kind !== 'Service') continue;
    ctx.manifests[index] = weightEdited(svc);
    const consumers = ctx.mesh.consumers.get(key) ?? [];
    const before = consumers.map((n) => ctx.cp.cache.get(n, ENDPOINT)?.version);
    const cpu0 = process.cpuUsage();
    const change = ctx.tracker.open(10_000 + k, performance.now());
    const applied = await ctx.cp.controlPlane.apply(ctx.manifests);
    const applyCpu = cpuMs(process.cpuUsage(cpu0));
    if (!applied.ok) throw new Error(`apply failed: ${JSON.stringify(applied.errors.slice(0, 3))}`);
    const moved = new Map<string, string>();
    consumers.forEach((n, i) => {
      const now = ctx.cp.cache.get(n, ENDPOINT)?.version;
      if (now !== undefined && now !== before[i]) moved.set(n, now);
    });
    ctx.tracker.expect(change, moved);
    await ctx.tracker.settle([change], timeoutMs);
    rows.push({
      nodes: moved.size,
      ms: change.doneAt! - change.startedAt,
      applyCpu,
      totalCpu: cpuMs(process.cpuUsage(cpu0)),
    });
  }
  return {
    applies: rows.length,
    fanout: summarize(rows.map((r) => r.nodes)),
    allAcked: summarize(rows.map((r) => r.ms)),
    applyCpuMs: summarize(rows.map((r) => r.applyCpu)),
    totalCpuMs: summarize(rows.map((r) => r.totalCpu)),
  };
}

export interface BurstResult {
  readonly changes: number;
  /** Batches the endpoint batcher flushed them in. */
  readonly batches: number;
  readonly affectedPushes: number;
  readonly fireMs: number;
  readonly convergeMs: number;
  readonly pushes: number;
  readonly pushesPerSecond: number;
  readonly bytes: number;
  readonly cpuMs: number;
  /** Per change with at least one consumer: from the change to its last affected sidecar's ACK. */
  readonly changeToAllAcked: Summary;
  readonly perSidecarAck: Summary;
}

/**
 * Consul churn: `count` instances flap (healthy ↔ critical) on services drawn uniformly, through
 * the endpoint batcher as the Consul watcher's answers go. With `intervalMs` 0 they come one per
 * event-loop turn (a burst); otherwise one every `intervalMs` (a steady stream, which only the
 * batcher's maximum delay can flush). Nothing waits for ACKs in between.
 */
export async function churn(
  ctx: BenchContext,
  o: { count: number; intervalMs: number; firstId: number; seed: number; timeoutMs: number },
): Promise<BurstResult> {
  const { count, firstId, timeoutMs } = o;
  const rand = seededRandom(o.seed);
  const driver = new EndpointChanges(ctx);
  const keys = ctx.mesh.serviceKeys.filter((k) => ctx.mesh.consulKeys.has(k));
  const c0 = await edsCounters(ctx.cp);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const made: MadeChange[] = [];
  for (let i = 0; i < count; i++) {
    const service = keys[Math.floor(rand() * keys.length)]!;
    made.push(driver.viaBatcher(firstId + i, flapFirstEndpoint(ctx.endpoints.get(service)!)));
    await (o.intervalMs > 0 ? sleep(o.intervalMs) : nextTick());
  }
  const fireMs = performance.now() - t0;
  const changes = made.map((m) => m.change);
  try {
    await ctx.tracker.settle(changes, timeoutMs);
  } finally {
    driver.stop();
  }
  const convergeMs = Math.max(t0, ...changes.map((c) => c.doneAt!)) - t0;
  const cpu = cpuMs(process.cpuUsage(cpu0));
  const c1 = await edsCounters(ctx.cp);
  const pushes = c1.pushes - c0.pushes;
  const consumed = changes.filter((c) => c.nodes > 0);
  return {
    changes: count,
    batches: driver.flushes,
    affectedPushes: changes.reduce((n, c) => n + c.nodes, 0),
    fireMs,
    convergeMs,
    pushes,
    pushesPerSecond: convergeMs > 0 ? pushes / (convergeMs / 1000) : Number.NaN,
    bytes: c1.bytes - c0.bytes,
    cpuMs: cpu,
    changeToAllAcked: summarize(consumed.map((c) => c.doneAt! - c.startedAt)),
    perSidecarAck: summarize(consumed.flatMap((c) => c.ackMs)),
  };
}

export interface ReapplyResult {
  readonly ms: number;
  readonly pushes: number;
}

/**
 * An operator edits one field of one Service (an instance's meta, which no sidecar's config
 * depends on) and applies the whole set again, as `clinimesh apply -f dir/` would. Measures what an
 * apply costs at this scale; it runs on the event loop, so no xDS traffic moves meanwhile.
 */
export async function reapplyOneService(ctx: BenchContext): Promise<ReapplyResult> {
  const edited: Manifest[] = ctx.manifests.map((m) =>
    m.kind === 'Service' && m.instances.length && m.name === ctx.mesh.sidecars[0]?.cluster
      ? {
          ...m,
          instances: m.instances.map((i, k) => (k === 0 ? { ...i, meta: { ...i.meta, edited: 'yes' } } : i)),
        }
      : m,
  );
  const before = await allPushes(ctx);
  const t0 = performance.now();
  const applied = await ctx.cp.controlPlane.apply(edited);
  const elapsed = performance.now() - t0;
  if (!applied.ok || !applied.value.changed)
    throw new Error(`re-apply did not change anything: ${JSON.stringify(applied)}`.slice(0, 500));
  await new Promise((r) => setTimeout(r, 200)); // let any (unexpected) pushes be counted
  return { ms: elapsed, pushes: (await allPushes(ctx)) - before };
}

async function allPushes(ctx: BenchContext): Promise<number> {
  return (await ctx.cp.metrics.pushes.get()).values.reduce((n, v) => n + v.value, 0);
}
