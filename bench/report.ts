// Turns measurements into the markdown printed at the end of a run and kept in bench/RESULTS.md
// (between markers, so a rerun replaces its own section and leaves the rest of the file alone).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import type {
  ApplyResult,
  BurstResult,
  ConnectResult,
  ReapplyResult,
  SequentialResult,
} from './scenarios.ts';
import type { StandaloneResult } from './standalone.ts';
import type { ApplySeries } from './standalone-apply.ts';
import { describeCounts, kib, mib, ms, type Summary } from './stats.ts';
import { DEFAULT_DEBOUNCE_MS, DEFAULT_MAX_DELAY_MS } from '../src/discovery/endpoint-batcher.ts';

/** How the endpoint batcher the benchmark drives (built with the defaults, as Consul's is) coalesces. */
const BATCHING = `an isolated change at once, changes that follow within ${DEFAULT_DEBOUNCE_MS} ms coalesced until a ${DEFAULT_DEBOUNCE_MS} ms pause, ${DEFAULT_MAX_DELAY_MS} ms at most`;

export interface SizeResult {
  readonly sidecars: number;
  readonly services: number;
  readonly meshedServices: number;
  readonly applyMs: number;
  readonly connect: ConnectResult;
  readonly sequential: SequentialResult;
  readonly applies: ApplyResult;
  readonly burst: BurstResult;
  /** The same flapping as a steady stream (one every 10 ms). */
  readonly stream: BurstResult;
  readonly reapply: ReapplyResult;
  /** Interned resources in the reconciler's pool: after apply, after the sequential changes, after the burst. */
  readonly poolSizes: readonly [number, number, number];
  readonly workerCpuMs: number;
  readonly workerRssBytes: number;
  /** Streams the simulators opened again after the connect phase, by reason. */
  readonly laterReconnects: ReadonlyMap<string, number>;
  /** The first size this process ran: its RSS growth per sidecar is not muddied by earlier sizes. */
  readonly firstInProcess: boolean;
}

export interface RunConfig {
  readonly services: number;
  readonly upstreams: number;
  readonly changes: number;
  readonly applies: number;
  readonly burst: number;
  readonly workers: number;
  readonly streamsPerChannel: number;
  /** Sidecars open their streams spread evenly over this long (0: all at once). */
  readonly rampMs: number;
  readonly seed: number;
  readonly xdsTls: boolean;
}

// Issue 12's targets.
const APPLY_CPU_TARGET_MS = 30;
const APPLY_P99_TARGET_MS = { 2000: 150, 5000: 300 } as Record<number, number>;
const CONSUL_P99_TARGET_MS = 100;
const CONNECT_CPU_TARGET_MS = 1.5;
const CONNECT_5000_TARGET_S = 15;
const RSS_PER_SIDECAR_TARGET = 100 * 1024;
const RSS_5000_TARGET = 600 * 1024 * 1024;
const DELTA_RATIO_TARGET = 1.1;

const p = (s: Summary) => `${ms(s.p50)} / ${ms(s.p99)}`;

export function machine(): string {
  const cpu = cpus();
  return `${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores, ${mib(totalmem())} MiB RAM, Node ${process.version}, ${process.platform}/${process.arch}`;
}

function connectTable(rs: readonly SizeResult[]): string[] {
  return [
    '| sidecars | meshed / Consul-only services | first apply (s) | re-apply, one Service edited (s) | connect → all ACKed (s) | streams reopened while connecting | server CPU per connect, all threads / event loop (ms) | heap per connected sidecar (KiB) | RSS per connected sidecar (KiB) | server heap / RSS total (MiB) |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rs
      .map((r) =>
        [
          r.sidecars,
          `${r.meshedServices} / ${r.services - r.meshedServices}`,
          ms(r.applyMs / 1000, 2),
          ms(r.reapply.ms / 1000, 2) + (r.reapply.pushes ? ` (${r.reapply.pushes} pushes)` : ''),
          ms(r.connect.connectMs / 1000, 2),
          [...r.connect.reconnects.values()].reduce((a, b) => a + b, 0),
          `${ms(r.connect.cpuMs / r.sidecars, 2)} / ${ms(r.connect.mainThreadCpuMs / r.sidecars, 2)}`,
          kib(r.connect.heapPerSidecar),
          r.firstInProcess ? kib(r.connect.rssPerSidecar) : 'n/a (after a larger size)',
          `${mib(r.connect.heapAfter)} / ${mib(r.connect.rssAfter)}`,
        ].join(' | '),
      )
      .map((row) => `| ${row} |`),
  ];
}

