// Live endpoints from Consul: one blocking-query loop on `/v1/health/service/<name>` per watched service,
// mapped to EndpointSets and pushed to a sink only when the set changed. Fail-static: an error never
// produces a set, so what the sink last received stays in force until Consul answers again.
import type { EndpointSet, EndpointSink } from './endpoints.ts';
import type {
  BackoffPolicy,
  BlockingQuery,
  Clock,
  LoopSettings,
  LoopStatus,
  RateLimit,
} from '../consul/blocking.ts';
import {
  BlockingQueryLoop,
  DEFAULT_BACKOFF,
  DEFAULT_RATE_LIMIT,
  goDuration,
  systemClock,
} from '../consul/blocking.ts';
import type { ConsulHttp, ConsulResponse } from '../consul/http.ts';
import {
  canonicalEndpoints,
  endpointsFromEntries,
  parseHealthEntries,
  registeredForAnotherNamespace,
} from './consul-health.ts';
import { log as rootLog, type Logger } from '../log.ts';

export interface ConsulWatcherOptions {
  readonly client: ConsulHttp;
  readonly sink: EndpointSink;
  /**
   * Longest a blocking query may hang (Consul's `wait`); default 5 min, Consul's own, at most 10 min.
   * Every watched service holds one query open: for the benchmark's 1250 Consul services a 30 s wait
   * was ~42 requests a second to Consul, and bursts of our CPU, with nothing changing; a change is
   * answered at once whatever the wait.
   */
  readonly waitMs?: number;
  /** Let any server answer (`?stale`): reads keep working without a leader, at the price of lag. */
  readonly stale?: boolean;
  readonly backoff?: BackoffPolicy;
  readonly rateLimit?: RateLimit;
  readonly clock?: Clock;
  readonly random?: () => number;
  /** Outages and recoveries, one line each; default the process logger. */
  readonly log?: Logger;
}

export interface ConsulServiceStatus {
  /** Our service key (`his.clinical`). */
  readonly service: string;
  readonly consulName: string;
  /** Whether an answer was ever received (and a set pushed) for this service. */
  readonly synced: boolean;
  readonly endpoints: number;
  /** The X-Consul-Index the next request blocks on, as a decimal string. */
  readonly index: string;
  readonly lastSuccessAt?: number;
  readonly lastError?: string;
  readonly lastErrorAt?: number;
  readonly consecutiveFailures: number;
  readonly retryInMs?: number;
  /**
   * 0 while the watch is in sync; when failing, the age of the last good answer (or of the watch, if
   * none came yet). This is what alerts should look at.
   */
  readonly stalenessMs: number;
  /** Entries of the last answer left out because they had no service ID or port. */
  readonly skippedEntries: number;
  /** Entries of the last answer left out because clinimesh registered them for another namespace. */
  readonly foreignEntries: number;
}

interface ServiceWatch {
  readonly consulName: string;
  readonly portName: string;
  readonly loop: BlockingQueryLoop;
  lastKey?: string;
  endpoints: number;
  skipped: number;
  foreign: number;
}

interface CatalogWatch {
  readonly loop: BlockingQueryLoop;
  /** Service key → Consul name of the watches this catalog watch started. */
  readonly owned: Map<string, string>;
}

const MAX_WAIT_MS = 10 * 60_000;
const DEFAULT_WAIT_MS = 5 * 60_000;

export class ConsulWatcher {
  private readonly watches = new Map<string, ServiceWatch>();
  private readonly clock: Clock;
  private readonly waitMs: number;
  private readonly retiring = new Set<Promise<void>>();
  private readonly log: Logger;
  private catalog: CatalogWatch | undefined;
  private stopped = false;

  constructor(private readonly options: ConsulWatcherOptions) {
    this.clock = options.clock ?? systemClock;
    this.log = (options.log ?? rootLog).child({ component: 'consul' });
    this.waitMs = Math.min(MAX_WAIT_MS, Math.max(1, options.waitMs ?? DEFAULT_WAIT_MS));
  }

  /** Starts (or retargets) watching `consulName` for `serviceKey`; its one port is named `portName`. */
  watch(serviceKey: string, consulName: string, portName: string): void {
    if (this.stopped) throw new Error('ConsulWatcher.watch after stop()');
    const existing = this.watches.get(serviceKey);
    if (existing && existing.consulName === consulName && existing.portName === portName) return;
    if (existing) this.retire(existing.loop);
    const watch: ServiceWatch = {
      consulName,
      portName,
      loop: this.newLoop(serviceKey, consulName),
      endpoints: 0,
      skipped: 0,
      foreign: 0,
    };
    this.watches.set(serviceKey, watch);
    watch.loop.start();
  }

