// The double's agent runs the checks registered on its node, as a Consul agent does: HTTP checks
// (2xx passing, 429 warning, anything else critical), TCP checks (connect → passing) at their
// Interval (at least 1 s, Consul's minimum), and TTL checks that turn critical when not refreshed
// (on the double's clock, so a test can let a TTL run out with `advanceClock`).
// Everything pauses while the double is stopped, and nothing outlives `stop()`.
import { connect } from 'node:net';
import type { DoubleClock } from './clock.ts';
import { parseGoDuration } from './duration.ts';
import type { CatalogState, CheckRecord, CheckStatus } from './state.ts';

const MIN_INTERVAL_MS = 1_000;
const DEFAULT_TIMEOUT_MS = 10_000;

async function probeHttp(url: string, method: string, timeoutMs: number): Promise<[CheckStatus, string]> {
  try {
    const res = await fetch(url, { method, signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    await res.body?.cancel();
    const status: CheckStatus =
      res.status >= 200 && res.status < 300 ? 'passing' : res.status === 429 ? 'warning' : 'critical';
    return [status, `HTTP ${method} ${url}: ${res.status} ${res.statusText}`];
  } catch (err) {
    return ['critical', `HTTP ${method} ${url}: ${(err as Error).message}`];
  }
}

function probeTcp(target: string, timeoutMs: number): Promise<[CheckStatus, string]> {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(target);
  if (!m) return Promise.resolve(['critical', `TCP ${target}: bad address`]);
  return new Promise((resolve) => {
    const socket = connect({ host: m[1]!, port: Number(m[2]), timeout: timeoutMs });
    const done = (result: [CheckStatus, string]): void => {
      socket.destroy();
      resolve(result);
    };
    socket.once('connect', () => done(['passing', `TCP connect ${target}: Success`]));
    socket.once('timeout', () => done(['critical', `TCP connect ${target}: timeout`]));
    socket.once('error', (err) => done(['critical', `TCP connect ${target}: ${err.message}`]));
  });
}

export class AgentChecks {
  /** Check ID → cancels its next run. */
  private readonly timers = new Map<string, () => void>();
  /** Checks whose probe is in flight (no timer, but not to be scheduled again). */
  private readonly busy = new Set<string>();
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly state: CatalogState,
    private readonly node: string,
    private readonly clock: DoubleClock,
  ) {}

  start(): void {
    if (this.unsubscribe) return;
    this.unsubscribe = this.state.onChange(() => this.reconcile());
    this.reconcile();
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const cancel of this.timers.values()) cancel();
    this.timers.clear();
    this.busy.clear();
  }

  /** A TTL check was updated through the API: its clock restarts. */
  refreshTtl(checkId: string): void {
    this.timers.get(checkId)?.();
    this.timers.delete(checkId);
    this.reconcile();
  }

  private reconcile(): void {
    if (!this.unsubscribe) return;
    const live = new Set<string>();
    for (const check of this.state.checks.values()) {
      if (check.node !== this.node || check.type === '') continue;
      live.add(check.checkId);
      if (!this.timers.has(check.checkId) && !this.busy.has(check.checkId))
        this.schedule(check, check.type === 'ttl' ? ttlMs(check) : 0);
    }
    for (const [id, cancel] of this.timers) {
      if (!live.has(id)) {
        cancel();
        this.timers.delete(id);
      }
    }
  }

  private schedule(check: CheckRecord, delayMs: number): void {
    const run = (): void => void this.run(check.checkId);
    if (check.type === 'ttl') {
      this.timers.set(check.checkId, this.clock.at(this.clock.now() + delayMs, run));
      return;
    }
    // Probes touch real sockets: they run on real time.
    const timer = setTimeout(run, delayMs);
    timer.unref();
    this.timers.set(check.checkId, () => clearTimeout(timer));
  }

  private async run(checkId: string): Promise<void> {
    this.timers.delete(checkId);
    const check = this.state.findCheck(this.node, checkId);
    if (!check || !this.unsubscribe) return;
    const d = check.definition;
    if (check.type === 'ttl') {
      this.state.updateCheck(this.node, checkId, 'critical', 'TTL expired');
      return;
    }
    this.busy.add(checkId);
    const timeoutMs = parseGoDuration(d.Timeout ?? '') || DEFAULT_TIMEOUT_MS;
    const [status, output] = d.HTTP
      ? await probeHttp(d.HTTP, d.Method ?? 'GET', timeoutMs)
      : await probeTcp(d.TCP ?? '', timeoutMs);
    this.busy.delete(checkId);
    const current = this.state.findCheck(this.node, checkId);
    if (!this.unsubscribe || !current) return;
    // Schedule first: the update below triggers a reconcile, which must find the next run planned.
    if (!this.timers.has(checkId)) {
      this.schedule(
        current,
        Math.max(MIN_INTERVAL_MS, parseGoDuration(current.definition.Interval ?? '') ?? MIN_INTERVAL_MS),
      );
    }
    this.state.updateCheck(this.node, checkId, status, output);
  }
}

function ttlMs(check: CheckRecord): number {
  return parseGoDuration(check.definition.TTL ?? '') ?? 0;
}
