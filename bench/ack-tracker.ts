// Observes, on the server's own clock, when each sidecar ACKs the EDS version a change produced.
// The server offers no per-ACK callback, so this wraps the StatusRegistry instance's `acked` (the
// one call every ACK goes through) rather than polling status pages, which would both cost the
// measured process CPU and blur the timings by the polling interval.
//
// SotW details that shape this: a sidecar may get version B before it ACKs version A; the server
// then ignores the stale ACK of A, so every ACK it records is for the version it sent last. One
// push can also answer several changes (two services one sidecar calls, flushed in one batch). So
// an ACK of a version settles every expectation of that sidecar up to the last one with it.
import { ENDPOINT } from '../src/xds/resources/type-urls.ts';
import type { StatusRegistry } from '../src/xds/status.ts';

interface Expectation {
  readonly change: Change;
  readonly version: string;
}

export interface Change {
  readonly id: number;
  /** performance.now() when the change happened (handed to the control plane, or to the batcher). */
  readonly startedAt: number;
  /** Sidecars that must ACK it; known once the change reached the cache (after batching). */
  nodes: number;
  remaining: number;
  /** When the last affected sidecar ACKed; undefined while any is missing. */
  doneAt?: number;
  /** Per sidecar: ms from the change to that sidecar's ACK. */
  readonly ackMs: number[];
}

export class AckTracker {
  private readonly pending = new Map<string, Expectation[]>();
  /** Checks run after every settling ACK; each returns true (and is dropped) once it is satisfied. */
  private readonly waiters = new Set<() => boolean>();
  /**
   * The EDS version each sidecar ACKed last, kept here so that registering a change looks up only
   * its own sidecars: scanning every stream's status per change cost the measured process ~1 ms a
   * change at 2000 sidecars, on the event loop the ACKs wait for.
   */
  private readonly ackedEds = new Map<string, string>();

  constructor(private readonly statuses: StatusRegistry) {
    const acked = statuses.acked.bind(statuses);
    statuses.acked = (s, typeUrl, version, latencyMs) => {
      acked(s, typeUrl, version, latencyMs);
      if (typeUrl !== ENDPOINT) return;
      this.ackedEds.set(s.nodeId, version);
      this.onAck(s.nodeId, version);
    };
  }

  /** A change that happened but whose effect on the cache is not known yet. */
  open(id: number, startedAt: number): Change {
    return { id, startedAt, nodes: 0, remaining: 0, ackMs: [] };
  }

  /**
   * Registers what a change must reach: node id → the EDS version it now has in the cache. A change
   * that moved no sidecar's version (coalesced away, or consumed by nobody) is done at once.
   */
  expect(change: Change, versions: ReadonlyMap<string, string>): void {
    change.nodes = change.remaining = versions.size;
    if (versions.size === 0) change.doneAt = performance.now();
    // An apply returns after its pushes: a sidecar may have ACKed before the change was registered.
    for (const [node, version] of versions) {
      if (this.ackedEds.get(node) === version) {
        change.ackMs.push(performance.now() - change.startedAt);
        if (--change.remaining === 0) change.doneAt = performance.now();
        continue;
      }
      const list = this.pending.get(node) ?? [];
      list.push({ change, version });
      this.pending.set(node, list);
    }
    this.notify();
  }

  /** Resolves when every given change is done, or rejects after `timeoutMs` saying how many are not. */
  async settle(changes: readonly Change[], timeoutMs: number): Promise<void> {
    const done = () => changes.every((c) => c.doneAt !== undefined);
    if (done()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        const open = changes.filter((c) => c.doneAt === undefined);
        const missing = open.reduce((n, c) => n + c.remaining, 0);
        this.waiters.delete(check);
        reject(
          new Error(
            `${open.length} change(s) not ACKed by ${missing} sidecar(s) within ${timeoutMs} ms; waiting for ${this.describeOpen(3)}`,
          ),
        );
      }, timeoutMs);
      const check = (): boolean => {
        if (!done()) return false;
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve();
        return true;
      };
      this.waiters.add(check);
    });
  }

  /** A few sidecars still owing an ACK, with what the server last sent and heard, for the error. */
  private describeOpen(limit: number): string {
    const lines = [...this.pending].slice(0, limit).map(([node, list]) => {
      const eds = this.statuses
        .all()
        .find((s) => s.nodeId === node)
        ?.types.get(ENDPOINT);
      const owed = list.map((e) => `#${e.change.id}→${e.version}`).join(', ');
      return `${node} owes [${owed}]; server sent ${eds?.sentVersion} (nonce ${eds?.pendingNonce ?? 'none pending'}), ACKed ${eds?.ackedVersion}`;
    });
    return lines.join('; ') || 'no sidecar (the changes never reached the cache)';
  }

  /** Forgets every expectation (between scenarios, or after a timeout). */
  reset(): void {
    this.pending.clear();
    this.waiters.clear();
  }

  private onAck(node: string, version: string): void {
    const list = this.pending.get(node);
    if (!list) return;
    let upTo = list.length - 1;
    while (upTo >= 0 && list[upTo]!.version !== version) upTo--;
    if (upTo < 0) return;
    const now = performance.now();
    for (const e of list.splice(0, upTo + 1)) {
      e.change.ackMs.push(now - e.change.startedAt);
      if (--e.change.remaining === 0) e.change.doneAt = now;
    }
    if (list.length === 0) this.pending.delete(node);
    this.notify();
  }

  private notify(): void {
    for (const check of [...this.waiters]) check();
  }
}
