// Putting clinimesh's own knowledge into Consul: static manifest instances of services that opt in
// (`discovery.register: true`) become agent services, and the control plane registers itself with an
// HTTP check on its /healthz. Registration bodies are built by pure functions; only the registrar talks.
import type { Problem, Result } from '../errors.ts';
import { fail, ok } from '../errors.ts';
import type { Instance, Service } from '../manifest/types.ts';
import { manifestId, serviceKey } from '../manifest/types.ts';
import { goDuration } from '../consul/blocking.ts';
import type { ConsulHttp } from '../consul/http.ts';
import { ConsulHttpError } from '../consul/http.ts';

/** The JSON body of `PUT /v1/agent/service/register`, in Consul's field names. */
export interface AgentServiceRegistration {
  readonly ID: string;
  readonly Name: string;
  readonly Tags: readonly string[];
  readonly Address: string;
  readonly Port: number;
  readonly Meta: Readonly<Record<string, string>>;
  readonly Weights: { readonly Passing: number; readonly Warning: number };
  readonly EnableTagOverride: false;
  readonly Check?: AgentCheckDefinition;
}

export interface AgentCheckDefinition {
  readonly CheckID?: string;
  readonly Name: string;
  readonly HTTP?: string;
  readonly Method?: string;
  readonly TCP?: string;
  readonly TTL?: string;
  readonly Interval?: string;
  readonly Timeout?: string;
  readonly DeregisterCriticalServiceAfter?: string;
  readonly Status?: 'passing' | 'warning' | 'critical';
}

export const REGISTERED_TAG = 'clinimesh';
/** Service meta naming the namespace of the Service an instance was registered for. */
export const NAMESPACE_META = 'namespace';
// Consul's limits on service meta (agent/structs: ValidateServiceMetadata).
const META_KEY_RE = /^[A-Za-z0-9_-]{1,128}$/;
const META_VALUE_MAX = 512;
const META_MAX_PAIRS = 64;

/** `his.clinical-his-1`: unique on an agent even when two namespaces share a service name. */
export function registrationId(service: { name: string; namespace: string }, instance: string): string {
  return `${serviceKey(service)}-${instance}`;
}

export interface InstanceCheckOptions {
  /** Add a TCP check on each instance's mesh address:port at this interval. */
  readonly tcpIntervalMs?: number;
  readonly tcpTimeoutMs?: number;
}

function checkMeta(meta: Record<string, string>, resource: string, field: string): Problem[] {
  const problems: Problem[] = [];
  const entries = Object.entries(meta);
  if (entries.length > META_MAX_PAIRS)
    problems.push({
      code: 'CONSUL',
      resource,
      field,
      message: `Consul allows at most ${META_MAX_PAIRS} meta pairs`,
    });
  for (const [key, value] of entries) {
    if (!META_KEY_RE.test(key) || key.startsWith('consul-')) {
      problems.push({
        code: 'CONSUL',
        resource,
        field: `${field}.${key}`,
        message: 'Consul meta keys are letters, digits, - and _, not starting with consul-',
      });
    }
    if (value.length > META_VALUE_MAX)
      problems.push({
        code: 'CONSUL',
        resource,
        field: `${field}.${key}`,
        message: `Consul meta values are at most ${META_VALUE_MAX} characters`,
      });
  }
  return problems;
}

function instanceRegistration(
  service: Service,
  instance: Instance,
  checks: InstanceCheckOptions,
): AgentServiceRegistration {
  const port = service.ports[0]!;
  const meta: Record<string, string> = {
    ...instance.meta,
    'clinimesh-instance': instance.name,
    // Discovery of another namespace leaves this instance out, whatever name it is registered under.
    [NAMESPACE_META]: service.namespace,
    'clinimesh-port-name': port.name,
    ...(instance.locality.region ? { region: instance.locality.region } : {}),
    ...(instance.locality.zone ? { zone: instance.locality.zone } : {}),
  };
  const id = registrationId(service, instance.name);
  const tcp = checks.tcpIntervalMs
    ? {
        Check: {
          Name: `clinimesh TCP ${instance.address}:${port.port}`,
          TCP: `${instance.address.includes(':') ? `[${instance.address}]` : instance.address}:${port.port}`,
          Interval: goDuration(checks.tcpIntervalMs),
          Timeout: goDuration(checks.tcpTimeoutMs ?? 2_000),
        },
      }
    : {};
  return {
    ID: id,
    Name: service.discovery.consulName ?? service.name,
    Tags: [REGISTERED_TAG],
    Address: instance.address,
    Port: port.port,
    Meta: meta,
    Weights: { Passing: Math.max(1, instance.weight), Warning: 1 },
    EnableTagOverride: false,
    ...tcp,
  };
}

/** One registration per static instance, or the problems (bad meta, no port) that prevent it. */
export function registrationsFor(
  service: Service,
  checks: InstanceCheckOptions = {},
): Result<AgentServiceRegistration[]> {
  const resource = manifestId(service);
  if (service.ports.length === 0)
    return fail([
      {
        code: 'CONSUL',
        resource,
        field: 'spec.ports',
        message: 'a service registered in Consul needs a port',
      },
    ]);
  const problems: Problem[] = [];
  const regs = service.instances.map((instance, i) => {
    const reg = instanceRegistration(service, instance, checks);
    problems.push(...checkMeta({ ...reg.Meta }, resource, `spec.instances[${i}].meta`));
    return reg;
  });
  return problems.length > 0 ? fail(problems) : ok(regs);
}

