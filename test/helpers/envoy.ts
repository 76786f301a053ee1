// Real Envoy for tests: finds the binary (scripts/ensure-envoy.mjs installs it), starts one Envoy per
// bootstrap in its own temp dir with an admin port of 0, reads its admin API, and always kills it.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect } from 'vitest';
import type { TestContext } from 'vitest';
import { httpRequest } from './upstream.ts';
import { waitFor } from './wait.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

function executable(path: string | undefined): path is string {
  if (!path) return false;
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** ENVOY_BIN, else the path ensure-envoy recorded in the venv, else `envoy` on PATH. */
export function findEnvoy(): string | undefined {
  if (process.env.ENVOY_BIN) return executable(process.env.ENVOY_BIN) ? process.env.ENVOY_BIN : undefined;
  const venv = resolve(repoRoot, process.env.CLINIMESH_ENVOY_VENV || '.envoy');
  const recordFile = join(venv, 'ENVOY_PATH');
  const recorded = existsSync(recordFile) ? readFileSync(recordFile, 'utf8').trim() : undefined;
  if (executable(recorded)) return recorded;
  const dirs = (process.env.PATH ?? '').split(delimiter).filter(Boolean);
  return dirs.map((dir) => join(dir, 'envoy')).find(executable);
}

export const envoyBin: string | undefined = findEnvoy();

/** `describe` when Envoy is available; otherwise skips with a printed reason, or throws when CI=true. */
export const describeWithEnvoy = (name: string, fn: () => void): void => {
  if (envoyBin) {
    describe(name, fn);
    return;
  }
  const reason = `Envoy not found (set ENVOY_BIN or run npm run envoy)`;
  if (process.env.CI === 'true') throw new Error(`${name}: ${reason}; CI=true requires real Envoy`);
  console.warn(`skipping ${name}: ${reason}`);
  describe.skip(name, fn);
};

export interface StartEnvoyOptions {
  /** A bootstrap object (its admin port is forced to 0) or YAML/JSON text written as is (use port 0). */
  bootstrap: object | string;
  /** Names the temp dir and the log dump. */
  name: string;
  /** Defaults to true; false for an Envoy that cannot finish init yet (e.g. control plane not up). */
  waitForReady?: boolean;
  startTimeoutMs?: number;
  logLevel?: 'trace' | 'debug' | 'info' | 'warning' | 'error';
  extraArgs?: string[];
}

export interface HostStatus {
  /** `ip:port` */
  address: string;
  healthy: boolean;
  /** The health flags that are set, plus `eds_health_status=X` unless X is HEALTHY; empty when healthy. */
  healthFlags: string[];
  weight: number;
  priority: number;
  locality: { region?: string; zone?: string; sub_zone?: string } | undefined;
}

export interface ClusterStatus {
  name: string;
  addedViaApi: boolean;
  hosts: HostStatus[];
}

export interface EnvoyHandle {
  readonly name: string;
  readonly pid: number;
  /** The temp dir holding the bootstrap, the admin address file and envoy.log (removed by stop()). */
  readonly dir: string;
  readonly adminUrl: string;
  /** GET (or POST) an admin path such as `/ready`; rejects on a non-2xx status. */
  admin(path: string, method?: 'GET' | 'POST'): Promise<string>;
  adminJson<T>(path: string): Promise<T>;
  /** Counters and gauges whose names match the RE2 `filter`, by full name. */
  stats(filter: string): Promise<Record<string, number>>;
  /** Bound port of each listener, by listener name. */
  listenerPorts(): Promise<Record<string, number>>;
  clusters(): Promise<ClusterStatus[]>;
  /** Hosts of one cluster; rejects when the cluster is unknown (so waitFor keeps polling). */
  clusterEndpoints(cluster: string): Promise<HostStatus[]>;
  /** The last `lines` lines of envoy.log and of stderr; still works after stop(). */
  logTail(lines?: number): string;
  /** Makes a running Envoy write out buffered log lines (POST /reopen_logs); best effort. */
  flushLog(): Promise<void>;
  /** Graceful quit, then SIGTERM, then SIGKILL; idempotent. */
  stop(): Promise<void>;
}

/**
 * Every Envoy still running, with its temp dir: killed and removed when the test process exits. Kept on
 * globalThis so a worker that re-imports this module per test file registers one exit hook, not many.
 */
const LIVE = Symbol.for('clinimesh.test.liveEnvoys');
const registry = globalThis as { [LIVE]?: Map<ChildProcess, string> };
const live = (registry[LIVE] ??= trackedForExit());

function trackedForExit(): Map<ChildProcess, string> {
  const children = new Map<ChildProcess, string>();
  process.once('exit', () => {
    for (const [child, dir] of children) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
  return children;
}

function withAdminPortZero(bootstrap: object): object {
  const copy = structuredClone(bootstrap) as { admin?: { address?: { socket_address?: object } } };
  const socket = { address: '127.0.0.1', ...copy.admin?.address?.socket_address, port_value: 0 };
  return { ...copy, admin: { ...copy.admin, address: { ...copy.admin?.address, socket_address: socket } } };
}

function postQuit(adminUrl: string): Promise<boolean> {
  const quit = httpRequest(`${adminUrl}/quitquitquit`, { method: 'POST', timeoutMs: 1_000 });
  return quit.then(
    (res) => res.status === 200,
    () => false,
  );
}

/** True once /ready answers 200; otherwise throws with what it said (PRE_INITIALIZING, ...) for waitFor. */
async function isReady(adminUrl: string): Promise<true> {
  const res = await httpRequest(`${adminUrl}/ready`, { timeoutMs: 1_000 });
  if (res.status !== 200) throw new Error(`/ready: ${res.status} ${res.body.trim()}`);
  return true;
}

function lastLines(text: string, n: number): string {
  return text.trimEnd().split('\n').slice(-n).join('\n');
}

function readIfExists(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

function envoyArgs(dir: string, config: string, options: StartEnvoyOptions): string[] {
  return [
    ...['-c', config, '--use-dynamic-base-id', '--concurrency', '1', '--drain-time-s', '1'],
    ...['--admin-address-path', join(dir, 'admin.txt'), '--log-path', join(dir, 'envoy.log')],
    ...['-l', options.logLevel ?? 'info'],
    // The log file is flushed every 10 s by default; a test that fails sooner would dump a stale tail.
    ...['--file-flush-interval-msec', '100'],
    ...(options.extraArgs ?? []),
  ];
}

/** One Envoy child process, its temp dir and its logs. */
class EnvoyProcess {
  readonly dir: string;
  readonly child: ChildProcess;
  adminUrl = '';
  private readonly ended: Promise<string>;
  private stderr = '';
  private finalLog: string | undefined;
  private stopping: Promise<void> | undefined;

  constructor(bin: string, options: StartEnvoyOptions) {
    this.dir = mkdtempSync(join(tmpdir(), `clinimesh-envoy-${options.name.replace(/[^\w.-]/g, '_')}-`));
    const { bootstrap } = options;
    const config = join(this.dir, typeof bootstrap === 'string' ? 'bootstrap.yaml' : 'bootstrap.json');
    writeFileSync(
      config,
      typeof bootstrap === 'string' ? bootstrap : JSON.stringify(withAdminPortZero(bootstrap)),
    );
    this.child = spawn(bin, envoyArgs(this.dir, config, options), { stdio: ['ignore', 'ignore', 'pipe'] });
    live.set(this.child, this.dir);
    this.child.stderr?.on('data', (chunk: Buffer) => {
      this.stderr = (this.stderr + chunk.toString('utf8')).slice(-64_000);
    });
    // 'close' rather than 'exit': it comes after stderr is drained, so Envoy's last words are kept.
    this.ended = new Promise<string>((resolveEnd) => {
      this.child.once('error', (err) => resolveEnd(`failed to run: ${err.message}`));
      this.child.once('close', (code, signal) => resolveEnd(`exited with ${code ?? signal}`));
    }).finally(() => live.delete(this.child));
  }

  log(): string {
    return this.finalLog ?? readIfExists(join(this.dir, 'envoy.log'));
  }

  logTail = (lines = 50): string => {
    const err = this.stderr.trim() ? `\n--- stderr ---\n${lastLines(this.stderr, lines)}` : '';
    return `${lastLines(this.log(), lines)}${err}`;
  };

  flushLog = async (): Promise<void> => {
    if (this.adminUrl === '' || this.stopping) return;
    const logFile = join(this.dir, 'envoy.log');
    const before = this.log().length;
    const reopen = await httpRequest(`${this.adminUrl}/reopen_logs`, { method: 'POST', timeoutMs: 1_000 });
    if (reopen.status !== 200) return;
    // The flush happens on Envoy's flush thread after the reply; give it a moment, bounded.
    await waitFor(async () => readIfExists(logFile).length > before, { timeoutMs: 500, what: 'log flush' });
  };

  /** Waits for the admin address file and (unless told not to) /ready; rejects if Envoy exits first. */
  async started(options: StartEnvoyOptions): Promise<void> {
    const timeoutMs = options.startTimeoutMs ?? 20_000;
    const adminFile = join(this.dir, 'admin.txt');
    const start = async (): Promise<void> => {
      const what = `${options.name}: admin address file`;
      const address = await waitFor(async () => readIfExists(adminFile).trim() || undefined, {
        timeoutMs,
        what,
      });
      this.adminUrl = `http://${address}`;
      if (options.waitForReady === false) return;
      await waitFor(() => isReady(this.adminUrl), { timeoutMs, what: `${options.name}: GET /ready == 200` });
    };
    const died = this.ended.then((how) => Promise.reject(new Error(`Envoy ${how} during startup`)));
    died.catch(() => {}); // it rejects at every later exit too; only this race cares
    await Promise.race([start(), died]);
  }

  stop = (): Promise<void> =>
    (this.stopping ??= (async () => {
      const quit = this.adminUrl !== '' && (await postQuit(this.adminUrl));
      if (!(quit && (await this.endedWithin(5_000)))) {
        this.child.kill('SIGTERM');
        if (!(await this.endedWithin(3_000))) {
          this.child.kill('SIGKILL');
          await this.endedWithin(5_000);
        }
      }
      this.finalLog = this.log();
      rmSync(this.dir, { recursive: true, force: true });
    })());

  private endedWithin(ms: number): Promise<boolean> {
    const timer = new Promise<boolean>((r) => setTimeout(() => r(false), ms).unref());
    return Promise.race([this.ended.then(() => true), timer]);
  }

  /** Why startup failed: the reason, Envoy's critical/error lines, and the log tail. */
  startupFailure(name: string, err: unknown): Error {
    const why = err instanceof Error ? err.message : String(err);
    const errors = this.log()
      .split('\n')
      .filter((line) => /\]\[(critical|error)\]/.test(line));
    const summary = errors.length ? `\n--- errors in envoy.log ---\n${errors.slice(-10).join('\n')}` : '';
    return new Error(
      `startEnvoy ${name} failed: ${why}${summary}\n--- last 50 lines ---\n${this.logTail(50)}`,
      {
        cause: err,
      },
    );
  }
}

export async function startEnvoy(options: StartEnvoyOptions): Promise<EnvoyHandle> {
  if (!envoyBin) throw new Error('startEnvoy: Envoy not found (set ENVOY_BIN or run npm run envoy)');
  const envoy = new EnvoyProcess(envoyBin, options);
  try {
    await envoy.started(options);
  } catch (err) {
    await envoy.stop();
    throw envoy.startupFailure(options.name, err);
  }
  return makeHandle(options.name, envoy);
}

function makeHandle(name: string, envoy: EnvoyProcess): EnvoyHandle {
  const { adminUrl, dir, logTail, flushLog, stop } = envoy;
  const admin = async (path: string, method: 'GET' | 'POST' = 'GET'): Promise<string> => {
    const res = await httpRequest(`${adminUrl}${path}`, { method, timeoutMs: 5_000 });
    if (res.status < 200 || res.status > 299)
      throw new Error(`${method} ${path}: ${res.status} ${res.body.trim()}`);
    return res.body;
  };
  const adminJson = async <T>(path: string): Promise<T> => JSON.parse(await admin(path)) as T;
  const clusters = async (): Promise<ClusterStatus[]> =>
    ((await adminJson<ClustersJson>('/clusters?format=json')).cluster_statuses ?? []).map(toClusterStatus);
  return {
    name,
    pid: envoy.child.pid ?? -1,
    dir,
    adminUrl,
    logTail,
    flushLog,
    stop,
    admin,
    adminJson,
    stats: async (filter) => {
      const { stats = [] } = await adminJson<StatsJson>(
        `/stats?format=json&filter=${encodeURIComponent(filter)}`,
      );
      return Object.fromEntries(
        stats.flatMap((s) =>
          typeof s.name === 'string' && typeof s.value === 'number' ? [[s.name, s.value]] : [],
        ),
      );
    },
    listenerPorts: async () => {
      const { listener_statuses = [] } = await adminJson<ListenersJson>('/listeners?format=json');
      return Object.fromEntries(
        listener_statuses.map((l) => [l.name, l.local_address?.socket_address?.port_value ?? 0]),
      );
    },
    clusters,
    clusterEndpoints: async (cluster) => {
      const found = (await clusters()).find((c) => c.name === cluster);
      if (!found) throw new Error(`cluster ${cluster} is not in /clusters`);
      return found.hosts;
    },
  };
}

/**
 * An afterEach listener that prints the log tail of each Envoy when the test failed:
 * `afterEach(dumpLogsOnFailure(() => [emrSidecar, hisSidecar]))`.
 */
export function dumpLogsOnFailure(
  handles: () => Iterable<EnvoyHandle | undefined>,
  lines = 50,
): (ctx: Pick<TestContext, 'task'>) => Promise<void> {
  return async (ctx) => {
    if (ctx.task.result?.state !== 'fail') return;
    for (const envoy of handles()) {
      if (!envoy) continue;
      await envoy.flushLog().catch(() => {});
      const title = `${ctx.task.name}: Envoy ${envoy.name} (pid ${envoy.pid}), last ${lines} log lines`;
      console.error(`--- ${title} ---\n${envoy.logTail(lines)}`);
    }
  };
}

// The parts of Envoy's admin JSON we read (field names as Envoy prints them).
interface SocketAddressJson {
  socket_address?: { address?: string; port_value?: number };
}
interface StatsJson {
  stats?: Array<{ name?: string; value?: number | string }>;
}
interface ListenersJson {
  listener_statuses?: Array<{ name: string; local_address?: SocketAddressJson }>;
}
interface HostStatusJson {
  address?: SocketAddressJson;
  health_status?: Record<string, boolean | string>;
  weight?: number;
  priority?: number;
  locality?: { region?: string; zone?: string; sub_zone?: string };
}
interface ClustersJson {
  cluster_statuses?: Array<{ name: string; added_via_api?: boolean; host_statuses?: HostStatusJson[] }>;
}

function toHostStatus(host: HostStatusJson): HostStatus {
  const { eds_health_status: eds, ...flags } = host.health_status ?? {};
  const healthFlags = Object.keys(flags).filter((flag) => flags[flag] === true);
  if (typeof eds === 'string' && eds !== 'HEALTHY') healthFlags.push(`eds_health_status=${eds}`);
  const socket = host.address?.socket_address;
  return {
    address: `${socket?.address ?? '?'}:${socket?.port_value ?? 0}`,
    healthy: healthFlags.length === 0,
    healthFlags,
    weight: host.weight ?? 1,
    priority: host.priority ?? 0,
    locality: host.locality,
  };
}

function toClusterStatus(cluster: NonNullable<ClustersJson['cluster_statuses']>[number]): ClusterStatus {
  return {
    name: cluster.name,
    addedViaApi: cluster.added_via_api ?? false,
    hosts: (cluster.host_statuses ?? []).map(toHostStatus),
  };
}

/** Asserts that no Envoy rejected an update: every `*.update_rejected` counter it has is 0. */
export async function expectNoRejectedUpdates(envoys: Iterable<EnvoyHandle>): Promise<void> {
  for (const e of envoys) {
    const rejected = await e.stats('update_rejected');
    expect(
      Object.values(rejected).every((v) => v === 0),
      `${e.name}: ${JSON.stringify(rejected)}`,
    ).toBe(true);
  }
}