  /** Stops watching; the sink keeps the last set (the caller decides what a removed service means). */
  async unwatch(serviceKey: string): Promise<void> {
    const watch = this.watches.get(serviceKey);
    if (!watch) return;
    this.watches.delete(serviceKey);
    await watch.loop.stop();
  }

  /**
   * Optional "whole datacenter" mode: a blocking watch on `/v1/catalog/services` that watches every
   * service `keyFor` maps to a key (return undefined to skip one, e.g. `consul`). A service that
   * leaves the catalog gets an empty set, then its watch ends; watches added by `watch()` are untouched.
   */
  watchAll(options: {
    readonly portName: string;
    readonly keyFor: (consulName: string) => string | undefined;
  }): void {
    if (this.stopped) throw new Error('ConsulWatcher.watchAll after stop()');
    if (this.catalog) this.retire(this.catalog.loop);
    const owned = new Map<string, string>();
    const loop: BlockingQueryLoop = new BlockingQueryLoop(
      {
        fetch: (index, waitMs, signal) => this.fetch('/catalog/services', index, waitMs, signal),
        handle: (body, res) => {
          if (this.catalog?.loop !== loop) return;
          if (res.filteredByAcls) throw new Error('catalog filtered by ACLs: the token lacks service:read');
          this.syncCatalog(body, owned, options.portName, options.keyFor, res.knownLeader !== false);
        },
        ...this.outageLog('(catalog)', 'catalog/services'),
      },
      this.loopSettings(),
    );
    this.catalog = { loop, owned };
    loop.start();
  }

  /** The catalog watch of `watchAll`, if one runs. */
  catalogStatus(): (LoopStatus & { readonly services: number }) | undefined {
    return this.catalog ? { ...this.catalog.loop.status, services: this.catalog.owned.size } : undefined;
  }

  watched(): string[] {
    return [...this.watches.keys()].sort();
  }

  status(): ConsulServiceStatus[] {
    const now = this.clock.now();
    return this.watched().map((service) => {
      const watch = this.watches.get(service)!;
      return toStatus(service, watch, watch.loop.status, now);
    });
  }

  /** Aborts every request in flight and every pending retry; no timers remain afterwards. */
  async stop(): Promise<void> {
    this.stopped = true;
    const loops = [...this.watches.values()].map((w) => w.loop.stop());
    if (this.catalog) loops.push(this.catalog.loop.stop());
    this.watches.clear();
    this.catalog = undefined;
    await Promise.all([...loops, ...this.retiring]);
  }

  private retire(loop: BlockingQueryLoop): void {
    const done = loop.stop().finally(() => this.retiring.delete(done));
    this.retiring.add(done);
  }

  private syncCatalog(
    body: unknown,
    owned: Map<string, string>,
    portName: string,
    keyFor: (name: string) => string | undefined,
    leader: boolean,
  ): void {
    if (typeof body !== 'object' || body === null || Array.isArray(body))
      throw new Error('catalog answer is not a JSON object');
    if (!leader && Object.keys(body).length === 0 && owned.size > 0)
      throw new Error('empty catalog from a server without a known leader; keeping the watched services');
    const wanted = new Map<string, string>();
    for (const name of Object.keys(body)) {
      const key = keyFor(name);
      if (key !== undefined) wanted.set(key, name);
    }
    for (const [key, name] of owned) {
      if (wanted.get(key) === name) continue;
      owned.delete(key);
      const watch = this.watches.get(key);
      if (!watch || watch.consulName !== name) continue;
      this.watches.delete(key);
      this.retire(watch.loop);
      // The catalog says the service is gone: an answer, not a blink, so its endpoints go too.
      if (watch.lastKey !== undefined && watch.endpoints > 0)
        this.options.sink.update({ service: key, endpoints: [], source: 'consul' });
    }
    for (const [key, name] of wanted) {
      if (owned.has(key) || this.watches.has(key)) continue;
      owned.set(key, name);
      this.watch(key, name, portName);
    }
  }

  private fetch(path: string, index: bigint, waitMs: number, signal: AbortSignal): Promise<ConsulResponse> {
    const stale = this.options.stale ? { stale: '' } : {};
    const query = index > 0n ? { index: String(index), wait: goDuration(waitMs), ...stale } : stale;
    return this.options.client.get(path, query, { signal, timeoutMs: requestTimeoutMs(waitMs) });
  }

  private loopSettings(): LoopSettings {
    return {
      clock: this.clock,
      random: this.options.random ?? Math.random,
      waitMs: this.waitMs,
      backoff: this.options.backoff ?? DEFAULT_BACKOFF,
      rateLimit: this.options.rateLimit ?? DEFAULT_RATE_LIMIT,
    };
  }