export interface SelfRegistration {
  readonly id: string;
  readonly name?: string;
  readonly address: string;
  readonly port: number;
  /** Full URL Consul polls, e.g. `http://10.0.0.5:9901/healthz`. */
  readonly healthzUrl: string;
  readonly intervalMs?: number;
  readonly timeoutMs?: number;
  /** Let Consul drop the registration if the control plane stays critical this long. */
  readonly deregisterCriticalAfterMs?: number;
  readonly tags?: readonly string[];
  readonly meta?: Readonly<Record<string, string>>;
}

export function selfRegistration(self: SelfRegistration): AgentServiceRegistration {
  return {
    ID: self.id,
    Name: self.name ?? 'clinimesh',
    Tags: [REGISTERED_TAG, 'control-plane', ...(self.tags ?? [])],
    Address: self.address,
    Port: self.port,
    Meta: { ...(self.meta ?? {}) },
    Weights: { Passing: 1, Warning: 1 },
    EnableTagOverride: false,
    Check: {
      CheckID: `service:${self.id}`,
      Name: 'clinimesh /healthz',
      HTTP: self.healthzUrl,
      Method: 'GET',
      Interval: goDuration(self.intervalMs ?? 10_000),
      Timeout: goDuration(self.timeoutMs ?? 2_000),
      ...(self.deregisterCriticalAfterMs
        ? { DeregisterCriticalServiceAfter: goDuration(self.deregisterCriticalAfterMs) }
        : {}),
    },
  };
}

function consulProblem(err: unknown, resource: string, field: string): Problem {
  return { code: 'CONSUL', resource, field, message: err instanceof Error ? err.message : String(err) };
}

export class ConsulRegistrar {
  constructor(
    private readonly client: ConsulHttp,
    private readonly checks: InstanceCheckOptions = {},
  ) {}

  /** Registers (or updates) every static instance of `service`; returns the Consul service IDs. */
  async register(service: Service): Promise<Result<string[]>> {
    const regs = registrationsFor(service, this.checks);
    if (!regs.ok) return regs;
    const problems: Problem[] = [];
    for (const [i, reg] of regs.value.entries()) {
      const error = await this.put(reg);
      if (error) problems.push(consulProblem(error, manifestId(service), `spec.instances[${i}]`));
    }
    return problems.length > 0 ? fail(problems) : ok(regs.value.map((r) => r.ID));
  }

  /** Removes every instance of `service` this registrar would have registered; absent ones are fine. */
  async deregister(service: Service): Promise<Result<string[]>> {
    const ids = service.instances.map((i) => registrationId(service, i.name));
    const problems: Problem[] = [];
    for (const id of ids) {
      const error = await this.remove(id);
      if (error) problems.push(consulProblem(error, manifestId(service), id));
    }
    return problems.length > 0 ? fail(problems) : ok(ids);
  }

  /**
   * Brings Consul from `previous` to `next` (either may be undefined: created / deleted): registers
   * `next` if it opts in, and deregisters instances that no longer should be there.
   */
  async sync(previous: Service | undefined, next: Service | undefined): Promise<Result<string[]>> {
    const wanted = next?.discovery.register ? next : undefined;
    const keep = new Set(wanted ? wanted.instances.map((i) => registrationId(wanted, i.name)) : []);
    const stale = previous?.discovery.register
      ? previous.instances.filter((i) => !keep.has(registrationId(previous, i.name)))
      : [];
    const problems: Problem[] = [];
    const ids: string[] = [];
    if (previous && stale.length > 0) {
      const removed = await this.deregister({ ...previous, instances: stale });
      if (!removed.ok) problems.push(...removed.errors);
    }
    if (wanted) {
      const added = await this.register(wanted);
      if (added.ok) ids.push(...added.value);
      else problems.push(...added.errors);
    }
    return problems.length > 0 ? fail(problems) : ok(ids);
  }

  async registerSelf(self: SelfRegistration): Promise<Result<string>> {
    const error = await this.put(selfRegistration(self));
    return error ? fail([consulProblem(error, 'clinimesh', 'self-registration')]) : ok(self.id);
  }

  async deregisterSelf(id: string): Promise<Result<string>> {
    const error = await this.remove(id);
    return error ? fail([consulProblem(error, 'clinimesh', 'self-registration')]) : ok(id);
  }

  private async put(reg: AgentServiceRegistration): Promise<unknown> {
    try {
      await this.client.put('/agent/service/register', reg, { 'replace-existing-checks': 'true' });
      return undefined;
    } catch (err) {
      return err;
    }
  }

  private async remove(id: string): Promise<unknown> {
    try {
      await this.client.put(`/agent/service/deregister/${encodeURIComponent(id)}`);
      return undefined;
    } catch (err) {
      // Newer agents answer 404 for an unknown ID; either way it is gone, which is what we wanted.
      if (err instanceof ConsulHttpError && err.status === 404) return undefined;
      return err;
    }
  }
}
