// Keeps Consul in step with the manifests: every service discovered through Consul is watched
// (its endpoints flow, batched, into the control plane), and instances of services marked
// `register: true` are registered with the local agent and deregistered when they go.
import type { ConsulRegistrar } from './consul-register.ts';
import type { ConsulServiceStatus, ConsulWatcher } from './consul.ts';
import { formatProblem } from '../errors.ts';
import type { Service } from '../manifest/types.ts';
import type { DesiredState } from '../store/state.ts';

export class ConsulSync {
  private registered = new Map<string, Service>();

  constructor(
    private readonly watcher: ConsulWatcher,
    private readonly registrar?: ConsulRegistrar,
    private readonly log: (line: string) => void = (line) => console.error(line),
  ) {}

  async sync(state: DesiredState): Promise<void> {
    const wanted = new Set<string>();
    for (const [key, service] of state.services) {
      if (service.discovery.mode !== 'consul') continue;
      wanted.add(key);
      const port = service.ports[0];
      if (port) this.watcher.watch(key, service.discovery.consulName ?? service.name, port.name);
    }
    for (const key of this.watcher.watched()) if (!wanted.has(key)) this.watcher.unwatch(key);
    if (this.registrar) await this.syncRegistrations(state);
  }

  status(): ConsulServiceStatus[] {
    return this.watcher.status();
  }

  stop(): void {
    this.watcher.stop();
  }

  private async syncRegistrations(state: DesiredState): Promise<void> {
    const next = new Map([...state.services].filter(([, s]) => s.discovery.register));
    for (const key of new Set([...this.registered.keys(), ...next.keys()])) {
      const result = await this.registrar!.sync(this.registered.get(key), next.get(key));
      if (!result.ok) for (const p of result.errors) this.log(`consul registration: ${formatProblem(p)}`);
    }
    this.registered = next;
  }
}
