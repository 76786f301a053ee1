// The `serve` phase reads another process's CPU and memory from /proc.
import { describe, expect, it } from 'vitest';
import {
  mainThreadRunMs,
  processCpuMs,
  processMemory,
  statCpuMs,
  statusMemory,
} from '../../../bench/proc.ts';
import { leastSquares } from '../../../bench/stats.ts';
import { typeVersion } from '../../../src/xds/cache/snapshot.ts';
import { metricValue, steadyNodes, type ProxyStatus } from '../../../bench/standalone.ts';

describe('/proc readings', () => {
  it('reads utime + stime past a process name holding spaces and parentheses', () => {
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime …
    const stat = '4242 (node (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 123 45 0 0 20 0 11 0';
    expect(statCpuMs(stat)).toBe((123 + 45) * 10);
  });

  it('reads VmRSS and VmHWM in bytes', () => {
    const status = 'Name:\tnode\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\nThreads:\t11\n';
    expect(statusMemory(status)).toEqual({ rss: 102400 * 1024, hwm: 204800 * 1024 });
  });

  it('splits an apply series into a fixed cost and a cost per sidecar pushed', () => {
    const fanout = [1, 10, 100, 700];
    expect(
      leastSquares(
        fanout,
        fanout.map((f) => 12 + 0.05 * f),
      ),
    ).toEqual({
      intercept: expect.closeTo(12, 9),
      slope: expect.closeTo(0.05, 9),
    });
    expect(leastSquares([5, 5], [1, 3])).toEqual({ intercept: 2, slope: 0 });
  });

  it.runIf(process.platform === 'linux')('agrees with what this process says of itself', async () => {
    const run0 = await mainThreadRunMs(process.pid);
    const before = await processCpuMs(process.pid);
    const start = process.cpuUsage();
    let spin = 0;
    while ((process.cpuUsage(start).user + process.cpuUsage(start).system) / 1000 < 200) spin++;
    expect(spin).toBeGreaterThan(0);
    expect((await processCpuMs(process.pid)) - before).toBeGreaterThanOrEqual(150);
    // The main thread spun for 200 ms of CPU, to the nanosecond in schedstat.
    expect((await mainThreadRunMs(process.pid)) - run0).toBeGreaterThanOrEqual(150);
    const { rss, hwm } = await processMemory(process.pid);
    const own = process.memoryUsage().rss;
    expect(rss).toBeGreaterThan(own * 0.8);
    expect(rss).toBeLessThan(own * 1.2);
    expect(hwm).toBeGreaterThanOrEqual(rss);
  });
});

describe('reading the admin API', () => {
  it('counts a sidecar steady when every type it has is SYNCED, once however often it is listed', () => {
    const synced = { state: 'SYNCED', current: 'v1' };
    const status: ProxyStatus = {
      sidecars: [
        // A TCP-only sidecar has no route configuration (nothing cached, or the empty set): nothing to ACK.
        { node: 'a', types: { CDS: synced, EDS: synced, RDS: { state: 'NOT SENT' } } },
        { node: 'a', types: { CDS: synced, RDS: { state: 'NOT SENT', current: typeVersion([]) } } },
        // It has routes but has not asked for them yet.
        { node: 'b', types: { CDS: synced, RDS: { state: 'NOT SENT', current: 'r1' } } },
        { node: 'c', types: { CDS: synced, EDS: { state: 'STALE', current: 'v2' } } },
      ],
    };
    expect(steadyNodes(status)).toBe(1);
  });

  it('reads a gauge from Prometheus text, with or without labels', () => {
    const text = [
      '# HELP clinimesh_sidecars Connected sidecars by sync state',
      'clinimesh_sidecars{state="synced"} 1998',
      'clinimesh_sidecars{state="stale"} 2',
      'nodejs_heap_size_used_bytes 104857600',
    ].join('\n');
    expect(metricValue(text, 'clinimesh_sidecars', 'state="synced"')).toBe(1998);
    expect(metricValue(text, 'nodejs_heap_size_used_bytes')).toBe(104857600);
    expect(metricValue(text, 'clinimesh_sidecars', 'state="nacked"')).toBeUndefined();
  });
});
