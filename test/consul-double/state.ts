// The Consul double's catalog: nodes, services and checks under one raft-like index that grows on every
// write. Each write records which service names it touched, so a blocking query on one service wakes
// only when that service's modify index passes the one it holds (Consul's fine-grained indexes).

export type CheckStatus = 'passing' | 'warning' | 'critical';
export const CHECK_STATUSES: readonly CheckStatus[] = ['passing', 'warning', 'critical'];

export interface NodeRecord {
  readonly id: string;
  readonly name: string;
  readonly address: string;
  readonly datacenter: string;
  readonly meta: Record<string, string>;
  createIndex: number;
  modifyIndex: number;
}

export interface ServiceRecord {
  readonly node: string;
  readonly id: string;
  readonly name: string;
  readonly namespace: string;
  tags: string[];
  address: string;
  port: number;
  meta: Record<string, string>;
  weights: { Passing: number; Warning: number };
  enableTagOverride: boolean;
  createIndex: number;
  modifyIndex: number;
}

/** What a check runs: the double runs HTTP and TCP checks and expires TTLs, like an agent. */
export interface CheckDefinition {
  readonly HTTP?: string;
  readonly Method?: string;
  readonly TCP?: string;
  readonly TTL?: string;
  readonly Interval?: string;
  readonly Timeout?: string;
  readonly DeregisterCriticalServiceAfter?: string;
}

export interface CheckRecord {
  readonly node: string;
  readonly checkId: string;
  name: string;
  status: CheckStatus;
  notes: string;
  output: string;
  readonly serviceId: string;
  readonly serviceName: string;
  readonly namespace: string;
  readonly type: string;
  readonly definition: CheckDefinition;
  createIndex: number;
  modifyIndex: number;
}

export interface ServiceInput {
  readonly id: string;
  readonly name: string;
  readonly namespace: string;
  readonly tags: string[];
  readonly address: string;
  readonly port: number;
  readonly meta: Record<string, string>;
  readonly weights: { Passing: number; Warning: number };
  readonly enableTagOverride: boolean;
}

export interface CheckInput {
  readonly checkId: string;
  readonly name: string;
  readonly status?: CheckStatus;
  readonly notes?: string;
  readonly definition: CheckDefinition;
}

export const DEFAULT_NAMESPACE = 'default';
const key = (...parts: string[]): string => parts.join('\u0000');

export class CatalogState {
  /** The raft index: the index of the last write. */
  index = 12;
  readonly nodes = new Map<string, NodeRecord>();
  readonly services = new Map<string, ServiceRecord>();
  readonly checks = new Map<string, CheckRecord>();
  /** Per (namespace, service name): the index of the last write touching it, including deletes. */
  private readonly serviceIndexes = new Map<string, number>();
  private servicesTableIndex = 12;
  private readonly listeners = new Set<() => void>();

  constructor(readonly datacenter: string) {}

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Applies one write at a fresh index; `fn` returns the [namespace, name] of services it touched. */
  write(fn: (index: number) => ReadonlyArray<readonly [string, string]>, catalogChanged = true): number {
    const index = ++this.index;
    for (const [ns, name] of fn(index)) this.serviceIndexes.set(key(ns, name), index);
    if (catalogChanged) this.servicesTableIndex = index;
    for (const listener of [...this.listeners]) listener();
    return index;
  }

  /** Test control: lower the raft index, as a snapshot restore does. */
  rewind(to: number): void {
    this.index = to;
    this.servicesTableIndex = Math.min(this.servicesTableIndex, to);
    for (const [k, v] of this.serviceIndexes) this.serviceIndexes.set(k, Math.min(v, to));
    for (const listener of [...this.listeners]) listener();
  }

  serviceIndex(ns: string, name: string): number {
    return this.serviceIndexes.get(key(ns, name)) ?? this.servicesTableIndex;
  }

  catalogIndex(): number {
    return this.servicesTableIndex;
  }

  addNode(node: Omit<NodeRecord, 'createIndex' | 'modifyIndex'>): void {
    this.write((index) => {
      const existing = this.nodes.get(node.name);
      this.nodes.set(node.name, { ...node, createIndex: existing?.createIndex ?? index, modifyIndex: index });
      this.setCheck(
        node.name,
        { checkId: 'serfHealth', name: 'Serf Health Status', status: 'passing', definition: {} },
        undefined,
        index,
        'Agent alive and reachable',
      );
      return this.servicesOnNode(node.name).map((s) => [s.namespace, s.name] as const);
    });
  }

  servicesOnNode(node: string): ServiceRecord[] {
    return [...this.services.values()].filter((s) => s.node === node);
  }

  findService(node: string, id: string): ServiceRecord | undefined {
    return this.services.get(key(node, id));
  }