/** The control plane as its own process (`clinimesh serve`): CPU and memory that are its alone. */
function standaloneTable(ss: readonly StandaloneResult[]): string[] {
  return [
    "| sidecars | serve runs | start, manifests applied (s) | connect → all ACKed (s) | streams reopened while connecting | server CPU per connect, all threads / event loop (ms) | of which the driver's status polls (ms per sidecar) | server CPU idle before connect (ms/s) | RSS before connect → after connect and settle (MiB) | peak RSS, VmHWM (MiB) | RSS per connected sidecar (KiB) | V8 heap used / total, external (MiB) |",
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...ss.map(
      (r) =>
        `| ${[
          r.sidecars,
          r.runs === 'dist' ? 'dist/ (compiled)' : 'sources via tsx',
          ms(r.startMs / 1000, 1),
          ms(r.connectMs / 1000, 2),
          [...r.reconnects.values()].reduce((a, b) => a + b, 0),
          `${ms(r.cpuMs / r.sidecars, 2)} / ${ms(r.mainThreadCpuMs / r.sidecars, 2)}`,
          ms(r.pollCpuMs / r.sidecars, 2),
          ms(r.idleCpuMsPerS, 0),
          `${mib(r.before.rss)} → ${mib(r.after.rss)}`,
          mib(r.after.hwm),
          kib(standaloneRssPerSidecar(r)),
          r.heapUsed === undefined
            ? 'n/a'
            : `${mib(r.heapUsed)} / ${mib(r.heapTotal ?? 0)}, ${mib(r.external ?? 0)}`,
        ].join(' | ')} |`,
    ),
  ];
}

/** One Service edit at a time through the admin API of `clinimesh serve`, as `clinimesh apply -f` sends it. */
function standaloneApplyTable(ss: readonly StandaloneResult[]): string[] {
  const rows = ss.flatMap((r) => (r.applies ? [{ n: r.sidecars, a: r.applies }] : []));
  if (!rows.length) return [];
  return [
    '**Apply of one Service edit, `clinimesh serve` in its own process** (the apply the apply targets speak of)',
    '',
    STANDALONE_APPLY_HOW,
    '',
    '| sidecars | applies | affected sidecars per apply (median / max) | apply → all affected received p50 / p99 (ms) | server CPU per apply: event loop + other threads (ms) | all threads from /proc stat, idle in between left in (ms) | event loop CPU per apply p50 / mean / p99 (ms) | event loop: per apply + per sidecar pushed (least squares) | the warm-up series before: affected median / max, CPU per apply (ms) |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows.map(({ n, a: { measured: m, warmup: w, idleCpuMsPerS } }) => {
      const cpu = (x: ApplySeries) =>
        `${ms(x.cpuMsPerApply)} (${ms(x.mainThreadMs.mean)} + ${ms(x.otherThreadsMsPerApply)})`;
      return `| ${[
        n,
        m.applies,
        `${m.fanout.p50} / ${m.fanout.max}`,
        `${ms(m.allReceived.p50)} / ${ms(m.allReceived.p99)}`,
        cpu(m),
        `${ms(m.rawCpuMsPerApply)} (idle ${ms(idleCpuMsPerS, 0)} ms/s)`,
        `${ms(m.mainThreadMs.p50)} / ${ms(m.mainThreadMs.mean)} / ${ms(m.mainThreadMs.p99)}`,
        `${ms(m.fixedMs)} ms + ${ms(m.perSidecarMs * 1000, 0)} µs`,
        `${w.fanout.p50} / ${w.fanout.max}, ${cpu(w)}`,
      ].join(' | ')} |`;
    }),
    '',
  ];
}

