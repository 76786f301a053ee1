// Reading YAML nodes into typed values. Every reader reports what is wrong at the node that is wrong
// (file:line:col plus a field path such as `spec.instances[1].port`) and keeps going, so one pass over
// a document yields all of its problems. Readers return `undefined` for a value they rejected.
import { isAlias, isMap, isNode, isScalar, isSeq, type Node, type YAMLMap } from 'yaml';
import type { ErrorCode, Problem, SourcePos } from '../errors.ts';
import { didYouMean } from './did-you-mean.ts';
import { positionOf, type RawDocument } from './parse.ts';

/** Reads one present (non-null) node at `path`; reports and returns undefined when it is invalid. */
export type Reader<T> = (r: DocReader, node: Node, path: string) => T | undefined;

/** The problems of one document, and where each field it read was written. */
export class DocReader {
  readonly problems: Problem[] = [];
  /** [line, col] by field path; packed onto the manifest (`origin.fieldPos`) for cross-document checks. */
  readonly fieldPos: Record<string, readonly [line: number, col: number]> = {};

  constructor(readonly raw: RawDocument) {}

  posOf(node: Node): SourcePos {
    return node.range ? positionOf(this.raw.file, this.raw.lines, node.range[0]) : this.raw.pos;
  }

  report(node: Node, field: string, message: string, code: ErrorCode = 'SCHEMA'): void {
    this.problems.push({ code, message, ...(field ? { field } : {}), pos: this.posOf(node) });
  }

  /** Reports against a field already read (its position was recorded), e.g. an empty list. */
  reportAt(field: string, message: string, code: ErrorCode = 'SCHEMA'): void {
    const at = this.fieldPos[field];
    const pos = at ? { file: this.raw.file, line: at[0], col: at[1] } : this.raw.pos;
    this.problems.push({ code, message, field, pos });
  }

  expected(node: Node, field: string, what: string): undefined {
    this.report(node, field, `expected ${what}, got ${describe(node)}`);
    return undefined;
  }

  /** Follows `*alias` to its anchor; an alias to nothing is reported. */
  resolve(node: Node, field: string): Node | undefined {
    if (!isAlias(node)) return node;
    const target = node.resolve(this.raw.doc);
    if (target === undefined) this.report(node, field, `alias *${node.source} refers to no anchor`);
    return target;
  }

  /** Reads `node` with `read`, remembering where the field was written. */
  read<T>(node: Node, path: string, read: Reader<T>): T | undefined {
    const target = this.resolve(node, path);
    if (target === undefined) return undefined;
    const { line, col } = this.posOf(target);
    if (path) this.fieldPos[path] = [line, col];
    return read(this, target, path);
  }
}

/** `spec` + `ports` → `spec.ports`; keys that are not identifiers are quoted: `meta["app.io/x"]`. */
export function childPath(path: string, key: string): string {
  const part = /^[A-Za-z_][\w-]*$/.test(key) ? key : `[${JSON.stringify(key)}]`;
  if (!path) return part;
  return part.startsWith('[') ? `${path}${part}` : `${path}.${part}`;
}

export function describe(node: Node): string {
  if (isMap(node)) return 'a map';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    if (node.value === null) return 'nothing (null)';
    if (typeof node.value === 'number' || typeof node.value === 'bigint') {
      return Number.isInteger(Number(node.value))
        ? `the integer ${String(node.value)}`
        : `the number ${String(node.value)}`;
    }
    if (typeof node.value === 'string') return `the string ${JSON.stringify(node.value)}`;
    if (typeof node.value === 'boolean') return `the boolean ${String(node.value)}`;
  }
  return 'an unsupported YAML value';
}

const isNull = (node: unknown): boolean => isScalar(node) && node.value === null;

/** The fields of one YAML map. Keys outside `known` are reported on construction, with a hint. */
export class MapFields {
  private readonly entries = new Map<string, { readonly key: Node; readonly value: unknown }>();

  constructor(
    readonly r: DocReader,
    readonly node: YAMLMap,
    readonly path: string,
    known: readonly string[],
  ) {
    for (const { key, value } of node.items) {
      const name = keyName(r, key, path);
      if (name === undefined || !isNode(key)) continue;
      if (known.includes(name)) this.entries.set(name, { key, value });
      else r.report(key, childPath(path, name), `unknown field "${name}"${didYouMean(name, known)}`);
    }
  }

