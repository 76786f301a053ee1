// Workload certificate rotation: each tracked workload gets a new certificate at a jittered point of its
// current one's lifetime (50–80 %), so a fleet issued together does not renew together. Timers are
// unref'd (rotation never keeps the process alive) and injectable, as are the clock and the randomness.
import type { WorkloadCert } from './issue.ts';
import { workloadKey, type WorkloadId } from './spiffe.ts';

const EARLIEST = 0.5;
const LATEST = 0.8;
/** setTimeout fires at once for longer delays; longer waits are taken in steps of this. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Milliseconds from `now` until a uniformly jittered point at 50–80 % of the certificate's lifetime; ≥ 0. */
export function rotationDelayMs(
  cert: { notBefore: Date; notAfter: Date },
  random: () => number,
  now: Date,
): number {
  const start = cert.notBefore.getTime();
  const lifetime = cert.notAfter.getTime() - start;
  const r = Math.min(Math.max(random(), 0), 1);
  const at = start + lifetime * (EARLIEST + (LATEST - EARLIEST) * r);
  return Math.max(0, Math.round(at - now.getTime()));
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const nodeTimers: Timers = {
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

export interface RotationSchedulerOptions {
  /** Issues a replacement; usually `(id) => ca.issueWorkload(id)`. */
  readonly issue: (id: WorkloadId) => WorkloadCert;
  /** Delivers it (an SDS push). */
  readonly onRotate: (id: WorkloadId, cert: WorkloadCert) => void;
  /** Issuing or delivering failed; issuing is retried after `retryMs`. */
  readonly onError?: (id: WorkloadId, error: unknown) => void;
  readonly now?: () => Date;
  readonly random?: () => number;
  readonly timers?: Timers;
  readonly retryMs?: number;
  /** Floor between two rotations of one workload, against a hot loop when the CA is about to expire. */
  readonly minDelayMs?: number;
}

interface Entry {
  readonly id: WorkloadId;
  cert: WorkloadCert;
  dueAt: number;
  handle: unknown;
}

export class RotationScheduler {
  readonly #opts: Required<Omit<RotationSchedulerOptions, 'onError'>> &
    Pick<RotationSchedulerOptions, 'onError'>;
  readonly #entries = new Map<string, Entry>();

  constructor(opts: RotationSchedulerOptions) {
    this.#opts = {
      ...opts,
      now: opts.now ?? (() => new Date()),
      random: opts.random ?? Math.random,
      timers: opts.timers ?? nodeTimers,
      retryMs: opts.retryMs ?? 30_000,
      minDelayMs: opts.minDelayMs ?? 1_000,
    };
  }

  /** Starts (or restarts) rotating `id`, whose certificate is now `cert`. */
  track(id: WorkloadId, cert: WorkloadCert): void {
    this.cancel(id);
    const entry: Entry = { id, cert, dueAt: 0, handle: undefined };
    this.#entries.set(workloadKey(id), entry);
    this.#schedule(entry, rotationDelayMs(cert, this.#opts.random, this.#opts.now()));
  }

  cancel(id: WorkloadId): void {
    const entry = this.#entries.get(workloadKey(id));
    if (!entry) return;
    this.#opts.timers.clearTimeout(entry.handle);
    this.#entries.delete(workloadKey(id));
  }

  stopAll(): void {
    for (const entry of this.#entries.values()) this.#opts.timers.clearTimeout(entry.handle);
    this.#entries.clear();
  }

  /** Re-issues every workload within `spreadMs` (after a root rotation begins), spread out uniformly. */
  rotateAll(spreadMs: number): void {
    for (const entry of this.#entries.values()) {
      this.#opts.timers.clearTimeout(entry.handle);
      this.#schedule(entry, Math.round(this.#opts.random() * spreadMs));
    }
  }

  /** When `id` is next due, if tracked. */
  dueAt(id: WorkloadId): Date | undefined {
    const entry = this.#entries.get(workloadKey(id));
    return entry && new Date(entry.dueAt);
  }

  get size(): number {
    return this.#entries.size;
  }

  #schedule(entry: Entry, delayMs: number): void {
    entry.dueAt = this.#opts.now().getTime() + delayMs;
    this.#arm(entry);
  }

  #arm(entry: Entry): void {
    const remaining = Math.max(0, entry.dueAt - this.#opts.now().getTime());
    entry.handle = this.#opts.timers.setTimeout(
      () => (remaining > MAX_TIMER_MS ? this.#arm(entry) : this.#rotate(entry)),
      Math.min(remaining, MAX_TIMER_MS),
    );
  }

  #rotate(entry: Entry): void {
    if (this.#entries.get(workloadKey(entry.id)) !== entry) return; // cancelled meanwhile
    let cert: WorkloadCert;
    try {
      cert = this.#opts.issue(entry.id);
    } catch (error) {
      this.#opts.onError?.(entry.id, error);
      this.#schedule(entry, this.#opts.retryMs);
      return;
    }
    entry.cert = cert;
    const delay = rotationDelayMs(cert, this.#opts.random, this.#opts.now());
    this.#schedule(entry, Math.max(delay, this.#opts.minDelayMs)); // before onRotate, which may cancel
    try {
      this.#opts.onRotate(entry.id, cert);
    } catch (error) {
      this.#opts.onError?.(entry.id, error);
    }
  }
}
