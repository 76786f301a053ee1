// The protoc-gen-validate rules themselves: their shapes (mirroring validate/validate.proto v1.3.3,
// keyed by proto field name so messages can cite `string.min_len`) and one check per rule kind.
// Checks are pure: a rule set and a value in, violation messages out. pgv.ts decides where they apply.
import { isIP, isIPv4, isIPv6 } from 'node:net';
import type { DescEnum } from '@bufbuild/protobuf';

type Num = number | bigint;

/** Only the rules a field sets are present; an absent key means "no such rule". */
interface Bounds<T> {
  const?: T;
  lt?: T;
  lte?: T;
  gt?: T;
  gte?: T;
  in?: T[];
  not_in?: T[];
}

export type NumericRules = Bounds<Num> & { ignore_empty?: boolean };

type Opt<K extends string, V> = { [P in K]?: V };

export type StringRules = Opt<'in' | 'not_in', string[]> &
  Opt<'len' | 'min_len' | 'max_len' | 'len_bytes' | 'min_bytes' | 'max_bytes', bigint> &
  Opt<'const' | 'pattern' | 'prefix' | 'suffix' | 'contains' | 'not_contains', string> &
  Opt<'email' | 'hostname' | 'ip' | 'ipv4' | 'ipv6' | 'uri' | 'uri_ref' | 'address' | 'uuid', boolean> & {
    well_known_regex?: number; // validate.KnownRegex: 1 header name, 2 header value
    strict?: boolean; // defaults to true
    ignore_empty?: boolean;
  };

export type BytesRules = Opt<'len' | 'min_len' | 'max_len', bigint> &
  Opt<'const' | 'prefix' | 'suffix' | 'contains', Uint8Array> &
  Opt<'in' | 'not_in', Uint8Array[]> &
  Opt<'ip' | 'ipv4' | 'ipv6' | 'ignore_empty', boolean>;

export type EnumRules = Pick<Bounds<number>, 'const' | 'in' | 'not_in'> & { defined_only?: boolean };

/** google.protobuf.Duration or Timestamp as a rule bound; proto3 leaves zero parts out. */
export interface TimeBound {
  seconds?: bigint;
  nanos?: number;
}

// lt_now, gt_now and within need a clock; validation is pure like the generators, so they are not
// checked (no Envoy resource we generate uses them).
export type TimeRules = Bounds<TimeBound> & { required?: boolean };

// prettier-ignore
const NUMERIC_KINDS = [
  'float', 'double', 'int32', 'int64', 'uint32', 'uint64',
  'sint32', 'sint64', 'fixed32', 'fixed64', 'sfixed32', 'sfixed64',
] as const;

type NumericKind = (typeof NUMERIC_KINDS)[number];

