// Validates decoded Envoy messages against the protoc-gen-validate rules carried in their descriptors,
// so a resource Envoy would NACK is rejected before it is published. Unlike Envoy, which stops at the
// first violation, it reports all of them. The rules themselves are checked in pgv-rules.ts.
//
// PGV semantics followed here: rules on message fields apply only when the field is set (except
// `required`); scalar rules on proto3 implicit-presence fields apply to the zero value too unless
// `ignore_empty`; rules on oneof members apply only to the selected member; every set message field
// is validated recursively. Beyond PGV, and like Envoy when it unpacks typed_config, the contents of
// a google.protobuf.Any are validated when their type is in the registry.
import {
  fromJson,
  getOption,
  hasOption,
  isMessage,
  ScalarType,
  type DescEnum,
  type DescExtension,
  type DescField,
  type DescMessage,
  type DescOneof,
  type JsonValue,
  type Message,
  type Registry,
} from '@bufbuild/protobuf';
import {
  isReflectMessage,
  reflect,
  type ReflectList,
  type ReflectMap,
  type ReflectMessage,
} from '@bufbuild/protobuf/reflect';
import {
  AnySchema,
  anyUnpack,
  DurationSchema,
  FeatureSet_FieldPresence,
  isWrapperDesc,
  TimestampSchema,
  type Any,
} from '@bufbuild/protobuf/wkt';
import { fail, ok, type ErrorCode, type Problem, type Result } from '../../errors.ts';
import {
  anyViolations,
  countViolations,
  scalarViolations,
  timeNanos,
  timeViolations,
  type FieldRules,
} from './pgv-rules.ts';
import { envoyRegistry } from './registry.ts';

export function validateMessage(desc: DescMessage, msg: Message, resource?: string): Problem[] {
  const problems: Problem[] = [];
  const walk: Walk = {
    registry: envoyRegistry(),
    report: (field, message, code = 'PGV') =>
      problems.push({
        code,
        message,
        ...(field ? { field } : {}),
        ...(resource !== undefined ? { resource } : {}),
      }),
  };
  walkMessage(reflect(desc, msg), '', walk);
  return problems;
}

/** Decodes proto3 JSON (snake_case or camelCase names) into `typeName` and validates it. */
export function validateJson(typeName: string, json: unknown, resource?: string): Result<Message> {
  const registry = envoyRegistry();
  const at = resource !== undefined ? { resource } : {};
  const desc = registry.getMessage(typeName);
  if (!desc) return fail([{ code: 'SCHEMA', message: `unknown message type ${typeName}`, ...at }]);
  let msg: Message;
  try {
    // fromJson checks the shape itself and throws on anything that is not valid proto3 JSON.
    msg = fromJson(desc, json as JsonValue, { registry });
  } catch (e) {
    return fail([{ code: 'SCHEMA', message: e instanceof Error ? e.message : String(e), ...at }]);
  }
  const problems = validateMessage(desc, msg, resource);
  return problems.length === 0 ? ok(msg) : fail(problems);
}

interface Walk {
  readonly registry: Registry;
  report(field: string, message: string, code?: ErrorCode): void;
}

const join = (path: string, name: string): string => (path ? `${path}.${name}` : name);

function walkMessage(r: ReflectMessage, path: string, walk: Walk): void {
  if (r.desc.file.name.startsWith('google/protobuf/')) {
    // Well-known types carry no rules; an Any's contents do.
    if (isMessage(r.message, AnySchema)) walkAnyContents(r.message, path, walk);
    return;
  }
  if (validationDisabled(r.desc)) return;
  for (const oneof of r.oneofs) {
    if (oneofRequired(oneof) && r.oneofCase(oneof) === undefined) {
      walk.report(join(path, oneof.name), 'exactly one field is required in oneof (validate.required)');
    }
  }
  for (const field of r.fields) {
    if (field.oneof && r.oneofCase(field.oneof) !== field) continue;
    walkField(r, field, join(path, field.name), walk);
  }
}

function walkField(r: ReflectMessage, field: DescField, path: string, walk: Walk): void {
  const rules = fieldRules(field);
  switch (field.fieldKind) {
    case 'list':
      return walkList(r.get(field), rules, path, walk);
    case 'map':
      return walkMap(r.get(field), rules, path, walk);
    case 'message':
      return walkValue(r.isSet(field) ? r.get(field) : undefined, rules, path, walk);
    default:
      // proto3 `optional` (explicit presence): rules apply only when a value was given.
      if (field.presence !== FeatureSet_FieldPresence.IMPLICIT && !r.isSet(field)) return;
      return walkValue(r.get(field), rules, path, walk, field.enum);
  }
}

/** One value: a singular field, a list item or a map value. `undefined` is an unset message. */
function walkValue(
  value: unknown,
  rules: FieldRules | undefined,
  path: string,
  walk: Walk,
  enumDesc?: DescEnum,
): void {
  if (value !== undefined && !isReflectMessage(value)) {
    if (rules) for (const m of scalarViolations(rules, value, enumDesc)) walk.report(path, m);
    return;
  }
  if (value === undefined) {
    const required = requiredRule(rules);
    if (required) walk.report(path, `value is required (${required}.required)`);
    return;
  }
  if (rules) for (const m of messageRuleViolations(rules, value)) walk.report(path, m);
  if (!rules?.message?.skip) walkMessage(value, path, walk);
}

function requiredRule(rules: FieldRules | undefined): string | undefined {
  if (rules?.message?.required) return 'message';
  for (const kind of ['any', 'duration', 'timestamp'] as const) if (rules?.[kind]?.required) return kind;
  return undefined;
}

