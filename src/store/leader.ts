// Leader election among control-plane replicas through a Consul lock, as Consul's own docs describe
// it (https://developer.hashicorp.com/consul/docs/dynamic-app-config/sessions/application-leader-elections):
// each replica holds a session (TTL, lock-delay, released on invalidation), tries to acquire one
// key with it, and watches that key with blocking reads. Leadership is lost at once — singleton
// duties stop before anything else happens — when a renewal says the session is gone, when the key
// names another session, or when Consul has not confirmed the session for a whole TTL (it may
// have expired without our hearing). Lock-delay keeps a new leader from starting while the old one
// may still be finishing a step.
import { setTimeout as sleep } from 'node:timers/promises';
import type { ConsulHttp } from '../consul/http.ts';
import { ConsulHttpError } from '../consul/http.ts';
import { formatProblem } from '../errors.ts';
import { log as rootLog, type Logger } from '../log.ts';
import type { ConsulKv } from './consul-kv.ts';

/** What the lock key holds: who leads, and where to reach it. */
export interface LeaderInfo {
  readonly replica: string;
  /** The leader's admin API, for a non-leader's answer. */
  readonly adminUrl?: string;
  readonly since: string;
}

export interface LeaderOptions {
  readonly http: Pick<ConsulHttp, 'put'>;
  readonly kv: Pick<ConsulKv, 'get' | 'put'>;
  /** The lock key, e.g. `clinimesh/leader`. */
  readonly key: string;
  readonly replica: string;
  readonly adminUrl?: string;
  /** Session TTL (Consul: 10 s–24 h); renewed every third of it. Default 10 s. */
  readonly ttlMs?: number;
  /** Consul's lock-delay after a session is invalidated (default 5 s). */
  readonly lockDelayMs?: number;
  /** How often the session is renewed (default a third of the TTL). */
  readonly renewEveryMs?: number;
  /** The clock leadership is judged by (tests move it). */
  readonly now?: () => number;
  /** Called on every change of leadership (true: this replica leads now). */
  readonly onChange?: (leader: boolean) => void;
  readonly log?: Logger;
}

const secs = (ms: number) => `${Math.max(1, Math.round(ms / 1000))}s`;

export class LeaderElection {
  #session: string | undefined;
  #leader = false;
  #lastConfirmed = 0;
  #current: LeaderInfo | undefined;
  #stopped = false;
  readonly #abort = new AbortController();
  readonly #ttlMs: number;
  readonly #renewMs: number;
  readonly #now: () => number;
  readonly #log: Logger;
  #loops: Promise<unknown>[] = [];

  constructor(private readonly o: LeaderOptions) {
    this.#ttlMs = Math.max(10_000, o.ttlMs ?? 10_000);
    this.#renewMs = o.renewEveryMs ?? this.#ttlMs / 3;
    this.#now = o.now ?? Date.now;
    this.#log = (o.log ?? rootLog).child({ component: 'leader', replica: o.replica });
  }