  private newLoop(serviceKey: string, consulName: string): BlockingQueryLoop {
    const path = `/health/service/${encodeURIComponent(consulName)}`;
    const loop: BlockingQueryLoop = new BlockingQueryLoop(
      {
        fetch: (index, waitMs, signal) => this.fetch(path, index, waitMs, signal),
        handle: (body, res) => this.handle(serviceKey, loop, body, res),
        ...this.outageLog(serviceKey, consulName),
      },
      this.loopSettings(),
    );
    return loop;
  }

  /**
   * One warning when a watch starts failing and one line when it answers again, with how stale the
   * endpoints in force are; the retries in between stay quiet (status and metrics count them).
   */
  private outageLog(service: string, consulName: string): Pick<BlockingQuery, 'failing' | 'recovered'> {
    const staleSince = (s: LoopStatus) => s.lastSuccessAt ?? s.startedAt;
    return {
      failing: (s) => {
        const stalenessSeconds = Math.round((this.clock.now() - staleSince(s)) / 1000);
        this.log.warn(
          {
            service,
            consulName,
            error: s.lastError,
            stalenessSeconds,
            retryInMs: s.retryInMs,
            synced: s.lastSuccessAt !== undefined,
          },
          'consul watch failing; keeping the last endpoints (fail static)',
        );
      },
      recovered: (s) => {
        const stalenessSeconds = Math.round((this.clock.now() - staleSince(s)) / 1000);
        this.log.info(
          { service, consulName, stalenessSeconds, failures: s.consecutiveFailures, lastError: s.lastError },
          'consul watch recovered',
        );
      },
    };
  }

  /** Warns when the count of another namespace's instances under this name changes to a non-zero one. */
  private noteForeign(serviceKey: string, watch: ServiceWatch, foreign: number): void {
    if (foreign > 0 && foreign !== watch.foreign)
      this.log.warn(
        { service: serviceKey, consulName: watch.consulName, foreign },
        'consul instances registered by clinimesh for another namespace left out',
      );
    watch.foreign = foreign;
  }

  private handle(serviceKey: string, loop: BlockingQueryLoop, body: unknown, res: ConsulResponse): void {
    const watch = this.watches.get(serviceKey);
    if (watch?.loop !== loop) return; // unwatched or retargeted while the answer was on its way
    // A partial view would take away instances the token merely cannot see.
    if (res.filteredByAcls)
      throw new Error('results filtered by ACLs: the token lacks service:read or node:read');
    const { entries, skipped } = parseHealthEntries(body);
    // A server that lost its leader may answer a stale read from empty state: not evidence enough to
    // take every instance away.
    if (entries.length === 0 && res.knownLeader === false && watch.lastKey !== undefined) {
      throw new Error('empty answer from a server without a known leader; keeping the last endpoints');
    }
    const namespace = namespaceOfKey(serviceKey);
    const ours = entries.filter((e) => !registeredForAnotherNamespace(e, namespace));
    this.noteForeign(serviceKey, watch, entries.length - ours.length);
    const endpoints = endpointsFromEntries(ours, watch.portName);
    watch.skipped = skipped;
    const key = canonicalEndpoints(endpoints);
    if (key === watch.lastKey) return;
    const set: EndpointSet = { service: serviceKey, endpoints, source: 'consul' };
    this.options.sink.update(set);
    watch.lastKey = key;
    watch.endpoints = endpoints.length;
  }
}

/** `his.clinical` → `clinical` (names and namespaces are DNS labels: no dots). */
function namespaceOfKey(serviceKey: string): string {
  return serviceKey.slice(serviceKey.indexOf('.') + 1);
}

/** The HTTP deadline for one blocking query: Consul may add up to wait/16 of jitter, plus slack. */
export function requestTimeoutMs(waitMs: number): number {
  return Math.ceil(waitMs + waitMs / 16) + 5_000;
}

function toStatus(service: string, watch: ServiceWatch, loop: LoopStatus, now: number): ConsulServiceStatus {
  const synced = watch.lastKey !== undefined;
  const inSync = synced && loop.consecutiveFailures === 0;
  return {
    service,
    consulName: watch.consulName,
    synced,
    endpoints: watch.endpoints,
    index: String(loop.index),
    ...(loop.lastSuccessAt !== undefined ? { lastSuccessAt: loop.lastSuccessAt } : {}),
    ...(loop.lastError !== undefined ? { lastError: loop.lastError } : {}),
    ...(loop.lastErrorAt !== undefined ? { lastErrorAt: loop.lastErrorAt } : {}),
    consecutiveFailures: loop.consecutiveFailures,
    ...(loop.retryInMs !== undefined ? { retryInMs: loop.retryInMs } : {}),
    stalenessMs: inSync ? 0 : Math.max(0, now - (loop.lastSuccessAt ?? loop.startedAt)),
    skippedEntries: watch.skipped,
    foreignEntries: watch.foreign,
  };
}