const STANDALONE_APPLY_HOW =
  'After connect, the same Services the in-process phase edits (drawn by popularity after its Consul changes) get one instance weight changed, ' +
  'each sent alone as YAML to `POST /v1/apply` over HTTPS with the admin token (as `clinimesh apply -f service.yaml` sends it: a new connection, parsing, ' +
  'authorization, the check, the journal, planning and the pushes); the next is sent once every simulated sidecar that consumes the Service had its push. ' +
  "Server CPU per apply is its event loop's from sending the apply until the pushes were received (/proc/<pid>/task/<pid>/schedstat, ns), plus what its other threads " +
  "(V8's garbage-collection helpers, libuv's pool) used over the whole series, per apply; for scale, all threads from /proc/<pid>/stat over the series with whatever ran in between " +
  "(keepalives, Consul watches renewing: the server's CPU per second connected and unchanged is shown beside it). " +
  'After the series, `GET /v1/proxy-status?state=STALE,NACKED` must be empty (every sidecar ACKed).';

export const standaloneRssPerSidecar = (r: StandaloneResult) => (r.after.rss - r.before.rss) / r.sidecars;

function sequentialTable(rs: readonly SizeResult[]): string[] {
  return [
    '| sidecars | affected sidecars per change (median / max) | change → all affected ACKed p50 / p99 (ms) | per-sidecar delivery p50 / p99 (ms) | per-sidecar ACK p50 / p99 (ms) | EDS bytes sent per change (mean / max) | server CPU per change mean / p99 (ms) | `updateEndpoints` call p50 / p99 (ms) |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rs.map((r) => {
      const s = r.sequential;
      return `| ${[
        r.sidecars,
        `${s.fanout.p50} / ${s.fanout.max}`,
        p(s.allAcked),
        p(s.perSidecarDelivery) + (s.missingDeliveries ? ` (${s.missingDeliveries} missing)` : ''),
        p(s.perSidecarAck),
        `${Math.round(s.bytesPerChange.mean)} / ${s.bytesPerChange.max}`,
        `${ms(s.cpuMsPerChange.mean)} / ${ms(s.cpuMsPerChange.p99)}`,
        p(s.syncMs),
      ].join(' | ')} |`;
    }),
  ];
}

function applyTable(rs: readonly SizeResult[]): string[] {
  return [
    '| sidecars | applies | affected sidecars per apply (median / max) | apply → all affected ACKed p50 / p99 (ms) | server CPU, apply call, mean / p99 (ms) | server CPU until all ACKed, mean / p99 (ms) |',
    '|---:|---:|---:|---:|---:|---:|',
    ...rs.map((r) => {
      const a = r.applies;
      return `| ${[
        r.sidecars,
        a.applies,
        `${a.fanout.p50} / ${a.fanout.max}`,
        p(a.allAcked),
        `${ms(a.applyCpuMs.mean)} / ${ms(a.applyCpuMs.p99)}`,
        `${ms(a.totalCpuMs.mean)} / ${ms(a.totalCpuMs.p99)}`,
      ].join(' | ')} |`;
    }),
  ];
}

function bytesTable(rs: readonly SizeResult[]): string[] {
  return [
    '| sidecars | SotW: affected sidecars / EDS bytes per change (mean) | delta: affected sidecars / EDS bytes per change (mean) | delta minimum (only the changed assignments, mean) | delta ÷ minimum | SotW ÷ delta per affected sidecar |',
    '|---:|---:|---:|---:|---:|---:|',
    ...rs.map((r) => {
      const t = r.sequential.transports;
      const perS = t.sotw.mean / Math.max(1, t.sotwSidecars.mean);
      const perD = t.delta.mean / Math.max(1, t.deltaSidecars.mean);
      return `| ${[
        r.sidecars,
        `${ms(t.sotwSidecars.mean)} / ${Math.round(t.sotw.mean)}`,
        `${ms(t.deltaSidecars.mean)} / ${Math.round(t.delta.mean)}`,
        Math.round(t.deltaMinimum.mean),
        ms(t.delta.mean / Math.max(1, t.deltaMinimum.mean), 2),
        ms(perS / Math.max(1, perD), 1),
      ].join(' | ')} |`;
    }),
  ];
}