export interface FieldRules extends Opt<NumericKind, NumericRules> {
  message?: { skip?: boolean; required?: boolean };
  bool?: { const?: boolean };
  string?: StringRules;
  bytes?: BytesRules;
  enum?: EnumRules;
  repeated?: {
    min_items?: bigint;
    max_items?: bigint;
    unique?: boolean;
    items?: FieldRules;
    ignore_empty?: boolean;
  };
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

/** Violations of scalar rules (numbers, bool, string, bytes, enum) by one value. */
export function scalarViolations(rules: FieldRules, value: unknown, enumDesc?: DescEnum): string[] {
  if (rules.string && typeof value === 'string') return stringViolations(rules.string, value);
  if (rules.bytes && value instanceof Uint8Array) return bytesViolations(rules.bytes, value);
  if (rules.enum && typeof value === 'number') return enumViolations(rules.enum, value, enumDesc);
  if (rules.bool?.const !== undefined && value !== rules.bool.const) {
    return [`value must equal ${rules.bool.const} (bool.const)`];
  }
  if (typeof value !== 'number' && typeof value !== 'bigint') return [];
  const kind = NUMERIC_KINDS.find((k) => rules[k] !== undefined);
  const numeric = kind && rules[kind];
  if (!kind || !numeric || (numeric.ignore_empty && isZero(value))) return [];
  return boundViolations(kind, numeric, value);
}

// --- numbers, enums, durations and timestamps share const / in / not_in and the range rules ---

const isZero = (v: Num): boolean => (typeof v === 'bigint' ? v === 0n : v === 0);
// Rule values and field values may differ in representation (a uint32 rule is a number, an int64
// field a bigint); relational operators compare them by value.
const same = (a: Num, b: Num): boolean => (typeof a === typeof b ? a === b : !(a < b || a > b));

function boundViolations<T extends Num>(
  kind: string,
  r: Bounds<T>,
  v: T,
  show: (x: T) => string = String,
): string[] {
  const out: string[] = [];
  const list = (xs: T[]): string => `[${xs.map(show).join(', ')}]`;
  if (r.const !== undefined && !same(v, r.const)) {
    out.push(`value must equal ${show(r.const)} (${kind}.const)`);
  }
  if (r.in?.length && !r.in.some((x) => same(x, v))) {
    out.push(`value must be in list ${list(r.in)} (${kind}.in)`);
  }
  if (r.not_in?.some((x) => same(x, v))) {
    out.push(`value must not be in list ${list(r.not_in)} (${kind}.not_in)`);
  }
  const range = rangeViolation(kind, r, v, show);
  return range ? [...out, range] : out;
}

interface Bound<T> {
  readonly rule: 'lt' | 'lte' | 'gt' | 'gte';
  readonly at: T;
  readonly inclusive: boolean;
}

function boundOf<T>(r: Bounds<T>, exclusive: 'lt' | 'gt', inclusive: 'lte' | 'gte'): Bound<T> | undefined {
  const open = r[exclusive];
  if (open !== undefined) return { rule: exclusive, at: open, inclusive: false };
  const closed = r[inclusive];
  return closed === undefined ? undefined : { rule: inclusive, at: closed, inclusive: true };
}

/**
 * PGV's range semantics: with both bounds, upper > lower means "inside the range", otherwise
 * (e.g. `gt: 10, lt: 5`) it means "outside the range".
 */
function rangeViolation<T extends Num>(
  kind: string,
  r: Bounds<T>,
  v: T,
  show: (x: T) => string,
): string | undefined {
  const upper = boundOf(r, 'lt', 'lte');
  const lower = boundOf(r, 'gt', 'gte');
  const belowUpper = !upper || (upper.inclusive ? v <= upper.at : v < upper.at);
  const aboveLower = !lower || (lower.inclusive ? v >= lower.at : v > lower.at);
  if (upper && lower) {
    const inside = upper.at > lower.at;
    if (inside ? aboveLower && belowUpper : aboveLower || belowUpper) return undefined;
    const [from, to] = inside ? [lower, upper] : [upper, lower];
    // Outside a range, the brackets flip: `gt: 10, lt: 5` excludes [5, 10].
    const left = from.inclusive === inside ? '[' : '(';
    const right = to.inclusive === inside ? ']' : ')';
    const range = `${left}${show(from.at)}, ${show(to.at)}${right}`;
    return `value must be ${inside ? 'inside' : 'outside'} range ${range} (${kind}.${lower.rule}, ${kind}.${upper.rule})`;
  }
  const unmet = upper && !belowUpper ? upper : lower && !aboveLower ? lower : undefined;
  if (!unmet) return undefined;
  const relation = `${unmet === upper ? 'less' : 'greater'} than ${unmet.inclusive ? 'or equal to ' : ''}`;
  return `value must be ${relation}${show(unmet.at)} (${kind}.${unmet.rule})`;
}

const NANOS_PER_SECOND = 1_000_000_000n;
export const timeNanos = (t: TimeBound): bigint =>
  (t.seconds ?? 0n) * NANOS_PER_SECOND + BigInt(t.nanos ?? 0);
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
  return boundViolations(kind, bounds, nanos, show);
}

// --- lengths, strings and bytes ---

type LengthRule<R> = readonly [
  rule: keyof R & string,
  unit: 'characters' | 'bytes',
  bound: 'exactly' | 'at least' | 'at most',
];

function lengthViolations<R>(
  kind: string,
  r: R,
  table: readonly LengthRule<R>[],
  size: (unit: string) => number,
): string[] {
  const out: string[] = [];
  for (const [rule, unit, bound] of table) {
    const limit = r[rule];
    if (typeof limit !== 'bigint') continue;
    const n = size(unit);
    const broken = bound === 'exactly' ? n !== Number(limit) : bound === 'at least' ? n < limit : n > limit;
    const must = bound === 'exactly' ? '' : `${bound} `;
    if (broken) out.push(`value length must be ${must}${limit} ${unit} (${kind}.${rule})`);
  }
  return out;
}

