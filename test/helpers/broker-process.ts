// One broker child process for tests: its own process group (RabbitMQ's start script forks beam.smp),
// its output in a log file, a stop by its own PID (SIGTERM, then SIGKILL to the group), and a kill at
// process exit for whatever a failed test left running. Cleanup actions (epmd -kill) run at exit too.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';

/** Children still running and cleanups not yet run, killed/run when the test process exits. */
const LIVE = Symbol.for('clinimesh.test.liveBrokers');
const registry = globalThis as { [LIVE]?: { children: Set<ChildProcess>; cleanups: Set<() => void> } };
const live = (registry[LIVE] ??= trackedForExit());

function trackedForExit(): { children: Set<ChildProcess>; cleanups: Set<() => void> } {
  const state = { children: new Set<ChildProcess>(), cleanups: new Set<() => void>() };
  process.once('exit', () => {
    for (const child of state.children) killGroup(child, 'SIGKILL');
    for (const cleanup of state.cleanups) cleanup();
  });
  return state;
}

/** Runs `fn` at process exit unless the returned function is called first (then it runs `fn` now). */
export function atExit(fn: () => void): () => void {
  live.cleanups.add(fn);
  return () => {
    if (live.cleanups.delete(fn)) fn();
  };
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal); // the group we created with detached: true
  } catch {
    child.kill(signal);
  }
}

export function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

export interface BrokerProcessOptions {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** stdout and stderr both go here. */
  readonly logFile: string;
}

export class BrokerProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly logFile: string;
  /** Resolves with how the process ended ("exited with 0", "exited with SIGKILL"). */
  readonly ended: Promise<string>;
  private stopping: Promise<void> | undefined;

  constructor(o: BrokerProcessOptions) {
    this.name = o.name;
    this.logFile = o.logFile;
    const fd = openSync(o.logFile, 'a');
    try {
      this.child = spawn(o.command, [...o.args], {
        cwd: o.cwd,
        env: o.env ?? process.env,
        stdio: ['ignore', fd, fd],
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    live.children.add(this.child);
    this.ended = new Promise<string>((resolve) => {
      this.child.once('error', (err) => resolve(`failed to run: ${err.message}`));
      this.child.once('exit', (code, signal) => resolve(`exited with ${code ?? signal}`));
    }).finally(() => live.children.delete(this.child));
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  log(): string {
    return existsSync(this.logFile) ? readFileSync(this.logFile, 'utf8') : '';
  }

  /** Rejects when the process ends before `ready` resolves: a broker that dies at boot fails fast. */
  async until<T>(ready: Promise<T>): Promise<T> {
    const died = this.ended.then((how) => Promise.reject(new Error(`${this.name} ${how} during startup`)));
    died.catch(() => {});
    return Promise.race([ready, died]);
  }

  /** SIGTERM to our child, then SIGKILL to its whole group after `graceMs`; idempotent. */
  stop(graceMs = 15_000): Promise<void> {
    return (this.stopping ??= (async () => {
      if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
      if (!(await this.endedWithin(graceMs))) killGroup(this.child, 'SIGKILL');
      await this.endedWithin(5_000);
      // The start script may have exited while the VM it started lingers: end the group for good.
      killGroup(this.child, 'SIGKILL');
    })());
  }

  /** SIGKILL to the whole group at once: a crash, not a shutdown. */
  async kill(): Promise<void> {
    killGroup(this.child, 'SIGKILL');
    await this.endedWithin(5_000);
  }

  private endedWithin(ms: number): Promise<boolean> {
    const timer = new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref());
    return Promise.race([this.ended.then(() => true), timer]);
  }
}