function churnTable(rs: readonly SizeResult[]): string[] {
  const row = (r: SizeResult, mode: string, b: BurstResult) =>
    `| ${[
      r.sidecars,
      mode,
      b.changes,
      b.batches,
      b.affectedPushes,
      ms(b.fireMs, 0),
      ms(b.convergeMs, 0),
      b.pushes,
      ms(b.pushesPerSecond, 0),
      p(b.changeToAllAcked),
      ms(b.cpuMs, 0),
      mib(b.bytes),
    ].join(' | ')} |`;
  return [
    '| sidecars | flaps arrive | flaps | batches pushed | ACKs owed (flap × affected sidecar) | fired in (ms) | converged in (ms) | EDS pushes | pushes / s | flap → all affected ACKed p50 / p99 (ms) | server CPU (ms) | MiB sent |',
    '|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rs.flatMap((r) => [row(r, 'all at once', r.burst), row(r, 'every 10 ms', r.stream)]),
  ];
}

const verdict = (met: boolean) => (met ? 'met' : '**missed**');

/** Connect and memory judged in the benchmark's own process (when `serve` was not measured on its own). */
function inProcessTargets(rs: readonly SizeResult[]): string[] {
  const out = rs.map((r) => {
    const cpu = r.connect.cpuMs / r.sidecars;
    return `- Connect at ${r.sidecars}: ${ms(cpu, 2)} ms server CPU per sidecar (target ≤ ${CONNECT_CPU_TARGET_MS}): ${verdict(cpu <= CONNECT_CPU_TARGET_MS)}; ${r.firstInProcess ? `${ms(r.connect.rssPerSidecar / 1024)} KiB RSS per connected sidecar (target ≤ ${RSS_PER_SIDECAR_TARGET / 1024}): ${verdict(r.connect.rssPerSidecar <= RSS_PER_SIDECAR_TARGET)}` : 'RSS per connected sidecar not measured (ran after a larger size)'}; whole process ${mib(r.connect.rssAfter)} MiB.`;
  });
  const r5 = rs.find((r) => r.sidecars === 5000);
  if (r5)
    out.push(
      `- 5000 connected and ACKed in ${ms(r5.connect.connectMs / 1000, 1)} s (target ≤ ${CONNECT_5000_TARGET_S}): ${verdict(r5.connect.connectMs / 1000 <= CONNECT_5000_TARGET_S)}; whole process ${mib(r5.connect.rssAfter)} MiB (target ≤ ${mib(RSS_5000_TARGET)}): ${verdict(r5.connect.rssAfter <= RSS_5000_TARGET)}.`,
    );
  return out;
}

/**
 * Connect and memory judged on `clinimesh serve` in its own process: the process the targets speak
 * of. The in-process figures stay beside them, unjudged, since that process holds the driver too.
 */
