// Consul sessions in the double: created against a node and its checks, invalidated when destroyed,
// when their TTL runs out (2 × TTL after the last renew, Consul's documented bound, on the double's
// clock), or when one of their checks turns critical or goes away. Invalidation releases (or deletes,
// Behavior "delete") the keys the session holds and starts each key's lock-delay, in the same write.
// While the double is down nothing expires; coming back resets every TTL, as a new Consul leader does.
import { randomUUID } from 'node:crypto';
import type { DoubleClock } from './clock.ts';
import { parseGoDuration } from './duration.ts';
import type { KvStore } from './kv-store.ts';
import type { CatalogState } from './state.ts';

export type SessionBehavior = 'release' | 'delete';

export interface SessionRecord {
  readonly id: string;
  readonly name: string;
  readonly node: string;
  readonly lockDelayMs: number;
  readonly behavior: SessionBehavior;
  /** As given ("30s"), '' for none. */
  readonly ttl: string;
  readonly nodeChecks: readonly string[];
  readonly serviceChecks: ReadonlyArray<{ readonly ID: string; readonly Namespace: string }>;
  readonly createIndex: number;
  readonly modifyIndex: number;
}

export type SessionInput = Omit<SessionRecord, 'id' | 'createIndex' | 'modifyIndex'>;

/** A refusal with Consul's wording (the API answers it as a 500, as Consul's RPC errors are). */
export class SessionError extends Error {}

export const MAX_LOCK_DELAY_MS = 60_000;
const MAX_TTL_MS = 24 * 3_600_000;

export class SessionStore {
  readonly sessions = new Map<string, SessionRecord>();
  /** The last index at which a session was created or destroyed. */
  tableIndex = 0;
  private readonly expiries = new Map<string, () => void>();
  private running = false;

  constructor(
    private readonly state: CatalogState,
    private readonly kv: KvStore,
    private readonly clock: DoubleClock,
    /** Consul's `session_ttl_min` (10 s by default). */
    private readonly ttlMinMs = 10_000,
  ) {
    kv.sessionExists = (id) => this.sessions.has(id);
    state.onChange(() => this.invalidateOnChecks());
  }

  create(input: SessionInput): SessionRecord {
    if (input.ttl !== '') {
      const ms = parseGoDuration(input.ttl);
      if (ms === undefined)
        throw new SessionError(`Session TTL '${input.ttl}' invalid: time: invalid duration "${input.ttl}"`);
      if (ms !== 0 && (ms < this.ttlMinMs || ms > MAX_TTL_MS))
        throw new SessionError(
          `Invalid Session TTL '${ms * 1e6}', must be between [${goDuration(this.ttlMinMs)}=${goDuration(MAX_TTL_MS)}]`,
        );
    }
    if (!this.state.nodes.has(input.node)) throw new SessionError('Missing node registration');
    const checks = [...input.nodeChecks, ...input.serviceChecks.map((c) => c.ID)];
    for (const id of checks) {
      const check = this.state.findCheck(input.node, id);
      if (!check) throw new SessionError(`Missing check '${id}' registration`);
      if (check.status === 'critical') throw new SessionError(`Check '${id}' is in critical state`);
    }
    let record: SessionRecord | undefined;
    this.state.write((index) => {
      record = { ...input, id: randomUUID(), createIndex: index, modifyIndex: index };
      this.sessions.set(record.id, record);
      this.tableIndex = index;
      return [];
    }, false);
    this.armTtl(record!);
    return record!;
  }

  /** Invalidates a session: its keys released or deleted, each with the session's lock-delay. */
  destroy(id: string): void {
    const session = this.sessions.get(id);
    if (!session) return;
    this.expiries.get(id)?.();
    this.expiries.delete(id);
    const delay = Math.min(session.lockDelayMs, MAX_LOCK_DELAY_MS);
    const keys = this.kv.write((w) => {
      this.sessions.delete(id);
      this.tableIndex = w.index;
      return { commit: true, value: w.invalidateSession(id, session.behavior) };
    });
    for (const key of keys) this.kv.setLockDelay(key, delay);
  }

  /** Restarts a TTL session's clock; undefined when there is no such session. */
  renew(id: string): SessionRecord | undefined {
    const session = this.sessions.get(id);
    if (session) this.armTtl(session);
    return session;
  }

  /** The double is up: every TTL starts afresh (a new leader resets session timers). */
  start(): void {
    this.running = true;
    for (const s of this.sessions.values()) this.armTtl(s);
  }

  /** The double is down: nothing expires until it is back. */
  stop(): void {
    this.running = false;
    for (const cancel of this.expiries.values()) cancel();
    this.expiries.clear();
  }

  private armTtl(session: SessionRecord): void {
    this.expiries.get(session.id)?.();
    this.expiries.delete(session.id);
    const ttlMs = parseGoDuration(session.ttl) ?? 0;
    if (!this.running || ttlMs === 0) return;
    this.expiries.set(
      session.id,
      this.clock.at(this.clock.now() + 2 * ttlMs, () => {
        this.expiries.delete(session.id);
        this.destroy(session.id);
      }),
    );
  }

  /** A session whose node or any of whose checks is gone or critical is invalidated. */
  private invalidateOnChecks(): void {
    for (const s of [...this.sessions.values()]) {
      if (!this.sessions.has(s.id)) continue;
      const healthy =
        this.state.nodes.has(s.node) &&
        [...s.nodeChecks, ...s.serviceChecks.map((c) => c.ID)].every((id) => {
          const check = this.state.findCheck(s.node, id);
          return check !== undefined && check.status !== 'critical';
        });
      if (!healthy) this.destroy(s.id);
    }
  }
}

/** Go's time.Duration String() for whole seconds and above ("10s", "24h0m0s"). */
function goDuration(ms: number): string {
  const total = Math.round(ms / 1000);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}