  has(key: string): boolean {
    const entry = this.entries.get(key);
    return entry !== undefined && !isNull(entry.value);
  }

  /** A missing field is reported at its map (or at its key when written with no value). */
  required<T>(key: string, read: Reader<T>): T | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined || !isNode(entry.value) || isNull(entry.value)) {
      this.r.report(entry?.key ?? this.node, childPath(this.path, key), `missing required field "${key}"`);
      return undefined;
    }
    return this.r.read(entry.value, childPath(this.path, key), read);
  }

  /** An absent field, or one written with no value (`key:`), reads as undefined without a problem. */
  optional<T>(key: string, read: Reader<T>): T | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined || !isNode(entry.value) || isNull(entry.value)) return undefined;
    return this.r.read(entry.value, childPath(this.path, key), read);
  }
}

function keyName(r: DocReader, key: unknown, path: string): string | undefined {
  if (
    isScalar(key) &&
    (typeof key.value === 'string' || typeof key.value === 'number' || typeof key.value === 'boolean')
  ) {
    return String(key.value);
  }
  if (isNode(key)) r.report(key, path, `map keys must be plain strings, got ${describe(key)}`);
  return undefined;
}

/** A map with exactly the fields in `known`; read its fields with `required`/`optional`. */
export function mapOf(known: readonly string[]): Reader<MapFields> {
  return (r, node, path) =>
    isMap(node) ? new MapFields(r, node, path, known) : r.expected(node, path, 'a map');
}

/**
 * A list whose entries are read with `item`. Entries that fail stay as holes (`undefined`) so later
 * checks on the list (unique names, …) still see every entry at its own index.
 */
export function listOf<T>(item: Reader<T>): Reader<(T | undefined)[]> {
  return (r, node, path) => {
    if (!isSeq(node)) return r.expected(node, path, 'a list');
    return node.items.map((entry, i) => {
      const at = `${path}[${i}]`;
      if (!isNode(entry) || isNull(entry)) {
        if (isNode(entry)) r.report(entry, at, 'empty list entry');
        return undefined;
      }
      return r.read(entry, at, item);
    });
  };
}

/** The list without holes, or undefined when any entry was invalid. */
export function complete<T>(list: readonly (T | undefined)[] | undefined): T[] | undefined {
  if (list === undefined || list.some((x) => x === undefined)) return undefined;
  return list as T[];
}

/** A map of strings to strings (`meta`), keys free-form. */
export const stringMap: Reader<Record<string, string>> = (r, node, path) => {
  if (!isMap(node)) return r.expected(node, path, 'a map of strings');
  const out: Record<string, string> = {};
  for (const { key, value } of node.items) {
    const name = keyName(r, key, path);
    if (name === undefined || !isNode(value)) continue;
    const text = r.read(value, childPath(path, name), str);
    if (text !== undefined) out[name] = text;
  }
  return out;
};

export const str: Reader<string> = (r, node, path) =>
  isScalar(node) && typeof node.value === 'string' ? node.value : r.expected(node, path, 'a string');

export const bool: Reader<boolean> = (r, node, path) =>
  isScalar(node) && typeof node.value === 'boolean'
    ? node.value
    : r.expected(node, path, 'a boolean (true or false)');

export function intIn(min: number, max: number): Reader<number> {
  return (r, node, path) => {
    const v = isScalar(node) ? node.value : undefined;
    if (typeof v !== 'number' || !Number.isInteger(v))
      return r.expected(node, path, `an integer from ${min} to ${max}`);
    if (v < min || v > max) {
      r.report(node, path, `${v} is out of range: expected an integer from ${min} to ${max}`);
      return undefined;
    }
    return v;
  };
}

export function oneOf<T extends string>(values: readonly T[]): Reader<T> {
  const list = values.map((v) => JSON.stringify(v)).join(', ');
  return (r, node, path) => {
    const v = str(r, node, path);
    if (v === undefined) return undefined;
    if ((values as readonly string[]).includes(v)) return v as T;
    r.report(node, path, `"${v}" is not one of ${list}${didYouMean(v, values)}`);
    return undefined;
  };
}

/** A string satisfying `test`; `rule` says what was expected when it does not. */
export function stringWhere(test: (s: string) => boolean, rule: string): Reader<string> {
  return (r, node, path) => {
    const v = str(r, node, path);
    if (v === undefined || test(v)) return v;
    r.report(node, path, `${JSON.stringify(v)} is not ${rule}`);
    return undefined;
  };
}
