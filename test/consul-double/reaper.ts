// The agent's reaper: a service whose check has been critical for longer than the check's
// DeregisterCriticalServiceAfter (at least 1 minute, Consul's floor) is deregistered. Time is the
// double's clock, so tests make the minute pass with `advanceClock`; a real agent reaps on its 30 s
// tick after the deadline, the double at the deadline.
import type { DoubleClock } from './clock.ts';
import { parseGoDuration } from './duration.ts';
import type { CatalogState } from './state.ts';

const MIN_TIMEOUT_MS = 60_000;

export class CriticalReaper {
  /** Check ID → cancels the reap planned since it turned critical. */
  private readonly planned = new Map<string, () => void>();
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

  /** Like an agent going down: pending reaps are forgotten, critical time counts again from the restart. */
  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const cancel of this.planned.values()) cancel();
    this.planned.clear();
  }

  private reconcile(): void {
    const live = new Set<string>();
    for (const check of this.state.checks.values()) {
      const after = check.definition.DeregisterCriticalServiceAfter;
      if (check.node !== this.node || !check.serviceId || !after || check.status !== 'critical') continue;
      live.add(check.checkId);
      if (this.planned.has(check.checkId)) continue;
      const timeout = Math.max(MIN_TIMEOUT_MS, parseGoDuration(after) ?? 0);
      const serviceId = check.serviceId;
      const checkId = check.checkId;
      this.planned.set(
        checkId,
        this.clock.at(this.clock.now() + timeout, () => {
          this.planned.delete(checkId);
          if (this.state.findCheck(this.node, checkId)?.status === 'critical')
            this.state.deregisterService(this.node, serviceId);
        }),
      );
    }
    for (const [id, cancel] of this.planned) {
      if (!live.has(id)) {
        cancel();
        this.planned.delete(id);
      }
    }
  }
}
