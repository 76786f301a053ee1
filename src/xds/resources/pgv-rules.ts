// The protoc-gen-validate rules themselves: their shapes (mirroring validate/validate.proto v1.3.3,
// keyed by proto field name so messages can cite `string.min_len`) and one check per rule kind.
// Checks are pure: a rule set and a value in, violation messages out. pgv.ts decides where they apply.
import { isIP, isIPv4, isIPv6 } from 'node:net';
import type { DescEnum } from '@bufbuild/protobuf';

type Num = number | bigint;

/** Only the rules a field sets are present; an absent key means "no such rule". */
export interface NumericRules {
  const?: Num;
  lt?: Num;
  lte?: Num;
  gt?: Num;
  gte?: Num;
  in?: Num[];
  not_in?: Num[];
  ignore_empty?: boolean;
}

export interface StringRules {
  const?: string;
  len?: bigint;
  min_len?: bigint;
  max_len?: bigint;
  len_bytes?: bigint;
  min_bytes?: bigint;
  max_bytes?: bigint;
  pattern?: string;
  prefix?: string;
  suffix?: string;
  contains?: string;
  not_contains?: string;
  in?: string[];
  not_in?: string[];
  email?: boolean;
  hostname?: boolean;
  ip?: boolean;
  ipv4?: boolean;
  ipv6?: boolean;
  uri?: boolean;
  uri_ref?: boolean;
  address?: boolean;
  uuid?: boolean;
  well_known_regex?: number; // validate.KnownRegex
  strict?: boolean; // defaults to true
  ignore_empty?: boolean;
}

export interface BytesRules {
  const?: Uint8Array;
  len?: bigint;
  min_len?: bigint;
  max_len?: bigint;
  prefix?: Uint8Array;
  suffix?: Uint8Array;
  contains?: Uint8Array;
  in?: Uint8Array[];
  not_in?: Uint8Array[];
  ip?: boolean;
  ipv4?: boolean;
  ipv6?: boolean;
  ignore_empty?: boolean;
}

export interface EnumRules {
  const?: number;
  defined_only?: boolean;
  in?: number[];
  not_in?: number[];
}

/** google.protobuf.Duration or Timestamp as a rule bound; proto3 leaves zero parts out. */
export interface TimeBound {
  seconds?: bigint;
  nanos?: number;
}

// lt_now, gt_now and within need a clock; validation is pure like the generators, so they are not
// checked (no Envoy resource we generate uses them).
export interface TimeRules {
  required?: boolean;
  const?: TimeBound;
  lt?: TimeBound;
  lte?: TimeBound;
  gt?: TimeBound;
  gte?: TimeBound;
  in?: TimeBound[];
  not_in?: TimeBound[];
}

export interface FieldRules {
  message?: { skip?: boolean; required?: boolean };
  float?: NumericRules;
  double?: NumericRules;
  int32?: NumericRules;
  int64?: NumericRules;
  uint32?: NumericRules;
  uint64?: NumericRules;
  sint32?: NumericRules;
  sint64?: NumericRules;
  fixed32?: NumericRules;
  fixed64?: NumericRules;
  sfixed32?: NumericRules;
  sfixed64?: NumericRules;
  bool?: { const?: boolean };
  string?: StringRules;
  bytes?: BytesRules;
  enum?: EnumRules;
  repeated?: { min_items?: bigint; max_items?: bigint; unique?: boolean; items?: FieldRules; ignore_empty?: boolean };
  map?: {
    min_pairs?: bigint;
    max_pairs?: bigint;
    no_sparse?: boolean;
    keys?: FieldRules;
    values?: FieldRules;
    ignore_empty?: boolean;
  };
  any?: { required?: boolean; in?: string[]; not_in?: string[] };
  duration?: TimeRules;
  timestamp?: TimeRules;
}

const NUMERIC_KINDS = [
  'float', 'double', 'int32', 'int64', 'uint32', 'uint64',
  'sint32', 'sint64', 'fixed32', 'fixed64', 'sfixed32', 'sfixed64',
] as const;

/** Violations of scalar rules (numbers, bool, string, bytes, enum) by one value. */
export function scalarViolations(rules: FieldRules, value: unknown, enumDesc?: DescEnum): string[] {
  if (rules.string && typeof value === 'string') return stringViolations(rules.string, value);
  if (rules.bytes && value instanceof Uint8Array) return bytesViolations(rules.bytes, value);
  if (rules.enum && typeof value === 'number') return enumViolations(rules.enum, value, enumDesc);
  if (rules.bool?.const !== undefined && value !== rules.bool.const) return [`value must equal ${rules.bool.const} (bool.const)`];
  if (typeof value !== 'number' && typeof value !== 'bigint') return [];
  const kind = NUMERIC_KINDS.find((k) => rules[k] !== undefined);
  const numeric = kind && rules[kind];
  if (!kind || !numeric || (numeric.ignore_empty && isZero(value))) return [];
  const out = [...equalityViolations(kind, numeric, value, String), ...listViolations(kind, numeric, value, String)];
  const range = rangeViolation(kind, numeric, value, String);
  return range ? [...out, range] : out;
}