function standaloneTargets(rs: readonly SizeResult[], ss: readonly StandaloneResult[]): string[] {
  const out = ss.map((r) => {
    // The driver's status polls are the bench's, not a connect's: measured, then left out.
    const cpu = (r.cpuMs - r.pollCpuMs) / r.sidecars;
    const perSidecar = standaloneRssPerSidecar(r);
    return `- Connect at ${r.sidecars}, \`clinimesh serve\` in its own process: ${ms(cpu, 2)} ms server CPU per sidecar without the driver's status polls (${ms(r.cpuMs / r.sidecars, 2)} with them; target ≤ ${CONNECT_CPU_TARGET_MS}): ${verdict(cpu <= CONNECT_CPU_TARGET_MS)}; ${ms(perSidecar / 1024)} KiB RSS per connected sidecar (target ≤ ${RSS_PER_SIDECAR_TARGET / 1024}): ${verdict(perSidecar <= RSS_PER_SIDECAR_TARGET)}; whole process ${mib(r.after.rss)} MiB after connect (peak ${mib(r.after.hwm)}).`;
  });
  const s5 = ss.find((r) => r.sidecars === 5000);
  if (s5)
    out.push(
      `- 5000 connected and ACKed by \`clinimesh serve\` in ${ms(s5.connectMs / 1000, 1)} s (target ≤ ${CONNECT_5000_TARGET_S}): ${verdict(s5.connectMs / 1000 <= CONNECT_5000_TARGET_S)}; whole process ${mib(s5.after.rss)} MiB after connect and settle (target ≤ ${mib(RSS_5000_TARGET)}): ${verdict(s5.after.rss <= RSS_5000_TARGET)}, peak ${mib(s5.after.hwm)} MiB.`,
    );
  for (const r of rs)
    out.push(
      `- For comparison, the benchmark's own process (driver, tsx and control plane) at ${r.sidecars}: ${ms(r.connect.cpuMs / r.sidecars, 2)} ms CPU per connect, ${r.firstInProcess ? `${ms(r.connect.rssPerSidecar / 1024)} KiB RSS per connected sidecar, ` : ''}${mib(r.connect.rssAfter)} MiB in all (not judged: not the control plane's alone).`,
    );
  return out;
}

/** One line per issue-12 target, for the sizes it is set at. */
function targets(rs: readonly SizeResult[], ss: readonly StandaloneResult[]): string[] {
  const at = (n: number) => rs.find((r) => r.sidecars === n);
  const out: string[] = [];
  const r2 = at(2000);
  const r5 = at(5000);
  for (const s of ss) {
    const a = s.applies?.measured;
    const p99Target = APPLY_P99_TARGET_MS[s.sidecars];
    if (!a || p99Target === undefined) continue;
    const cpu =
      s.sidecars === 2000
        ? `server CPU ${ms(a.cpuMsPerApply)} ms per apply (${ms(a.mainThreadMs.mean)} on the event loop, ${ms(a.otherThreadsMsPerApply)} on other threads; ${ms(s.applies!.warmup.cpuMsPerApply)} in the warm-up series before; target ≤ ${APPLY_CPU_TARGET_MS}): ${verdict(a.cpuMsPerApply <= APPLY_CPU_TARGET_MS)}; `
        : '';
    out.push(
      `- Apply of one Service edit at ${s.sidecars}, \`clinimesh serve\` through its admin API: ${cpu}p99 ${ms(a.allReceived.p99)} ms until every affected sidecar had its push (target ≤ ${p99Target}): ${verdict(a.allReceived.p99 <= p99Target!)}.`,
    );
  }
  // The in-process figures are judged only where no `serve` apply measured the same size.
  const judged = (n: number) => ss.some((s) => s.sidecars === n && s.applies);
  if (r2) {
    const cpu = r2.applies.totalCpuMs.mean;
    out.push(
      `- Apply of one Service edit at 2000${judged(2000) ? ", in the benchmark's process (the whole set passed to `controlPlane.apply`, no HTTP, parsing or authorization; judged by the `serve` phase above)" : ''}: server CPU ${ms(cpu)} ms mean until all affected ACKed (${ms(r2.applies.applyCpuMs.mean)} ms in the apply call; target ≤ ${APPLY_CPU_TARGET_MS}): ${judged(2000) ? 'for comparison' : verdict(cpu <= APPLY_CPU_TARGET_MS)}; p99 ${ms(r2.applies.allAcked.p99)} ms (target ≤ ${APPLY_P99_TARGET_MS[2000]}): ${judged(2000) ? 'for comparison' : verdict(r2.applies.allAcked.p99 <= APPLY_P99_TARGET_MS[2000]!)}.`,
      `- Consul endpoint change at 2000: p99 ${ms(r2.sequential.allAcked.p99)} ms one at a time, ${ms(r2.stream.changeToAllAcked.p99)} ms as a stream of flaps every 10 ms, both through the endpoint batcher (${BATCHING}; target ≤ ${CONSUL_P99_TARGET_MS} including the debounce): ${verdict(r2.stream.changeToAllAcked.p99 <= CONSUL_P99_TARGET_MS)}.`,
    );
  }
  if (r5)
    out.push(
      `- Apply of one Service edit at 5000${judged(5000) ? ", in the benchmark's process" : ''}: p99 ${ms(r5.applies.allAcked.p99)} ms (target ≤ ${APPLY_P99_TARGET_MS[5000]}): ${judged(5000) ? 'for comparison' : verdict(r5.applies.allAcked.p99 <= APPLY_P99_TARGET_MS[5000]!)}.`,
    );
  out.push(...(ss.length ? standaloneTargets(rs, ss) : inProcessTargets(rs)));
  for (const r of rs) {
    const t = r.sequential.transports;
    const ratio = t.delta.mean / Math.max(1, t.deltaMinimum.mean);
    out.push(
      `- Delta bytes per endpoint change at ${r.sidecars}: ${ms(ratio, 2)}× the minimum (target ≤ ${DELTA_RATIO_TARGET}×): ${verdict(ratio <= DELTA_RATIO_TARGET)}.`,
    );
  }
  return out;
}

