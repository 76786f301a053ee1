// A small subset of Consul's `filter` expression language (go-bexpr), applied to the JSON objects the
// double returns: `Sel == "v"`, `!=`, `"v" in Sel`, `"v" not in Sel`, `Sel contains "v"`,
// `Sel matches "re"`, `Sel is empty`, `Sel is not empty`, joined by `and` / `or` (no parentheses).
// Anything else is rejected with the error Consul gives for a bad expression (HTTP 400).

type Json = unknown;
export type Predicate = (item: Json) => boolean;

export class FilterError extends Error {}

function lookup(item: Json, selector: string): Json {
  let value: Json = item;
  for (const part of selector.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    value = (value as Record<string, Json>)[part];
  }
  return value;
}

function unquote(token: string): string {
  const t = token.trim();
  if ((t.startsWith('"') && t.endsWith('"')) || (t.startsWith('`') && t.endsWith('`'))) return t.slice(1, -1);
  if (/^[A-Za-z0-9_.:/-]+$/.test(t)) return t;
  throw new FilterError(`bad value ${JSON.stringify(t)}`);
}

function contains(container: Json, value: string): boolean {
  if (Array.isArray(container)) return container.some((v) => String(v) === value);
  if (typeof container === 'string') return container.includes(value);
  if (typeof container === 'object' && container !== null) return Object.hasOwn(container, value);
  return false;
}

function isEmpty(value: Json): boolean {
  if (value === undefined || value === null || value === '') return true;
  if (Array.isArray(value)) return value.length === 0;
  if (typeof value === 'object') return Object.keys(value).length === 0;
  return false;
}

const SELECTOR = '([A-Za-z][A-Za-z0-9_]*(?:\\.[A-Za-z0-9_-]+)*)';
const VALUE = '("(?:[^"\\\\]|\\\\.)*"|`[^`]*`|[A-Za-z0-9_.:/-]+)';

function term(text: string): Predicate {
  const t = text.trim();
  let m = new RegExp(`^${SELECTOR}\\s*(==|!=)\\s*${VALUE}$`).exec(t);
  if (m) {
    const [, sel, op, raw] = m;
    const want = unquote(raw!);
    return (item) => (String(lookup(item, sel!) ?? '') === want) === (op === '==');
  }
  m = new RegExp(`^${VALUE}\\s+(not\\s+in|in)\\s+${SELECTOR}$`).exec(t);
  if (m) {
    const [, raw, op, sel] = m;
    const want = unquote(raw!);
    return (item) => contains(lookup(item, sel!), want) === (op === 'in');
  }
  m = new RegExp(`^${SELECTOR}\\s+(not\\s+contains|contains|not\\s+matches|matches)\\s+${VALUE}$`).exec(t);
  if (m) {
    const [, sel, op, raw] = m;
    const want = unquote(raw!);
    const negate = op!.startsWith('not');
    if (op!.endsWith('matches')) {
      const re = new RegExp(want);
      return (item) => re.test(String(lookup(item, sel!) ?? '')) !== negate;
    }
    return (item) => contains(lookup(item, sel!), want) !== negate;
  }
  m = new RegExp(`^${SELECTOR}\\s+is\\s+(not\\s+)?empty$`).exec(t);
  if (m) {
    const [, sel, not] = m;
    return (item) => isEmpty(lookup(item, sel!)) === (not === undefined);
  }
  throw new FilterError(`unsupported filter term ${JSON.stringify(t)}`);
}

/** Splits on a keyword outside quotes. */
function splitOn(text: string, word: 'and' | 'or'): string[] {
  const parts: string[] = [];
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = undefined;
    } else if (c === '"' || c === '`') {
      quote = c;
    } else if (text.startsWith(` ${word} `, i)) {
      parts.push(text.slice(start, i));
      start = i + word.length + 2;
      i = start - 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

export function compileFilter(expression: string): Predicate {
  if (/[()]/.test(expression.replace(/"(?:[^"\\]|\\.)*"|`[^`]*`/g, '')))
    throw new FilterError('parentheses are not supported by the double');
  const ors = splitOn(expression, 'or').map((part) => splitOn(part, 'and').map(term));
  return (item) => ors.some((ands) => ands.every((p) => p(item)));
}