const STRING_LENGTHS: readonly LengthRule<StringRules>[] = [
  ['len', 'characters', 'exactly'],
  ['min_len', 'characters', 'at least'],
  ['max_len', 'characters', 'at most'],
  ['len_bytes', 'bytes', 'exactly'],
  ['min_bytes', 'bytes', 'at least'],
  ['max_bytes', 'bytes', 'at most'],
];
const BYTES_LENGTHS: readonly LengthRule<BytesRules>[] = [
  ['len', 'bytes', 'exactly'],
  ['min_len', 'bytes', 'at least'],
  ['max_len', 'bytes', 'at most'],
];

/** The failed checks of a [broken, message, rule] table, as messages citing `kind.rule`. */
const failed = (kind: string, checks: readonly (readonly [boolean, string, string])[]): string[] =>
  checks.filter(([broken]) => broken).map(([, message, rule]) => `${message} (${kind}.${rule})`);

const utf8 = new TextEncoder();

export function stringViolations(r: StringRules, v: string): string[] {
  if (r.ignore_empty && v === '') return [];
  const q = JSON.stringify;
  const sizes = (unit: string): number => (unit === 'bytes' ? utf8.encode(v).length : [...v].length);
  const re = r.pattern === undefined ? null : compiled(r.pattern);
  const known = wellKnownCheck(r, v);
  return [
    ...lengthViolations('string', r, STRING_LENGTHS, sizes),
    ...failed('string', [
      [r.const !== undefined && v !== r.const, `value must equal ${q(r.const)}`, 'const'],
      [
        r.prefix !== undefined && !v.startsWith(r.prefix),
        `value does not have prefix ${q(r.prefix)}`,
        'prefix',
      ],
      [
        r.suffix !== undefined && !v.endsWith(r.suffix),
        `value does not have suffix ${q(r.suffix)}`,
        'suffix',
      ],
      [
        r.contains !== undefined && !v.includes(r.contains),
        `value does not contain ${q(r.contains)}`,
        'contains',
      ],
      [
        r.not_contains !== undefined && v.includes(r.not_contains),
        `value contains ${q(r.not_contains)}`,
        'not_contains',
      ],
      [!!r.in?.length && !r.in.includes(v), `value must be in list ${q(r.in)}`, 'in'],
      [!!r.not_in?.includes(v), `value must not be in list ${q(r.not_in)}`, 'not_in'],
      [!!re && !re.test(v), `value does not match regex pattern ${q(r.pattern)}`, 'pattern'],
    ]),
    ...failed('string', known ? [known] : []),
  ];
}

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