// --- numbers, durations and timestamps share const / in / not_in and the range rules ---

interface Bounds<T> {
  const?: T;
  lt?: T;
  lte?: T;
  gt?: T;
  gte?: T;
  in?: T[];
  not_in?: T[];
}

const isZero = (v: Num): boolean => (typeof v === 'bigint' ? v === 0n : v === 0);
// Rule values and field values may differ in representation (a uint32 rule is a number, an int64
// field a bigint); relational operators compare them by value.
const same = (a: Num, b: Num): boolean => (typeof a === typeof b ? a === b : !(a < b || a > b));

function equalityViolations<T extends Num>(kind: string, r: Bounds<T>, v: T, show: (x: T) => string): string[] {
  return r.const !== undefined && !same(v, r.const) ? [`value must equal ${show(r.const)} (${kind}.const)`] : [];
}

function listViolations<T extends Num>(kind: string, r: Bounds<T>, v: T, show: (x: T) => string): string[] {
  const list = (xs: T[]): string => `[${xs.map(show).join(', ')}]`;
  if (r.in?.length && !r.in.some((x) => same(x, v))) return [`value must be in list ${list(r.in)} (${kind}.in)`];
  if (r.not_in?.some((x) => same(x, v))) return [`value must not be in list ${list(r.not_in)} (${kind}.not_in)`];
  return [];
}

interface Bound<T> {
  readonly rule: 'lt' | 'lte' | 'gt' | 'gte';
  readonly at: T;
  readonly inclusive: boolean;
}

/**
 * PGV's range semantics: with both bounds, upper > lower means "inside the range", otherwise
 * (e.g. `gt: 10, lt: 5`) it means "outside the range".
 */
export function rangeViolation<T extends Num>(kind: string, r: Bounds<T>, v: T, show: (x: T) => string): string | undefined {
  const upper: Bound<T> | undefined =
    r.lt !== undefined ? { rule: 'lt', at: r.lt, inclusive: false } : r.lte !== undefined ? { rule: 'lte', at: r.lte, inclusive: true } : undefined;
  const lower: Bound<T> | undefined =
    r.gt !== undefined ? { rule: 'gt', at: r.gt, inclusive: false } : r.gte !== undefined ? { rule: 'gte', at: r.gte, inclusive: true } : undefined;
  const belowUpper = !upper || (upper.inclusive ? v <= upper.at : v < upper.at);
  const aboveLower = !lower || (lower.inclusive ? v >= lower.at : v > lower.at);
  if (upper && lower) {
    const inside = upper.at > lower.at;
    if (inside ? aboveLower && belowUpper : aboveLower || belowUpper) return undefined;
    const rules = `(${kind}.${lower.rule}, ${kind}.${upper.rule})`;
    return inside
      ? `value must be inside range ${lower.inclusive ? '[' : '('}${show(lower.at)}, ${show(upper.at)}${upper.inclusive ? ']' : ')'} ${rules}`
      : `value must be outside range ${upper.inclusive ? '(' : '['}${show(upper.at)}, ${show(lower.at)}${lower.inclusive ? ')' : ']'} ${rules}`;
  }
  if (upper && !belowUpper) return `value must be less than ${upper.inclusive ? 'or equal to ' : ''}${show(upper.at)} (${kind}.${upper.rule})`;
  if (lower && !aboveLower) return `value must be greater than ${lower.inclusive ? 'or equal to ' : ''}${show(lower.at)} (${kind}.${lower.rule})`;
  return undefined;
}

const NANOS_PER_SECOND = 1_000_000_000n;
export const timeNanos = (t: TimeBound): bigint => (t.seconds ?? 0n) * NANOS_PER_SECOND + BigInt(t.nanos ?? 0);
const showDuration = (n: bigint): string => `${Number(n) / 1e9}s`;
const showTimestamp = (n: bigint): string => new Date(Number(n / 1_000_000n)).toISOString();

