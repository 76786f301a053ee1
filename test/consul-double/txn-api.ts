// `PUT /v1/txn`: up to 64 KV operations applied all-or-nothing at one raft index. 200 with `Results`
// on success; 409 with `Errors` ({OpIndex, What}, Consul's wording) when any operation fails, and
// nothing applied; 400 for a body that does not decode, 413 past 64 operations or 512 KiB. A
// transaction of only reads runs without a write and answers with the leader headers.
import type { ServerResponse } from 'node:http';
import { BadRequest } from './agent-api.ts';
import { HttpError, parseJsonBody, sendJson } from './http.ts';
import { kvJson } from './kv-render.ts';
import { KV_MAX_VALUE_SIZE, KvOpError, KvWrite } from './kv-store.ts';
import type { KvEntry, KvInput, KvStore } from './kv-store.ts';
import type { RouteFamily } from './route.ts';
import { methodNotAllowed } from './route.ts';

const MAX_OPS = 64;
const MAX_BODY = 512 * 1024;
const WRITES = new Set(['set', 'delete', 'delete-cas', 'delete-tree', 'cas', 'lock', 'unlock']);
const KNOWN = new Set([
  ...WRITES,
  'get',
  'get-or-empty',
  'get-tree',
  'check-index',
  'check-session',
  'check-not-exists',
]);

interface KvOp extends KvInput {
  readonly verb: string;
}

type Json = Record<string, unknown>;

/** Go's JSON decoding matches field names case-insensitively. */
function field(obj: Json, name: string): unknown {
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(obj)) if (k.toLowerCase() === want) return v;
  return undefined;
}

function decodeError(message: string): BadRequest {
  return new BadRequest(`Failed to parse body: ${message}`);
}

function str(obj: Json, name: string): string {
  const v = field(obj, name);
  if (v === undefined || v === null) return '';
  if (typeof v !== 'string')
    throw decodeError(
      `json: cannot unmarshal ${typeof v} into Go struct field KVTxnOp.KV.${name} of type string`,
    );
  return v;
}

function uint(obj: Json, name: string): number {
  const v = field(obj, name);
  if (v === undefined || v === null) return 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0)
    throw decodeError(
      `json: cannot unmarshal ${JSON.stringify(v)} into Go struct field KVTxnOp.KV.${name} of type uint64`,
    );
  return v;
}

/** One element of the body: a KV op, `undefined` for `{}` ("no operation specified"). */
function parseOp(raw: unknown): KvOp | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw decodeError('json: cannot unmarshal into Go value of type api.TxnOp');
  const op = raw as Json;
  for (const other of ['Node', 'Service', 'Check', 'Session', 'Intention'])
    if (field(op, other) !== undefined && field(op, other) !== null)
      throw new BadRequest(`the Consul double supports only KV operations in /v1/txn, not ${other}`);
  const kvRaw = field(op, 'KV');
  if (kvRaw === undefined || kvRaw === null) return undefined;
  if (typeof kvRaw !== 'object' || Array.isArray(kvRaw)) throw decodeError('json: cannot unmarshal KV');
  const kv = kvRaw as Json;
  const valueRaw = field(kv, 'Value');
  let value: Buffer | undefined;
  if (valueRaw !== undefined && valueRaw !== null) {
    if (typeof valueRaw !== 'string') throw decodeError(`unexpected value type: ${typeof valueRaw}`);
    if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(valueRaw))
      throw decodeError('failed to decode value: illegal base64 data');
    value = Buffer.from(valueRaw, 'base64');
  }
  const key = str(kv, 'Key');
  if (value && value.length > KV_MAX_VALUE_SIZE)
    throw new HttpError(
      413,
      `Value for key ${JSON.stringify(key)} is too large (${value.length} > ${KV_MAX_VALUE_SIZE} bytes)`,
    );
  return {
    verb: str(kv, 'Verb'),
    key,
    ...(value ? { value } : {}),
    flags: uint(kv, 'Flags'),
    session: str(kv, 'Session'),
    index: uint(kv, 'Index'),
  };
}

interface TxnError {
  OpIndex: number;
  What: string;
}

