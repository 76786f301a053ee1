// From Consul's `/v1/health/service/<name>` answer to our Endpoint model. Pure: the JSON arrives as
// `unknown`, is checked into precise types, then mapped (address, port, health, locality, weight).
import type { Locality } from '../manifest/types.ts';
import type { Endpoint, Health } from './endpoints.ts';
import { NAMESPACE_META, REGISTERED_TAG } from './consul-register.ts';

export type CheckStatus = 'passing' | 'warning' | 'critical' | 'maintenance' | string;

export interface HealthCheck {
  readonly checkId: string;
  readonly status: CheckStatus;
  readonly serviceId: string;
}

export interface HealthEntry {
  readonly node: {
    readonly name: string;
    readonly address: string;
    readonly datacenter: string;
    readonly meta: Readonly<Record<string, string>>;
  };
  readonly service: {
    readonly id: string;
    readonly name: string;
    readonly address: string;
    readonly port: number;
    readonly tags: readonly string[];
    readonly meta: Readonly<Record<string, string>>;
    readonly weights: { readonly passing: number; readonly warning: number };
  };
  readonly checks: readonly HealthCheck[];
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function str(obj: Json, key: string): string {
  const v = obj[key];
  return typeof v === 'string' ? v : '';
}

function num(obj: Json, key: string): number | undefined {
  const v = obj[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObject(value)) return out;
  for (const [k, v] of Object.entries(value)) if (typeof v === 'string') out[k] = v;
  return out;
}

function stringList(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function parseEntry(raw: unknown): HealthEntry | undefined {
  if (!isObject(raw) || !isObject(raw.Node) || !isObject(raw.Service)) return undefined;
  const node = raw.Node;
  const service = raw.Service;
  const port = num(service, 'Port');
  if (str(service, 'ID') === '' || port === undefined) return undefined;
  const weights = isObject(service.Weights) ? service.Weights : {};
  const checks = Array.isArray(raw.Checks) ? raw.Checks.filter(isObject) : [];
  return {
    node: {
      name: str(node, 'Node'),
      address: str(node, 'Address'),
      datacenter: str(node, 'Datacenter'),
      meta: stringMap(node.Meta),
    },
    service: {
      id: str(service, 'ID'),
      name: str(service, 'Service'),
      address: str(service, 'Address'),
      port,
      tags: stringList(service.Tags),
      meta: stringMap(service.Meta),
      weights: { passing: num(weights, 'Passing') ?? 1, warning: num(weights, 'Warning') ?? 1 },
    },
    checks: checks.map((c) => ({
      checkId: str(c, 'CheckID'),
      status: str(c, 'Status'),
      serviceId: str(c, 'ServiceID'),
    })),
  };
}

export interface ParsedHealth {
  readonly entries: readonly HealthEntry[];
  /** Entries without a service ID or port, left out. */
  readonly skipped: number;
}

/** Checks the body is a list of health entries; throws when it is not a list at all. */
export function parseHealthEntries(body: unknown): ParsedHealth {
  // Consul answers `null` for an empty result on some older versions.
  if (body === null || body === undefined || body === '') return { entries: [], skipped: 0 };
  if (!Array.isArray(body)) throw new Error('health answer is not a JSON array');
  const entries: HealthEntry[] = [];
  for (const raw of body) {
    const entry = parseEntry(raw);
    if (entry) entries.push(entry);
  }
  return { entries, skipped: body.length - entries.length };
}

/**
 * An instance clinimesh registered for a Service of another namespace (its tag, that namespace in
 * meta): never an endpoint of `namespace`'s service, even under the Consul name that one watches.
 * Instances registered by anyone else are not ours to judge.
 */
export function registeredForAnotherNamespace(entry: HealthEntry, namespace: string): boolean {
  const registeredFor = entry.service.meta[NAMESPACE_META];
  return (
    entry.service.tags.includes(REGISTERED_TAG) && registeredFor !== undefined && registeredFor !== namespace
  );
}

/**
 * Worst check wins: critical (and maintenance, which Consul reports as a critical check) make the
 * instance UNHEALTHY, a warning makes it DEGRADED; no checks at all is healthy, as in Consul. Any
 * status we don't know is treated as critical so that it is never routed by mistake.
 */
export function aggregateHealth(checks: readonly HealthCheck[]): Health {
  let health: Health = 'HEALTHY';
  for (const check of checks) {
    if (check.status === 'passing') continue;
    if (check.status === 'warning') health = 'DEGRADED';
    else return 'UNHEALTHY';
  }
  return health;
}

/** Service meta overrides node meta; the node's datacenter stands in for a missing region. */
export function localityOf(entry: HealthEntry): Locality {
  const region = entry.service.meta.region || entry.node.meta.region || entry.node.datacenter || undefined;
  const zone = entry.service.meta.zone || entry.node.meta.zone || undefined;
  return { ...(region ? { region } : {}), ...(zone ? { zone } : {}) };
}

function weightOf(entry: HealthEntry, health: Health): number {
  const { passing, warning } = entry.service.weights;
  const raw = health === 'HEALTHY' ? passing : health === 'DEGRADED' ? warning : 1;
  return Math.max(1, Math.floor(raw));
}

/** One Consul service instance as an Endpoint whose single port is named `portName`. */
export function endpointFromEntry(entry: HealthEntry, portName: string): Endpoint {
  const health = aggregateHealth(entry.checks);
  return {
    instance: entry.service.id,
    address: entry.service.address || entry.node.address,
    ports: { [portName]: entry.service.port },
    health,
    locality: localityOf(entry),
    weight: weightOf(entry, health),
    tags: [...entry.service.tags],
    meta: sortedRecord(entry.service.meta),
  };
}

function sortedRecord(record: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Endpoints in a stable order (by instance), so equal sets compare and serialize equal. */
export function sortEndpoints(endpoints: readonly Endpoint[]): Endpoint[] {
  return [...endpoints].sort((a, b) => (a.instance < b.instance ? -1 : a.instance > b.instance ? 1 : 0));
}

/** A canonical string for change detection: same endpoints (any order, any meta key order) → same key. */
export function canonicalEndpoints(endpoints: readonly Endpoint[]): string {
  return JSON.stringify(
    sortEndpoints(endpoints).map((e) => [
      e.instance,
      e.address,
      Object.entries(e.ports).sort(),
      e.health,
      [e.locality.region ?? '', e.locality.zone ?? '', e.locality.subZone ?? ''],
      e.weight,
      e.tags,
      Object.entries(sortedRecord(e.meta)),
    ]),
  );
}

/**
 * All entries as endpoints. Service IDs are unique per agent, not per cluster: when two nodes use the
 * same ID, those instances become `<node>/<id>` so that instance names stay unique within the service.
 */
export function endpointsFromEntries(entries: readonly HealthEntry[], portName: string): Endpoint[] {
  const seen = new Map<string, number>();
  for (const e of entries) seen.set(e.service.id, (seen.get(e.service.id) ?? 0) + 1);
  return sortEndpoints(
    entries.map((entry) => {
      const endpoint = endpointFromEntry(entry, portName);
      return (seen.get(entry.service.id) ?? 0) > 1
        ? { ...endpoint, instance: `${entry.node.name}/${entry.service.id}` }
        : endpoint;
    }),
  );
}