  findCheck(node: string, checkId: string): CheckRecord | undefined {
    return this.checks.get(key(node, checkId));
  }

  /** Registers or replaces a service with its checks (agent semantics: a check keeps its status). */
  registerService(
    node: string,
    input: ServiceInput,
    checks: readonly CheckInput[],
    replaceExistingChecks: boolean,
  ): CheckRecord[] {
    let written: CheckRecord[] = [];
    this.write((index) => {
      const old = this.services.get(key(node, input.id));
      const touched: Array<readonly [string, string]> = [[input.namespace, input.name]];
      if (old && (old.name !== input.name || old.namespace !== input.namespace))
        touched.push([old.namespace, old.name]);
      this.services.set(key(node, input.id), {
        ...input,
        tags: [...input.tags],
        node,
        createIndex: old?.createIndex ?? index,
        modifyIndex: index,
      });
      const service = this.services.get(key(node, input.id))!;
      written = checks.map((c) => this.setCheck(node, c, service, index));
      if (replaceExistingChecks) {
        const keep = new Set(checks.map((c) => c.checkId));
        for (const [k, c] of this.checks)
          if (c.node === node && c.serviceId === input.id && !keep.has(c.checkId)) this.checks.delete(k);
      }
      return touched;
    });
    return written;
  }

  private setCheck(
    node: string,
    input: CheckInput,
    service: ServiceRecord | undefined,
    index: number,
    output = '',
  ): CheckRecord {
    const old = this.checks.get(key(node, input.checkId));
    const type = input.definition.HTTP
      ? 'http'
      : input.definition.TCP
        ? 'tcp'
        : input.definition.TTL
          ? 'ttl'
          : '';
    const record: CheckRecord = {
      node,
      checkId: input.checkId,
      name: input.name,
      status: input.status ?? old?.status ?? 'critical',
      notes: input.notes ?? '',
      output: old?.output ?? output,
      serviceId: service?.id ?? '',
      serviceName: service?.name ?? '',
      namespace: service?.namespace ?? DEFAULT_NAMESPACE,
      type,
      definition: input.definition,
      createIndex: old?.createIndex ?? index,
      modifyIndex: index,
    };
    this.checks.set(key(node, input.checkId), record);
    return record;
  }

  deregisterService(node: string, id: string): ServiceRecord | undefined {
    const service = this.services.get(key(node, id));
    if (!service) return undefined;
    this.write(() => {
      this.services.delete(key(node, id));
      for (const [k, c] of this.checks) if (c.node === node && c.serviceId === id) this.checks.delete(k);
      return [[service.namespace, service.name]];
    });
    return service;
  }

  /** Sets a check's status; a write (new index) only when something changed, as an agent syncs. */
  updateCheck(
    node: string,
    checkId: string,
    status: CheckStatus,
    output: string,
  ): 'unknown' | 'unchanged' | 'updated' {
    const check = this.checks.get(key(node, checkId));
    if (!check) return 'unknown';
    if (check.status === status && check.output === output) return 'unchanged';
    this.write((index) => {
      check.status = status;
      check.output = output;
      check.modifyIndex = index;
      if (check.serviceId) return [[check.namespace, check.serviceName]];
      return this.servicesOnNode(node).map((s) => [s.namespace, s.name] as const);
    }, false);
    return 'updated';
  }

  addServiceCheck(node: string, serviceId: string, input: CheckInput): CheckRecord | undefined {
    const service = this.services.get(key(node, serviceId));
    if (!service) return undefined;
    let record: CheckRecord | undefined;
    this.write((index) => {
      record = this.setCheck(node, input, service, index);
      return [[service.namespace, service.name]];
    }, false);
    return record;
  }

  removeCheck(node: string, checkId: string): boolean {
    const check = this.checks.get(key(node, checkId));
    if (!check) return false;
    this.write(() => {
      this.checks.delete(key(node, checkId));
      if (check.serviceId) return [[check.namespace, check.serviceName]];
      return this.servicesOnNode(node).map((s) => [s.namespace, s.name] as const);
    }, false);
    return true;
  }

  /** Checks that apply to a service instance: its own and its node's. */
  checksFor(service: ServiceRecord): CheckRecord[] {
    return [...this.checks.values()]
      .filter((c) => c.node === service.node && (c.serviceId === '' || c.serviceId === service.id))
      .sort((a, b) =>
        a.serviceId === b.serviceId ? cmp(a.checkId, b.checkId) : a.serviceId === '' ? 1 : -1,
      );
  }

  /** Instances of `name` in `ns`, ordered by node then service ID as Consul orders them. */
  instances(ns: string, name: string): ServiceRecord[] {
    return [...this.services.values()]
      .filter((s) => s.name === name && s.namespace === ns)
      .sort((a, b) => cmp(a.node, b.node) || cmp(a.id, b.id));
  }
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
