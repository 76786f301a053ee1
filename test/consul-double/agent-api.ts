// Parsing `PUT /v1/agent/service/register` bodies the way the agent does: field names are matched
// case-insensitively with or without underscores (Go's JSON decoding plus Consul's snake_case support),
// defaults filled in (ID = Name, Weights 1/1, check IDs `service:<id>[:n]`), bad input refused with 400.
import { parseGoDuration } from './duration.ts';
import type { CheckDefinition, CheckInput, CheckStatus, ServiceInput } from './state.ts';
import { CHECK_STATUSES, DEFAULT_NAMESPACE } from './state.ts';

type Json = Record<string, unknown>;

export class BadRequest extends Error {}

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** `field(obj, 'EnableTagOverride')` finds `EnableTagOverride`, `enabletagoverride`, `enable_tag_override`. */
function field(obj: Json, name: string): unknown {
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(obj)) if (k.replace(/_/g, '').toLowerCase() === want) return v;
  return undefined;
}

function optString(obj: Json, name: string): string | undefined {
  const v = field(obj, name);
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new BadRequest(`Request decode failed: ${name} must be a string`);
  return v;
}

function stringMap(obj: Json, name: string): Record<string, string> {
  const v = field(obj, name);
  if (v === undefined || v === null) return {};
  if (!isObject(v) || Object.values(v).some((x) => typeof x !== 'string'))
    throw new BadRequest(`Request decode failed: ${name} must be a map of strings`);
  return { ...(v as Record<string, string>) };
}

const META_KEY = /^[A-Za-z0-9_-]+$/;

function validateMeta(meta: Record<string, string>): void {
  const entries = Object.entries(meta);
  if (entries.length > 64)
    throw new BadRequest('Invalid Service Meta: Node metadata cannot contain more than 64 key/value pairs');
  for (const [k, v] of entries) {
    if (!META_KEY.test(k) || k.length > 128)
      throw new BadRequest(`Invalid Service Meta: Key contains invalid characters: ${JSON.stringify(k)}`);
    if (k.startsWith('consul-'))
      throw new BadRequest(`Invalid Service Meta: Key prefix 'consul-' is reserved for internal use`);
    if (v.length > 512)
      throw new BadRequest(`Invalid Service Meta: Value is too long (limit: 512 characters)`);
  }
}

function weights(obj: Json): { Passing: number; Warning: number } {
  const w = field(obj, 'Weights');
  if (w === undefined || w === null) return { Passing: 1, Warning: 1 };
  if (!isObject(w)) throw new BadRequest('Request decode failed: Weights must be an object');
  const passing = field(w, 'Passing') ?? 1;
  const warning = field(w, 'Warning') ?? 1;
  if (!Number.isInteger(passing) || (passing as number) < 1)
    throw new BadRequest('Invalid Weights: Passing must be greater than 0');
  if (!Number.isInteger(warning) || (warning as number) < 0)
    throw new BadRequest('Invalid Weights: Warning must be greater or equal than 0');
  return { Passing: passing as number, Warning: warning as number };
}

function duration(obj: Json, name: string): string | undefined {
  const v = field(obj, name);
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v !== 'string' || parseGoDuration(v) === undefined)
    throw new BadRequest(`Request decode failed: ${name}: invalid duration ${JSON.stringify(v)}`);
  return v;
}