/** Violations by a set Duration or Timestamp, given as nanoseconds since zero / the epoch. */
export function timeViolations(kind: 'duration' | 'timestamp', r: TimeRules, nanos: bigint): string[] {
  const show = kind === 'duration' ? showDuration : showTimestamp;
  const bounds: Bounds<bigint> = {};
  for (const rule of ['const', 'lt', 'lte', 'gt', 'gte'] as const) {
    const bound = r[rule];
    if (bound) bounds[rule] = timeNanos(bound);
  }
  if (r.in) bounds.in = r.in.map(timeNanos);
  if (r.not_in) bounds.not_in = r.not_in.map(timeNanos);
  const out = [...equalityViolations(kind, bounds, nanos, show), ...listViolations(kind, bounds, nanos, show)];
  const range = rangeViolation(kind, bounds, nanos, show);
  return range ? [...out, range] : out;
}

// --- strings ---

const utf8 = new TextEncoder();
const patterns = new Map<string, RegExp | null>();

/** RE2 patterns compile as JS RegExp for everything Envoy uses; one that does not is not checked. */
function compiled(pattern: string): RegExp | null {
  let re = patterns.get(pattern);
  if (re === undefined) {
    try {
      re = new RegExp(pattern, 'u');
    } catch {
      re = null;
    }
    patterns.set(pattern, re);
  }
  return re;
}

// From protoc-gen-validate: RFC 7230 header names and values; the loose form only excludes NUL, CR, LF.
const HEADER_NAME = /^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$/;
const HEADER_VALUE = /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/;
const HEADER_LOOSE = /^[^\u0000\u000A\u000D]*$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export function stringViolations(r: StringRules, v: string): string[] {
  if (r.ignore_empty && v === '') return [];
  const out: string[] = [];
  const bad = (cond: boolean, message: string, rule: string): void => {
    if (cond) out.push(`${message} (string.${rule})`);
  };
  const chars = [...v].length;
  const bytes = utf8.encode(v).length;
  bad(r.const !== undefined && v !== r.const, `value must equal ${JSON.stringify(r.const)}`, 'const');
  bad(r.len !== undefined && chars !== Number(r.len), `value length must be ${r.len} characters`, 'len');
  bad(r.min_len !== undefined && chars < r.min_len, `value length must be at least ${r.min_len} characters`, 'min_len');
  bad(r.max_len !== undefined && chars > r.max_len, `value length must be at most ${r.max_len} characters`, 'max_len');
  bad(r.len_bytes !== undefined && bytes !== Number(r.len_bytes), `value length must be ${r.len_bytes} bytes`, 'len_bytes');
  bad(r.min_bytes !== undefined && bytes < r.min_bytes, `value length must be at least ${r.min_bytes} bytes`, 'min_bytes');
  bad(r.max_bytes !== undefined && bytes > r.max_bytes, `value length must be at most ${r.max_bytes} bytes`, 'max_bytes');
  bad(r.prefix !== undefined && !v.startsWith(r.prefix), `value does not have prefix ${JSON.stringify(r.prefix)}`, 'prefix');
  bad(r.suffix !== undefined && !v.endsWith(r.suffix), `value does not have suffix ${JSON.stringify(r.suffix)}`, 'suffix');
  bad(r.contains !== undefined && !v.includes(r.contains), `value does not contain ${JSON.stringify(r.contains)}`, 'contains');
  bad(r.not_contains !== undefined && v.includes(r.not_contains), `value contains ${JSON.stringify(r.not_contains)}`, 'not_contains');
  bad(!!r.in?.length && !r.in.includes(v), `value must be in list ${JSON.stringify(r.in)}`, 'in');
  bad(!!r.not_in?.includes(v), `value must not be in list ${JSON.stringify(r.not_in)}`, 'not_in');
  const re = r.pattern === undefined ? null : compiled(r.pattern);
  bad(!!re && !re.test(v), `value does not match regex pattern ${JSON.stringify(r.pattern)}`, 'pattern');
  const known = wellKnownViolation(r, v);
  if (known) out.push(known);
  return out;
}