/** Runs one op; returns its results, or throws KvOpError with Consul's message. */
function apply(w: KvWrite, op: KvOp): Json[] {
  const q = JSON.stringify(op.key);
  const blank = (e: KvEntry | undefined): Json[] => (e ? [{ KV: kvJson(e, false) }] : []);
  const must = <T>(v: T | undefined, what: string): T => {
    if (v === undefined) throw new KvOpError(what);
    return v;
  };
  switch (op.verb) {
    case 'set':
      return blank(w.set(op));
    case 'cas':
      return blank(must(w.cas(op), `failed to set key ${q}, index is stale`));
    case 'lock':
      return blank(must(w.lock(op), `failed to lock key ${q}, lock is already held`));
    case 'unlock':
      return blank(
        must(w.unlock(op), `failed to unlock key ${q}, lock isn't held, or is held by another session`),
      );
    case 'get':
      return [{ KV: kvJson(must(w.get(op.key), `key ${q} doesn't exist`)) }];
    case 'get-or-empty': {
      const missing = { ...op, value: Buffer.alloc(0), flags: op.flags ?? 0, session: op.session ?? '' };
      const e = w.get(op.key) ?? { ...missing, lockIndex: 0, createIndex: 0, modifyIndex: op.index ?? 0 };
      return [{ KV: kvJson(e) }];
    }
    case 'get-tree':
      return w.list(op.key).map((e) => ({ KV: kvJson(e) }));
    case 'check-index': {
      const e = must(w.get(op.key), `failed to check index, key ${q} doesn't exist`);
      if (e.modifyIndex !== op.index)
        throw new KvOpError(
          `failed index check for key ${q}, current modify index ${e.modifyIndex} != ${op.index}`,
        );
      return blank(e);
    }
    case 'check-session': {
      const e = must(w.get(op.key), `failed to check session, key ${q} doesn't exist`);
      if (e.session !== op.session)
        throw new KvOpError(
          `failed session check for key ${q}, current session ${JSON.stringify(e.session)} != ${JSON.stringify(op.session)}`,
        );
      return blank(e);
    }
    case 'check-not-exists':
      if (w.get(op.key)) throw new KvOpError(`key ${q} exists`);
      return [];
    case 'delete':
      w.delete(op.key);
      return [];
    case 'delete-cas':
      must(w.deleteCas(op.key, op.index ?? 0) || undefined, `failed to delete key ${q}, index is stale`);
      return [];
    case 'delete-tree':
      w.deleteTree(op.key);
      return [];
    default:
      throw new KvOpError(`unknown KV verb ${JSON.stringify(op.verb)}`);
  }
}

function run(w: KvWrite, ops: ReadonlyArray<KvOp | undefined>): { results: Json[]; errors: TxnError[] } {
  const results: Json[] = [];
  const errors: TxnError[] = [];
  ops.forEach((op, i) => {
    try {
      if (!op) throw new KvOpError('no operation specified');
      results.push(...apply(w, op));
    } catch (err) {
      if (!(err instanceof KvOpError)) throw err;
      errors.push({ OpIndex: i, What: err.message });
    }
  });
  return { results, errors };
}

export function txnRoutes(kv: KvStore): RouteFamily {
  return {
    matches: (path) => path === '/v1/txn',
    handle: async (ctx) => {
      if (ctx.method !== 'PUT') methodNotAllowed(ctx.method, ['PUT']);
      if (ctx.body.length > MAX_BODY)
        throw new HttpError(413, `Request body too large, max size: ${MAX_BODY} bytes`);
      const body = parseJsonBody(ctx.body, 'Failed to parse body');
      if (!Array.isArray(body))
        throw decodeError(
          `json: cannot unmarshal ${body === undefined ? 'EOF' : typeof body} into Go value of type api.TxnOps`,
        );
      if (body.length > MAX_OPS)
        throw new HttpError(413, `Transaction contains too many operations (${body.length} > ${MAX_OPS})`);
      const ops = body.map(parseOp);
      const writes = ops.filter((op) => op && WRITES.has(op.verb)).length;
      const access = ctx.access();
      // Checks made before the write reaches raft (kvsPreApply): ACLs, a key, and lock-delay.
      const pre: TxnError[] = [];
      ops.forEach((op, i) => {
        if (!op || !KNOWN.has(op.verb)) return;
        const reads = op.verb.startsWith('get') || op.verb.startsWith('check');
        if (op.key === '' && op.verb !== 'delete-tree') pre.push({ OpIndex: i, What: 'Must provide key' });
        else if (access === 'anonymous' || (!reads && access !== 'management'))
          pre.push({ OpIndex: i, What: 'Permission denied' });
        else if (op.verb === 'lock' && kv.lockDelayed(op.key))
          pre.push({ OpIndex: i, What: `failed to lock key ${JSON.stringify(op.key)} due to lock delay` });
      });
      if (pre.length > 0) {
        answer(ctx.res, [], pre);
      } else if (writes === 0) {
        const { results, errors } = run(new KvWrite(kv, kv.tableIndex), ops);
        ctx.leaderHeaders();
        answer(ctx.res, results, errors);
      } else {
        const { results, errors } = kv.write((w) => {
          const out = run(w, ops);
          return { commit: out.errors.length === 0, value: out };
        });
        answer(ctx.res, results, errors);
      }
    },
  };
}

function answer(res: ServerResponse, results: Json[], errors: TxnError[]): void {
  if (errors.length > 0) sendJson(res, 409, { Results: null, Errors: errors });
  else sendJson(res, 200, { Results: results, Errors: null });
}
