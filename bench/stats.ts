// Small numeric helpers for the benchmark: percentiles over samples and the units results are
// printed in. Kept apart so the scenarios read as measurements, not arithmetic.
import { readdirSync, readFileSync } from 'node:fs';

export interface Summary {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
  readonly mean: number;
}

/** Nearest-rank percentile (no interpolation): p99 of 50 samples is the largest, as it should be. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1]! : Number.NaN,
    mean: sorted.length ? sum / sorted.length : Number.NaN,
  };
}

/** The straight line through (xs, ys) by least squares: what a run costs alone, and per unit of x. */
export function leastSquares(
  xs: readonly number[],
  ys: readonly number[],
): { intercept: number; slope: number } {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0;
  let sxx = 0;
  xs.forEach((x, i) => {
    sxy += (x - mx) * (ys[i]! - my);
    sxx += (x - mx) ** 2;
  });
  const slope = sxx === 0 ? 0 : sxy / sxx;
  return { intercept: my - slope * mx, slope };
}

export function median(samples: readonly number[]): number {
  return percentile(
    [...samples].sort((a, b) => a - b),
    50,
  );
}

export function ms(n: number, digits = 1): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '–';
}

export function kib(bytes: number): string {
  return Number.isFinite(bytes) ? (bytes / 1024).toFixed(1) : '–';
}

export function mib(bytes: number): string {
  return Number.isFinite(bytes) ? (bytes / (1024 * 1024)).toFixed(1) : '–';
}

/** CPU time of a `process.cpuUsage()` delta, in milliseconds (user + system). */
export function cpuMs(d: NodeJS.CpuUsage): number {
  return (d.user + d.system) / 1000;
}

/** A wall-clock timestamp comparable across processes on one host (ms since the epoch, sub-ms). */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

/**
 * CPU ms per thread of this process by thread name (Linux /proc; empty elsewhere): tells the event
 * loop's own work apart from the GC helpers, the libuv pool and worker threads.
 */
export function threadCpuMs(): Map<string, number> {
  const out = new Map<string, number>();
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const name = tid === String(process.pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]); // utime + stime
      out.set(name, (out.get(name) ?? 0) + ticks * 10);
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** `ECONNRESET ×3, Deadline exceeded ×1`: counts by reason, most frequent first. */
export function describeCounts(counts: ReadonlyMap<string, number>): string {
  return [...counts]
    .sort((a, b) => b[1] - a[1])
    .map(([reason, n]) => `${reason} ×${n}`)
    .join(', ');
}