function wellKnownViolation(r: StringRules, v: string): string | undefined {
  if (r.ip && !isIP(v)) return 'value must be a valid IP address (string.ip)';
  if (r.ipv4 && !isIPv4(v)) return 'value must be a valid IPv4 address (string.ipv4)';
  if (r.ipv6 && !isIPv6(v)) return 'value must be a valid IPv6 address (string.ipv6)';
  if (r.hostname && !isHostname(v)) return 'value must be a valid hostname (string.hostname)';
  if (r.address && !isHostname(v) && !isIP(v)) return 'value must be a valid hostname, or ip address (string.address)';
  if (r.email && !isEmail(v)) return 'value must be a valid email address (string.email)';
  if (r.uri && !/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(v)) return 'value must be an absolute URI (string.uri)';
  if (r.uri && !URL.canParse(v)) return 'value must be a valid URI (string.uri)';
  // Go's url.Parse, which PGV uses, accepts almost anything; it rejects control characters and spaces.
  if (r.uri_ref && /[\u0000-\u0020\u007F]/.test(v)) return 'value must be a valid URI reference (string.uri_ref)';
  if (r.uuid && !UUID.test(v)) return 'value must be a valid UUID (string.uuid)';
  if (r.well_known_regex === 1 || r.well_known_regex === 2) {
    const header = r.well_known_regex === 1 ? 'name' : 'value';
    const re = r.strict === false ? HEADER_LOOSE : header === 'name' ? HEADER_NAME : HEADER_VALUE;
    if (!re.test(v)) return `value must be a valid HTTP header ${header} (string.well_known_regex)`;
  }
  return undefined;
}

function isHostname(host: string): boolean {
  if (host.length > 253) return false;
  const labels = host.toLowerCase().replace(/\.$/, '').split('.');
  return labels.every((l) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(l));
}

function isEmail(addr: string): boolean {
  const bare = /<([^>]*)>\s*$/.exec(addr)?.[1] ?? addr.trim();
  const at = bare.lastIndexOf('@');
  return bare.length <= 254 && at > 0 && at <= 64 && isHostname(bare.slice(at + 1));
}

// --- bytes, enums, counts, Any ---

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(b);

export function bytesViolations(r: BytesRules, v: Uint8Array): string[] {
  if (r.ignore_empty && v.length === 0) return [];
  const buf = Buffer.from(v);
  const checks: [boolean, string, string][] = [
    [r.const !== undefined && !sameBytes(v, r.const), 'value must equal the given bytes', 'const'],
    [r.len !== undefined && v.length !== Number(r.len), `value length must be ${r.len} bytes`, 'len'],
    [r.min_len !== undefined && v.length < r.min_len, `value length must be at least ${r.min_len} bytes`, 'min_len'],
    [r.max_len !== undefined && v.length > r.max_len, `value length must be at most ${r.max_len} bytes`, 'max_len'],
    [r.prefix !== undefined && buf.indexOf(r.prefix) !== 0, 'value does not have the given prefix', 'prefix'],
    [r.suffix !== undefined && buf.lastIndexOf(r.suffix) !== v.length - r.suffix.length, 'value does not have the given suffix', 'suffix'],
    [r.contains !== undefined && buf.indexOf(r.contains) < 0, 'value does not contain the given bytes', 'contains'],
    [!!r.in?.length && !r.in.some((x) => sameBytes(v, x)), 'value must be in the given list', 'in'],
    [!!r.not_in?.some((x) => sameBytes(v, x)), 'value must not be in the given list', 'not_in'],
    [!!r.ip && v.length !== 4 && v.length !== 16, 'value must be a valid IP address', 'ip'],
    [!!r.ipv4 && v.length !== 4, 'value must be a valid IPv4 address', 'ipv4'],
    [!!r.ipv6 && v.length !== 16, 'value must be a valid IPv6 address', 'ipv6'],
  ];
  return checks.filter(([broken]) => broken).map(([, message, rule]) => `${message} (bytes.${rule})`);
}

export function enumViolations(r: EnumRules, v: number, desc?: DescEnum): string[] {
  const out = [...equalityViolations('enum', r, v, String), ...listViolations('enum', r, v, String)];
  if (r.defined_only && desc && desc.value[v] === undefined) {
    out.push(`value must be one of the defined ${desc.name} values (enum.defined_only)`);
  }
  return out;
}

/** min/max rules on the number of list items or map pairs. */
export function countViolations(kind: 'repeated' | 'map', min: bigint | undefined, max: bigint | undefined, size: number): string[] {
  const [noun, minRule, maxRule] = kind === 'repeated' ? ['item', 'min_items', 'max_items'] : ['pair', 'min_pairs', 'max_pairs'];
  const out: string[] = [];
  if (min !== undefined && size < min) out.push(`value must contain at least ${min} ${noun}(s) (${kind}.${minRule})`);
  if (max !== undefined && size > max) out.push(`value must contain no more than ${max} ${noun}(s) (${kind}.${maxRule})`);
  return out;
}

export function anyViolations(r: NonNullable<FieldRules['any']>, typeUrl: string): string[] {
  if (r.in?.length && !r.in.includes(typeUrl)) return [`type URL must be in list ${JSON.stringify(r.in)} (any.in)`];
  if (r.not_in?.includes(typeUrl)) return [`type URL must not be in list ${JSON.stringify(r.not_in)} (any.not_in)`];
  return [];
}