  /** Whether this replica leads now (false as soon as it may not). */
  isLeader(): boolean {
    if (this.#leader && this.#now() - this.#lastConfirmed > this.#ttlMs)
      this.#lose('session not confirmed for a TTL');
    return this.#leader;
  }

  /** Who leads, as the lock key says (undefined: nobody, or not known yet). */
  leader(): LeaderInfo | undefined {
    return this.#leader ? this.#self() : this.#current;
  }

  start(): void {
    this.#loops = [this.#renewLoop(), this.#watchLoop()];
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#abort.abort();
    const session = this.#session;
    this.#lose('stopping');
    await Promise.allSettled(this.#loops);
    if (!session) return;
    // Hand over at once (the lock-delay still applies to an invalidated session, not a released lock).
    await this.o.kv.put(this.o.key, '', { release: session }).catch(() => undefined);
    await this.o.http.put(`/session/destroy/${session}`).catch(() => undefined);
  }

  #self(): LeaderInfo {
    return {
      replica: this.o.replica,
      adminUrl: this.o.adminUrl,
      since: new Date(this.#lastConfirmed).toISOString(),
    };
  }

  #win(): void {
    if (this.#leader) return;
    this.#leader = true;
    this.#log.info('this replica is the leader: singleton duties start');
    this.o.onChange?.(true);
  }

  #lose(why: string): void {
    if (!this.#leader) return;
    this.#leader = false;
    this.#log.warn({ why }, 'leadership lost: singleton duties stop');
    this.o.onChange?.(false);
  }

  async #createSession(): Promise<void> {
    const res = await this.o.http.put('/session/create', {
      Name: `clinimesh ${this.o.replica}`,
      TTL: secs(this.#ttlMs),
      LockDelay: secs(this.o.lockDelayMs ?? 5_000),
      Behavior: 'release',
      Checks: [],
    });
    const id = (res.body as { ID?: unknown } | null)?.ID;
    if (typeof id !== 'string') throw new Error('session create answered without an ID');
    this.#session = id;
    this.#lastConfirmed = this.#now();
  }

  /** Keeps the session alive; a session Consul no longer knows is replaced, leadership dropped. */
  async #renewLoop(): Promise<void> {
    while (!this.#stopped) {
      try {
        if (!this.#session) await this.#createSession();
        else {
          await this.o.http.put(`/session/renew/${this.#session}`, undefined, undefined, {
            timeoutMs: this.#ttlMs / 3,
          });
          this.#lastConfirmed = this.#now();
        }
        if (!this.#leader) await this.#tryAcquire();
      } catch (e) {
        if (e instanceof ConsulHttpError && e.status === 404) {
          this.#lose('Consul says the session is gone');
          this.#session = undefined;
          continue;
        }
        this.#log.warn({ err: (e as Error).message }, 'cannot reach Consul to renew the session');
        if (this.#now() - this.#lastConfirmed > this.#ttlMs)
          this.#lose('Consul unreachable for a whole session TTL');
      }
      await sleep(this.#renewMs, undefined, { signal: this.#abort.signal }).catch(() => undefined);
    }
  }

  async #tryAcquire(): Promise<void> {
    const session = this.#session;
    if (!session || this.#stopped) return;
    const info = { replica: this.o.replica, adminUrl: this.o.adminUrl, since: new Date().toISOString() };
    const put = await this.o.kv.put(this.o.key, JSON.stringify(info), { acquire: session });
    if (put.ok && put.value && this.#session === session) {
      this.#current = info;
      this.#win();
    }
  }

  /** Follows the lock key: who holds it, and a free lock to try for. */
  async #watchLoop(): Promise<void> {
    let index = 0n;
    while (!this.#stopped) {
      const read = await this.o.kv.get(this.o.key, {
        index,
        waitMs: 60_000,
        timeoutMs: 70_000,
        signal: this.#abort.signal,
      });
      if (this.#stopped) return;
      if (!read.ok) {
        this.#log.debug({ reasons: read.errors.map(formatProblem) }, 'leader key watch failed');
        await sleep(1_000, undefined, { signal: this.#abort.signal }).catch(() => undefined);
        continue;
      }
      index = read.value.index > index ? read.value.index : 0n;
      const entry = read.value.value;
      const holder = entry?.session;
      if (holder && holder !== this.#session) this.#lose(`the lock is held by session ${holder}`);
      this.#current = holder ? parseInfo(entry.value) : undefined;
      // A free lock: try now (Consul refuses during the lock-delay; the renew loop tries again).
      if (!holder) await this.#tryAcquire().catch(() => undefined);
    }
  }
}

function parseInfo(value: Buffer): LeaderInfo | undefined {
  try {
    const v = JSON.parse(value.toString('utf8')) as Partial<LeaderInfo>;
    return typeof v.replica === 'string'
      ? { replica: v.replica, adminUrl: v.adminUrl, since: v.since ?? '' }
      : undefined;
  } catch {
    return undefined;
  }
}
