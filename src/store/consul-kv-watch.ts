// Watching a KV key or prefix with blocking queries, on the same loop as discovery's watches: the
// index resets when it goes backwards, never blocks below 1, failures back off with jitter and
// leave the caller's last good view alone (fail static), and a token bucket limits the pace.
import {
  BlockingQueryLoop,
  DEFAULT_BACKOFF,
  systemClock,
  type BackoffPolicy,
  type Clock,
  type LoopStatus,
  type RateLimit,
} from '../consul/blocking.ts';
import { ConsulHttpError } from '../consul/http.ts';
import { formatProblem } from '../errors.ts';
import { log } from '../log.ts';
import type { ConsulKv, KvEntry } from './consul-kv.ts';

export interface KvWatchOptions {
  /** Watch every key under `key` (`?recurse`) instead of the one key. */
  readonly recurse?: boolean;
  /** Called with the entries after every answer whose index moved (the first answer included). */
  readonly onChange: (entries: readonly KvEntry[], index: bigint) => void | Promise<void>;
  readonly failing?: (status: LoopStatus) => void;
  readonly recovered?: (during: LoopStatus) => void;
  /** How long one blocking query may be held (default 5 min, Consul's default). */
  readonly waitMs?: number;
  readonly clock?: Clock;
  readonly random?: () => number;
  readonly backoff?: BackoffPolicy;
  /** Shared state wants freshness: by default 20 answers back to back, then 10 a second. */
  readonly rateLimit?: RateLimit;
}

const logger = log.child({ component: 'consul-kv' });

export const KV_WATCH_RATE_LIMIT: RateLimit = { burst: 20, refillMs: 100 };

export interface KvWatch {
  readonly status: LoopStatus;
  stop(): Promise<void>;
}

/** Starts watching; `onChange` runs once per index change, never concurrently with itself. */
export function watchKv(kv: ConsulKv, key: string, o: KvWatchOptions): KvWatch {
  const waitMs = o.waitMs ?? 5 * 60_000;
  let last: bigint | undefined;
  let pending: Promise<void> = Promise.resolve();
  const loop = new BlockingQueryLoop(
    {
      fetch: async (index, wait, signal) => {
        // Give Consul its wait plus wait/16 of jitter, and some slack, before giving up.
        const timeoutMs = wait + Math.ceil(wait / 16) + 5_000;
        const read = o.recurse
          ? await kv.list(key, { index, waitMs: wait, signal, timeoutMs })
          : await kv.get(key, { index, waitMs: wait, signal, timeoutMs });
        if (!read.ok) throw new ConsulHttpError(read.errors.map(formatProblem).join('; '), 'network');
        const entries = Array.isArray(read.value.value)
          ? read.value.value
          : read.value.value
            ? [read.value.value]
            : [];
        return { status: 200, body: entries, index: read.value.index };
      },
      handle: (body, res) => {
        const index = res.index ?? 0n;
        if (last === index) return;
        last = index;
        const entries = body as readonly KvEntry[];
        // Serialized, so a slow handler never sees an older answer after a newer one.
        pending = pending.then(async () => {
          try {
            await o.onChange(entries, index);
          } catch (err) {
            logger.warn({ key, err: (err as Error).message }, 'KV watch handler failed');
          }
        });
      },
      failing: o.failing,
      recovered: o.recovered,
    },
    {
      clock: o.clock ?? systemClock,
      random: o.random ?? Math.random,
      waitMs,
      backoff: o.backoff ?? DEFAULT_BACKOFF,
      rateLimit: o.rateLimit ?? KV_WATCH_RATE_LIMIT,
    },
  );
  loop.start();
  return {
    get status() {
      return loop.status;
    },
    stop: async () => {
      await loop.stop();
      await pending;
    },
  };
}