/** Rules a set message field carries for its own value: Any, Duration, Timestamp and wrappers. */
function messageRuleViolations(rules: FieldRules, m: ReflectMessage): string[] {
  const msg = m.message;
  if (rules.any && isMessage(msg, AnySchema)) return anyViolations(rules.any, msg.typeUrl);
  if (rules.duration && isMessage(msg, DurationSchema)) {
    return timeViolations('duration', rules.duration, timeNanos(msg));
  }
  if (rules.timestamp && isMessage(msg, TimestampSchema)) {
    return timeViolations('timestamp', rules.timestamp, timeNanos(msg));
  }
  // google.protobuf.UInt32Value and friends: scalar rules apply to the wrapped value.
  const wrapped = isWrapperDesc(m.desc) ? m.desc.fields[0] : undefined;
  return wrapped ? scalarViolations(rules, m.get(wrapped)) : [];
}

function walkAnyContents(any: Any, path: string, walk: Walk): void {
  const { typeUrl } = any;
  if (typeUrl === '') return;
  let inner: Message | undefined;
  try {
    inner = anyUnpack(any, walk.registry);
  } catch (e) {
    walk.report(path, `cannot decode ${typeUrl}: ${e instanceof Error ? e.message : String(e)}`, 'SCHEMA');
    return;
  }
  const desc = inner && walk.registry.getMessage(inner.$typeName);
  // A type we have no descriptor for is left to Envoy.
  if (inner && desc) walkMessage(reflect(desc, inner), path, walk);
}

function walkList(list: ReflectList, rules: FieldRules | undefined, path: string, walk: Walk): void {
  const field = list.field();
  const rep = rules?.repeated;
  if (rep && !(rep.ignore_empty && list.size === 0)) {
    const counts = countViolations('repeated', rep.min_items, rep.max_items, list.size);
    for (const m of counts) walk.report(path, m);
    if (rep.unique) reportDuplicates(list, path, walk);
  }
  for (const [i, item] of list.entries()) walkValue(item, rep?.items, `${path}[${i}]`, walk, field.enum);
}

function reportDuplicates(list: ReflectList, path: string, walk: Walk): void {
  const seen = new Set<unknown>();
  for (const [i, item] of list.entries()) {
    const key = item instanceof Uint8Array ? `bytes:${Buffer.from(item).toString('base64')}` : item;
    if (seen.has(key)) {
      walk.report(`${path}[${i}]`, 'repeated value must contain unique items (repeated.unique)');
    }
    seen.add(key);
  }
}

function walkMap(map: ReflectMap, rules: FieldRules | undefined, path: string, walk: Walk): void {
  const field = map.field();
  const pairs = rules?.map;
  if (pairs && !(pairs.ignore_empty && map.size === 0)) {
    for (const m of countViolations('map', pairs.min_pairs, pairs.max_pairs, map.size)) walk.report(path, m);
  }
  // no_sparse needs no check: a decoded map cannot hold an unset message value.
  for (const [key, value] of map) {
    const at = `${path}[${field.mapKey === ScalarType.STRING ? JSON.stringify(key) : String(key)}]`;
    if (pairs?.keys) for (const m of scalarViolations(pairs.keys, key)) walk.report(at, `key: ${m}`);
    walkValue(value, pairs?.values, at, walk, field.enum);
  }
}

// --- reading the rules from descriptor options, once per descriptor ---

let extensions:
  | { rules: DescExtension; required: DescExtension; disabled: DescExtension; ignored: DescExtension }
  | undefined;

function validateExtensions(): NonNullable<typeof extensions> {
  if (!extensions) {
    const reg = envoyRegistry();
    const ext = (name: string): DescExtension => {
      const found = reg.getExtension(name);
      // validate.proto is part of the descriptor build; without it, setup is broken.
      if (!found) throw new Error(`extension ${name} missing from the Envoy descriptors`);
      return found;
    };
    extensions = {
      rules: ext('validate.rules'),
      required: ext('validate.required'),
      disabled: ext('validate.disabled'),
      ignored: ext('validate.ignored'),
    };
  }
  return extensions;
}

const rulesByField = new WeakMap<DescField, FieldRules | null>();
const disabledByMessage = new WeakMap<DescMessage, boolean>();
const requiredByOneof = new WeakMap<DescOneof, boolean>();

function fieldRules(field: DescField): FieldRules | undefined {
  let rules = rulesByField.get(field);
  if (rules === undefined) {
    const ext = validateExtensions().rules;
    const option = hasOption(field, ext) ? getOption(field, ext) : undefined;
    // The shape of validate.FieldRules is fixed by validate.proto, which FieldRules mirrors.
    rules = ext.message && isMessage(option) ? (setFields(reflect(ext.message, option)) as FieldRules) : null;
    rulesByField.set(field, rules);
  }
  return rules ?? undefined;
}

/** A rule message as a plain object holding only the fields it sets (proto2: presence matters). */
function setFields(r: ReflectMessage): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const field of r.fields) {
    if (!r.isSet(field)) continue;
    const value = r.get(field);
    out[field.name] = isReflectMessage(value)
      ? setFields(value)
      : field.fieldKind === 'list'
        ? Array.from(r.get(field), (item) => (isReflectMessage(item) ? setFields(item) : item))
        : value;
  }
  return out;
}

function validationDisabled(desc: DescMessage): boolean {
  let disabled = disabledByMessage.get(desc);
  if (disabled === undefined) {
    const { disabled: off, ignored } = validateExtensions();
    disabled = getOption(desc, off) === true || getOption(desc, ignored) === true;
    disabledByMessage.set(desc, disabled);
  }
  return disabled;
}

function oneofRequired(oneof: DescOneof): boolean {
  let required = requiredByOneof.get(oneof);
  if (required === undefined) {
    required = getOption(oneof, validateExtensions().required) === true;
    requiredByOneof.set(oneof, required);
  }
  return required;
}