function verdicts(rs: readonly SizeResult[], ss: readonly StandaloneResult[]): string[] {
  if (!rs.length) return targets(rs, ss);
  const largest = rs.reduce((a, b) => (b.sidecars > a.sidecars ? b : a));
  return [
    ...targets(rs, ss),
    `- Resource pool entries at ${largest.sidecars} sidecars (after connect → after ${largest.sequential.changes} moves → after the churn): ${largest.poolSizes.join(' → ')}.`,
    `- Sizes run largest first in one process: after the first, RSS growth per connected sidecar is not reported, since new connections reuse what the allocator kept from the larger size's.`,
    `- The simulated sidecars share the machine: their worker processes used ${ms(largest.workerCpuMs / 1000)} s of CPU at ${largest.sidecars} sidecars ` +
      `(${ms(largest.connect.simulatorCpuMs / 1000)} s while connecting, when the server used ${ms(largest.connect.cpuMs / 1000)} s; ` +
      `the server ${ms((largest.connect.cpuMs + largest.sequential.cpuMsPerChange.mean * largest.sequential.changes + largest.burst.cpuMs + largest.stream.cpuMs) / 1000)} s in all measured phases), so latencies include waiting for a core.`,
  ];
}

/** How the `serve` phase measures, for the line above its table. */
const STANDALONE_HOW =
  'The control plane as a user runs it: `node bin/clinimesh.js serve -f DIR --ca-dir CA --consul-addr …` in its own process, ' +
  'the mesh written out as manifest files, the Consul-discovered endpoints served by the in-process Consul double it watches, ' +
  'the CA brought by the operator (`--ca-dir`, made by the bench, which issues each service its workload certificate from it), ' +
  'the same simulated sidecars. CPU is utime + stime of all its threads from /proc/<pid>/stat, from the first stream opened until ' +
  'the admin API showed every sidecar ACKed every type (`clinimesh_sidecars{state="synced"}` polled every 250 ms once the simulators together had 4 responses per sidecar, every 2 s before; then `GET /v1/proxy-status`; what these polls cost the server is measured afterwards and shown); ' +
  'RSS is VmRSS from /proc/<pid>/status with the mesh planned, Consul synced and the start-up check worker retired, then 3 s after the last ACK; ' +
  "RSS per connected sidecar is the difference over N. The heap figures are the server's own `process.memoryUsage()` from its /metrics.";