// protoc-gen-validate's own patterns for RFC 7230 header names and values (kept verbatim, so `+-.`
// is a range that also admits ','); the loose form, for `strict: false`, only excludes NUL, CR, LF.
/* eslint-disable no-control-regex -- these rules are about control characters */
const HEADER_NAME = /^:?[0-9a-zA-Z!#$%&'*+-.^_|~`]+$/;
const HEADER_VALUE = /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/;
const HEADER_LOOSE = /^[^\u0000\u000A\u000D]*$/;
const CONTROL_OR_SPACE = /[\u0000-\u0020\u007F]/;
/* eslint-enable no-control-regex */
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const ABSOLUTE = /^[a-zA-Z][a-zA-Z0-9+.-]*:/;

/** The `well_known` oneof: at most one of these is set. */
function wellKnownCheck(r: StringRules, v: string): readonly [boolean, string, string] | undefined {
  if (r.ip) return [!isIP(v), 'value must be a valid IP address', 'ip'];
  if (r.ipv4) return [!isIPv4(v), 'value must be a valid IPv4 address', 'ipv4'];
  if (r.ipv6) return [!isIPv6(v), 'value must be a valid IPv6 address', 'ipv6'];
  if (r.hostname) return [!isHostname(v), 'value must be a valid hostname', 'hostname'];
  if (r.address) {
    return [!isHostname(v) && !isIP(v), 'value must be a valid hostname or IP address', 'address'];
  }
  if (r.email) return [!isEmail(v), 'value must be a valid email address', 'email'];
  if (r.uri) return [!ABSOLUTE.test(v) || !URL.canParse(v), 'value must be a valid absolute URI', 'uri'];
  // Go's url.Parse, which PGV uses, accepts almost anything but control characters and spaces.
  if (r.uri_ref) return [CONTROL_OR_SPACE.test(v), 'value must be a valid URI reference', 'uri_ref'];
  if (r.uuid) return [!UUID.test(v), 'value must be a valid UUID', 'uuid'];
  if (r.well_known_regex === 1 || r.well_known_regex === 2) {
    const header = r.well_known_regex === 1 ? 'name' : 'value';
    const re = r.strict === false ? HEADER_LOOSE : header === 'name' ? HEADER_NAME : HEADER_VALUE;
    return [!re.test(v), `value must be a valid HTTP header ${header}`, 'well_known_regex'];
  }
  return undefined;
}

function isHostname(host: string): boolean {
  if (host.length > 253) return false;
  const labels = host.toLowerCase().replace(/\.$/, '').split('.');
  return labels.every((l) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(l));
}

function isEmail(addr: string): boolean {
  const bare = /<([^>]*)>\s*$/.exec(addr)?.[1] ?? addr.trim(); // `Name <local@host>` or bare
  const at = bare.lastIndexOf('@');
  return bare.length <= 254 && at > 0 && at <= 64 && isHostname(bare.slice(at + 1));
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(b);

export function bytesViolations(r: BytesRules, v: Uint8Array): string[] {
  if (r.ignore_empty && v.length === 0) return [];
  const buf = Buffer.from(v);
  const endsWith = (s: Uint8Array): boolean =>
    s.length <= v.length && sameBytes(v.subarray(v.length - s.length), s);
  return [
    ...lengthViolations('bytes', r, BYTES_LENGTHS, () => v.length),
    ...failed('bytes', [
      [r.const !== undefined && !sameBytes(v, r.const), 'value must equal the given bytes', 'const'],
      [
        r.prefix !== undefined && buf.indexOf(r.prefix) !== 0,
        'value does not have the given prefix',
        'prefix',
      ],
      [r.suffix !== undefined && !endsWith(r.suffix), 'value does not have the given suffix', 'suffix'],
      [
        r.contains !== undefined && buf.indexOf(r.contains) < 0,
        'value does not contain the given bytes',
        'contains',
      ],
      [!!r.in?.length && !r.in.some((x) => sameBytes(v, x)), 'value must be in the given list', 'in'],
      [!!r.not_in?.some((x) => sameBytes(v, x)), 'value must not be in the given list', 'not_in'],
      [!!r.ip && v.length !== 4 && v.length !== 16, 'value must be a valid IP address', 'ip'],
      [!!r.ipv4 && v.length !== 4, 'value must be a valid IPv4 address', 'ipv4'],
      [!!r.ipv6 && v.length !== 16, 'value must be a valid IPv6 address', 'ipv6'],
    ]),
  ];
}

// --- enums, counts, Any ---

export function enumViolations(r: EnumRules, v: number, desc?: DescEnum): string[] {
  const out = boundViolations('enum', r, v);
  if (r.defined_only && desc && desc.value[v] === undefined) {
    out.push(`value must be one of the defined ${desc.name} values (enum.defined_only)`);
  }
  return out;
}

/** min/max rules on the number of list items or map pairs. */
export function countViolations(
  kind: 'repeated' | 'map',
  min: bigint | undefined,
  max: bigint | undefined,
  size: number,
): string[] {
  const [noun, minRule, maxRule] =
    kind === 'repeated' ? ['item', 'min_items', 'max_items'] : ['pair', 'min_pairs', 'max_pairs'];
  const out: string[] = [];
  if (min !== undefined && size < min) {
    out.push(`value must contain at least ${min} ${noun}(s) (${kind}.${minRule})`);
  }
  if (max !== undefined && size > max) {
    out.push(`value must contain no more than ${max} ${noun}(s) (${kind}.${maxRule})`);
  }
  return out;
}

export function anyViolations(r: NonNullable<FieldRules['any']>, typeUrl: string): string[] {
  if (r.in?.length && !r.in.includes(typeUrl)) {
    return [`type URL must be in list ${JSON.stringify(r.in)} (any.in)`];
  }
  if (r.not_in?.includes(typeUrl)) {
    return [`type URL must not be in list ${JSON.stringify(r.not_in)} (any.not_in)`];
  }
  return [];
}