function parseCheck(
  raw: unknown,
  serviceId: string,
  serviceName: string,
  position: number | undefined,
): CheckInput {
  if (!isObject(raw)) throw new BadRequest('Request decode failed: check must be an object');
  const definition: CheckDefinition = {
    ...(optString(raw, 'HTTP')
      ? { HTTP: optString(raw, 'HTTP')!, Method: optString(raw, 'Method') ?? 'GET' }
      : {}),
    ...(optString(raw, 'TCP') ? { TCP: optString(raw, 'TCP')! } : {}),
    ...(duration(raw, 'TTL') ? { TTL: duration(raw, 'TTL')! } : {}),
    ...(duration(raw, 'Interval') ? { Interval: duration(raw, 'Interval')! } : {}),
    ...(duration(raw, 'Timeout') ? { Timeout: duration(raw, 'Timeout')! } : {}),
    ...(duration(raw, 'DeregisterCriticalServiceAfter')
      ? { DeregisterCriticalServiceAfter: duration(raw, 'DeregisterCriticalServiceAfter')! }
      : {}),
  };
  if (field(raw, 'Args') !== undefined || field(raw, 'Script') !== undefined)
    throw new BadRequest('Scripts are disabled on this agent');
  if ((definition.HTTP || definition.TCP) && !definition.Interval)
    throw new BadRequest('Invalid check: Interval must be > 0 for Script, HTTP, H2PING, or TCP checks');
  if (!definition.HTTP && !definition.TCP && !definition.TTL)
    throw new BadRequest(
      'Invalid check: TTL must be > 0 for TTL checks (the double runs TTL, HTTP and TCP checks only)',
    );
  const status = optString(raw, 'Status');
  if (status !== undefined && status !== '' && !CHECK_STATUSES.includes(status as CheckStatus))
    throw new BadRequest("Status for checks must 'passing', 'warning', 'critical'");
  const suffix = position === undefined ? '' : `:${position}`;
  return {
    checkId: optString(raw, 'CheckID') || optString(raw, 'ID') || `service:${serviceId}${suffix}`,
    name: optString(raw, 'Name') || `Service '${serviceName}' check`,
    ...(status ? { status: status as CheckStatus } : {}),
    notes: optString(raw, 'Notes') ?? '',
    definition,
  };
}

export interface Registration {
  readonly service: ServiceInput;
  readonly checks: CheckInput[];
}

/** The service and checks of a register body; `ns` places it in a namespace (test control only). */
export function parseRegistration(body: unknown, ns: string | undefined): Registration {
  if (!isObject(body)) throw new BadRequest('Request decode failed: body must be a JSON object');
  const name = optString(body, 'Name');
  if (!name) throw new BadRequest('Missing service name');
  const id = optString(body, 'ID') || name;
  const bodyNs = optString(body, 'Namespace');
  // Open-source Consul has no namespaces: its decoder knows no such field.
  if (bodyNs && bodyNs !== DEFAULT_NAMESPACE)
    throw new BadRequest(
      'Request decode failed: json: unknown field "Namespace" - Namespaces are a Consul Enterprise feature',
    );
  const port = field(body, 'Port') ?? 0;
  if (!Number.isInteger(port) || (port as number) < 0 || (port as number) > 65535)
    throw new BadRequest('Request decode failed: Port must be an integer');
  const tags = field(body, 'Tags') ?? [];
  if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string'))
    throw new BadRequest('Request decode failed: Tags must be a list of strings');
  const meta = stringMap(body, 'Meta');
  validateMeta(meta);
  const service: ServiceInput = {
    id,
    name,
    namespace: ns || DEFAULT_NAMESPACE,
    tags: tags as string[],
    address: optString(body, 'Address') ?? '',
    port: port as number,
    meta,
    weights: weights(body),
    enableTagOverride: field(body, 'EnableTagOverride') === true,
  };
  const one = field(body, 'Check');
  const many = field(body, 'Checks');
  const checks: CheckInput[] = [];
  if (one !== undefined && one !== null) checks.push(parseCheck(one, id, name, undefined));
  if (Array.isArray(many)) many.forEach((c, i) => checks.push(parseCheck(c, id, name, i + 1)));
  return { service, checks };
}

/** `PUT /v1/agent/check/update/:id` body: `{Status, Output}`. */
export function parseCheckUpdate(body: unknown): { status: CheckStatus; output: string } {
  if (!isObject(body)) throw new BadRequest('Request decode failed: body must be a JSON object');
  const status = optString(body, 'Status') ?? '';
  if (!CHECK_STATUSES.includes(status as CheckStatus))
    throw new BadRequest(`Invalid check status: "${status}"`);
  return { status: status as CheckStatus, output: optString(body, 'Output') ?? '' };
}