export function renderReport(
  rs: readonly SizeResult[],
  ss: readonly StandaloneResult[],
  cfg: RunConfig,
  startedAt: Date,
  totalMs: number,
): string {
  const reopened = [
    ...ss.flatMap((r) =>
      r.reconnects.size
        ? [
            `  - ${r.sidecars} sidecars to \`clinimesh serve\`, while connecting: ${describeCounts(r.reconnects)}`,
          ]
        : [],
    ),
    ...rs.flatMap((r) => [
      ...(r.connect.reconnects.size
        ? [`  - ${r.sidecars} sidecars, while connecting: ${describeCounts(r.connect.reconnects)}`]
        : []),
      ...(r.laterReconnects.size
        ? [`  - ${r.sidecars} sidecars, after connecting: ${describeCounts(r.laterReconnects)}`]
        : []),
    ]),
  ];
  return [
    `### xDS scale benchmark (${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC)`,
    '',
    `Machine: ${machine()}. Run took ${ms(totalMs / 1000, 0)} s.`,
    `Mesh: max(1000, N/2) services (odd-numbered ones with sidecars declare their instances, the rest Consul-discovered), ${cfg.upstreams} upstreams each (Zipf popularity, seed ${cfg.seed}); sidecars alternate SotW and delta ADS; ` +
      `sidecars simulated in ${cfg.workers} worker processes, ${cfg.streamsPerChannel} stream(s) per HTTP/2 connection (gRPC spoken over node:http2), ` +
      `${cfg.rampMs > 0 ? `streams opened evenly over ${ms(cfg.rampMs / 1000, 1)} s (a rollout; the connect time includes it)` : 'all streams opened at once'}, reopened after Envoy's backoff when they fail, ` +
      `${cfg.xdsTls ? 'mutual TLS with a workload certificate per service' : 'plaintext'} to the xDS port, subscribing SDS, CDS, EDS, LDS and RDS; ` +
      `${cfg.changes} Consul endpoint moves one at a time (through the endpoint batcher, as the Consul watcher feeds it), ${cfg.applies} applies of one Service edit (an instance's weight), then ${cfg.burst} flaps at once and ${cfg.burst} as a stream.`,
    '',
    ...(ss.length
      ? [
          '**Connect and memory, `clinimesh serve` in its own process** (the process the memory and connect targets speak of)',
          '',
          `${STANDALONE_HOW}`,
          '',
          ...standaloneTable(ss),
          '',
          ...standaloneApplyTable(ss),
        ]
      : []),
    ...(rs.length ? inProcessSections(rs) : []),
    ...verdicts(rs, ss),
    ...(reopened.length
      ? ['- Streams the simulated sidecars had to open again (as Envoy does, after a backoff):', ...reopened]
      : []),
    '',
  ].join('\n');
}

function inProcessSections(rs: readonly SizeResult[]): string[] {
  return [
    "**Connect and memory, control plane inside the benchmark's process** (with the driver, tsx and its bookkeeping)",
    '',
    ...connectTable(rs),
    '',
    `**Endpoint change, one at a time** (each waits until every affected sidecar ACKed)`,
    '',
    ...sequentialTable(rs),
    '',
    '**EDS bytes per endpoint change, SotW and delta** (the same changes; the minimum is one delta response per affected delta sidecar carrying only the assignments that changed)',
    '',
    ...bytesTable(rs),
    '',
    '**Apply of one Service edit** (the whole set applied again with one Service changed; each waits until every affected sidecar ACKed)',
    '',
    ...applyTable(rs),
    '',
    '**Consul churn** (instances flapping healthy ↔ critical on random services, through the same endpoint batcher ' +
      `the Consul watcher feeds: ${BATCHING}; one push can answer several flaps coalesced into one batch)`,
    '',
    ...churnTable(rs),
    '',
  ];
}

/** Replaces the section between this run kind's markers in RESULTS.md, or appends one. */
export function writeResults(file: string, section: string, body: string): void {
  const begin = `<!-- bench:${section}:begin -->`;
  const end = `<!-- bench:${section}:end -->`;
  const block = `${begin}\n${body}\n${end}`;
  const current = existsSync(file)
    ? readFileSync(file, 'utf8')
    : '# Benchmark results\n\nWritten by `npm run bench`; the findings below each section are written by hand.\n';
  const a = current.indexOf(begin);
  const b = current.indexOf(end);
  const next =
    a >= 0 && b > a
      ? current.slice(0, a) + block + current.slice(b + end.length)
      : `${current.trimEnd()}\n\n${block}\n`;
  writeFileSync(file, next);
}
