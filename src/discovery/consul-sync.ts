// Keeps Consul in step with the manifests: every service discovered through Consul is watched
// (its endpoints flow, batched, into the control plane), and instances of services marked
// `register: true` are registered with the local agent and deregistered when they go.
import type { ConsulRegistrar } from './consul-register.ts';
import type { ConsulServiceStatus, ConsulWatcher } from './consul.ts';
import { formatProblem } from '../errors.ts';
import { serviceKeyOfId, type Service } from '../manifest/types.ts';
import type { DesiredState } from '../store/state.ts';

export class ConsulSync {
  /** What Consul was last told for each Service (a failed sync leaves what it had). */
  private readonly registered = new Map<string, Service>();
  /** Services whose last registration sync failed: looked at again on the next sync, whatever it touched. */
  private readonly retry = new Set<string>();
  /** Syncs run one at a time, in commit order: each reads what the one before recorded. */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly watcher: ConsulWatcher,
    private readonly registrar?: ConsulRegistrar,
    private readonly log: (line: string) => void = (line) => console.error(line),
  ) {}

  /**
   * Watches and registrations as `state` wants them. With `touched` (the ids a commit changed), only
   * the Services among them (and those whose registration failed before) are looked at: the others
   * are as the last sync left them.
   */
  sync(state: DesiredState, touched?: readonly string[]): Promise<void> {
    const run = this.queue.then(() => this.run(state, touched));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async run(state: DesiredState, touched: readonly string[] | undefined): Promise<void> {
    const keys = [
      ...new Set([
        ...(touched
          ? touched.flatMap((id) => serviceKeyOfId(id) ?? [])
          : [...state.services.keys(), ...this.watcher.watched(), ...this.registered.keys()]),
        ...this.retry,
      ]),
    ];
    for (const key of keys) {
      const service = state.services.get(key);
      const port = service?.discovery.mode === 'consul' ? service.ports[0] : undefined;
      if (service && port) this.watcher.watch(key, service.discovery.consulName ?? service.name, port.name);
      else this.watcher.unwatch(key);
    }
    if (this.registrar) await this.syncRegistrations(state, keys);
  }

  status(): ConsulServiceStatus[] {
    return this.watcher.status();
  }

  stop(): void {
    this.watcher.stop();
  }

  private async syncRegistrations(state: DesiredState, keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      const service = state.services.get(key);
      const wanted = service?.discovery.register ? service : undefined;
      const result = await this.registrar!.sync(this.registered.get(key), wanted);
      if (!result.ok) {
        for (const p of result.errors) this.log(`consul registration: ${formatProblem(p)}`);
        // What was registered before may still be there: the retry deregisters what is stale
        // (gone already is fine) and registers what is wanted again (a PUT of the same is a no-op).
        this.retry.add(key);
        continue;
      }
      this.retry.delete(key);
      if (wanted) this.registered.set(key, wanted);
      else this.registered.delete(key);
    }
  }
}
