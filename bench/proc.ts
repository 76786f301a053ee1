// What Linux says another process uses, read from /proc: CPU time of all its threads (those that
// ended included) and its resident memory now and at its peak. The benchmark reads these for a
// control plane it started as its own process, where process.cpuUsage() cannot reach.
import { readFile } from 'node:fs/promises';

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat (100 on every Linux the bench runs on). */
const TICK_MS = 10;

/** utime + stime in ms from the text of /proc/<pid>/stat (fields 14 and 15; the name may hold spaces). */
export function statCpuMs(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`not a /proc stat line: ${stat}`);
  return (utime + stime) * TICK_MS;
}

export interface ProcMemory {
  /** VmRSS: resident now. */
  readonly rss: number;
  /** VmHWM: the most it was ever resident. */
  readonly hwm: number;
}

/** VmRSS and VmHWM in bytes from the text of /proc/<pid>/status. */
export function statusMemory(status: string): ProcMemory {
  const kib = (field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
    if (!m) throw new Error(`/proc status without ${field}`);
    return Number(m[1]) * 1024;
  };
  return { rss: kib('VmRSS'), hwm: kib('VmHWM') };
}

/** CPU ms the process used so far, all threads (the kernel adds ended threads to the process's total). */
export async function processCpuMs(pid: number): Promise<number> {
  return statCpuMs(await readFile(`/proc/${pid}/stat`, 'utf8'));
}

/** CPU ms of the process's main thread (the event loop of a Node process). */
export async function mainThreadCpuMs(pid: number): Promise<number> {
  return statCpuMs(await readFile(`/proc/${pid}/task/${pid}/stat`, 'utf8'));
}

/**
 * CPU ms of the process's main thread from /proc/<pid>/task/<pid>/schedstat: nanoseconds on a CPU,
 * fine enough for one short operation where stat's 10 ms ticks are not.
 */
export async function mainThreadRunMs(pid: number): Promise<number> {
  const text = await readFile(`/proc/${pid}/task/${pid}/schedstat`, 'utf8');
  const ns = Number(text.split(' ')[0]);
  if (!Number.isFinite(ns)) throw new Error(`not a schedstat line: ${text}`);
  return ns / 1e6;
}

export async function processMemory(pid: number): Promise<ProcMemory> {
  return statusMemory(await readFile(`/proc/${pid}/status`, 'utf8'));
}
