// Turns measurements into the markdown printed at the end of a run and kept in bench/RESULTS.md
// (between markers, so a rerun replaces its own section and leaves the rest of the file alone).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import type { BurstResult, ConnectResult, ReapplyResult, SequentialResult } from './scenarios.ts';
import { kib, mib, ms, type Summary } from './stats.ts';

export interface SizeResult {
  readonly sidecars: number;
  readonly services: number;
  readonly meshedServices: number;
  readonly applyMs: number;
  readonly connect: ConnectResult;
  readonly sequential: SequentialResult;
  readonly burst: BurstResult;
  /** The same flapping as a steady stream (one every 10 ms). */
  readonly stream: BurstResult;
  readonly reapply: ReapplyResult;
  /** Interned resources in the reconciler's pool: after apply, after the sequential changes, after the burst. */
  readonly poolSizes: readonly [number, number, number];
  readonly workerCpuMs: number;
  readonly workerRssBytes: number;
  readonly simulatorErrors: readonly string[];
}

export interface RunConfig {
  readonly services: number;
  readonly upstreams: number;
  readonly changes: number;
  readonly burst: number;
  readonly workers: number;
  readonly streamsPerChannel: number;
  readonly seed: number;
  readonly xdsTls: boolean;
}

const P99_TARGET_MS = 500;
const MEMORY_TARGET_BYTES = 0.5 * 1024 * 1024;

const p = (s: Summary) => `${ms(s.p50)} / ${ms(s.p99)}`;

export function machine(): string {
  const cpu = cpus();
  return `${cpu[0]?.model ?? 'unknown CPU'}, ${cpu.length} cores, ${mib(totalmem())} MiB RAM, Node ${process.version}, ${process.platform}/${process.arch}`;
}

function connectTable(rs: readonly SizeResult[]): string[] {
  return [
    '| sidecars | meshed / Consul-only services | first apply (s) | re-apply, one Service edited (s) | connect → all ACKed (s) | server CPU per connect (ms) | heap per connected sidecar (KiB) | RSS per connected sidecar (KiB) | server heap / RSS total (MiB) |',
    '|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rs
      .map((r) =>
        [
          r.sidecars,
          `${r.meshedServices} / ${r.services - r.meshedServices}`,
          ms(r.applyMs / 1000, 2),
          ms(r.reapply.ms / 1000, 2) + (r.reapply.pushes ? ` (${r.reapply.pushes} pushes)` : ''),
          ms(r.connect.connectMs / 1000, 2),
          ms(r.connect.cpuMs / r.sidecars, 2),
          kib(r.connect.heapPerSidecar),
          kib(r.connect.rssPerSidecar),
          `${mib(r.connect.heapAfter)} / ${mib(r.connect.rssAfter)}`,
        ].join(' | '),
      )
      .map((row) => `| ${row} |`),
  ];
}

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

function verdicts(rs: readonly SizeResult[]): string[] {
  const largest = rs.reduce((a, b) => (b.sidecars > a.sidecars ? b : a));
  const p99 = largest.sequential.allAcked.p99;
  const perSidecar = largest.connect.rssAfter / largest.sidecars;
  const connected = largest.connect.rssPerSidecar;
  return [
    `- **p99 change → all affected ACKed at ${largest.sidecars} sidecars: ${ms(p99)} ms** (target < ${P99_TARGET_MS} ms${largest.sidecars < 2000 ? ', which is set at 2000' : ''}): ${p99 < P99_TARGET_MS ? 'met' : 'missed'}.`,
    `- **Memory at ${largest.sidecars} sidecars: ${kib(connected)} KiB RSS per connected sidecar** (stream, HTTP/2 session, status), ` +
      `${kib(perSidecar)} KiB if the whole server RSS is divided by the sidecars (target < ${kib(MEMORY_TARGET_BYTES)} KiB): ` +
      `${perSidecar < MEMORY_TARGET_BYTES ? 'met even on the whole-process count' : connected < MEMORY_TARGET_BYTES ? 'met per connection, not on the whole-process count' : 'missed'}.`,
    `- Resource pool entries at ${largest.sidecars} sidecars (after connect → after ${largest.sequential.changes} moves → after the churn): ${largest.poolSizes.join(' → ')}.`,
    `- The simulated sidecars share the machine: their worker processes used ${ms(largest.workerCpuMs / 1000)} s of CPU at ${largest.sidecars} sidecars ` +
      `(the server ${ms((largest.connect.cpuMs + largest.sequential.cpuMsPerChange.mean * largest.sequential.changes + largest.burst.cpuMs + largest.stream.cpuMs) / 1000)} s in the measured phases), so latencies include waiting for a core.`,
  ];
}

export function renderReport(
  rs: readonly SizeResult[],
  cfg: RunConfig,
  startedAt: Date,
  totalMs: number,
): string {
  const errors = rs.flatMap((r) => r.simulatorErrors.map((e) => `  - ${r.sidecars} sidecars: ${e}`));
  return [
    `### xDS scale benchmark (${startedAt.toISOString().slice(0, 16).replace('T', ' ')} UTC)`,
    '',
    `Machine: ${machine()}. Run took ${ms(totalMs / 1000, 0)} s.`,
    `Mesh: ${cfg.services} services (all Consul-discovered), ${cfg.upstreams} upstreams each (Zipf popularity, seed ${cfg.seed}); ` +
      `sidecars simulated in ${cfg.workers} worker processes, ${cfg.streamsPerChannel} stream(s) per gRPC channel, ` +
      `${cfg.xdsTls ? 'mutual TLS with a workload certificate per service' : 'plaintext'} to the xDS port, subscribing SDS, CDS, EDS, LDS and RDS; ` +
      `${cfg.changes} endpoint moves one at a time (straight to \`updateEndpoints\`), then ${cfg.burst} flaps at once and ${cfg.burst} as a stream.`,
    '',
    '**Connect and memory**',
    '',
    ...connectTable(rs),
    '',
    `**Endpoint change, one at a time** (each waits until every affected sidecar ACKed)`,
    '',
    ...sequentialTable(rs),
    '',
    '**Consul churn** (instances flapping healthy ↔ critical on random services, through the same endpoint batcher ' +
      'the Consul watcher feeds: 50 ms debounce, 250 ms at most; one push can answer several flaps coalesced into one batch)',
    '',
    ...churnTable(rs),
    '',
    ...verdicts(rs),
    ...(errors.length ? ['- Simulator errors:', ...errors] : []),
    '',
  ].join('\n');
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
