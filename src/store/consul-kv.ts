// Consul's KV store and transactions, from Consul's HTTP API docs (/v1/kv, /v1/txn), over the same
// client (address, token, TLS, datacenter) as discovery. Every failure is a value naming the
// operation and the key; a lost check-and-set is not a failure but `false` (or a rolled-back txn).
import type { ConsulCallOptions, ConsulHttp, ConsulQuery, ConsulResponse } from '../consul/http.ts';
import { ConsulHttpError } from '../consul/http.ts';
import { fail, ok, type Problem, type Result } from '../errors.ts';
import { decodeEntries, encodeTxnOps, type KvEntry, type TxnOp, type TxnOutcome } from './consul-txn.ts';

export type { KvEntry, TxnOp, TxnOutcome } from './consul-txn.ts';
export { TXN_MAX_BYTES, TXN_MAX_OPS, txnSize } from './consul-txn.ts';

export interface KvReadOptions extends ConsulCallOptions {
  /** Blocks until the result's index passes this one (or `waitMs` passes). 0 or absent: answer at once. */
  readonly index?: bigint;
  readonly waitMs?: number;
  /** `?consistent`: a read the leader confirms it may answer (no stale leader). */
  readonly consistent?: boolean;
}

export interface KvRead<T> {
  readonly value: T;
  /** X-Consul-Index: the index to block on next. */
  readonly index: bigint;
}

export interface KvPutOptions extends ConsulCallOptions {
  /** Check-and-set: 0 writes only if the key does not exist, else only if its ModifyIndex is this. */
  readonly cas?: bigint;
  readonly flags?: number;
  /** Lock acquisition/release with a session id. */
  readonly acquire?: string;
  readonly release?: string;
}

export interface KvDeleteOptions extends ConsulCallOptions {
  readonly cas?: bigint;
  readonly recurse?: boolean;
}

export type KvOperation = 'get' | 'list' | 'keys' | 'put' | 'delete' | 'txn';

/** A KV path: each segment escaped, the slashes kept (Consul keys are paths). */
export function kvPath(key: string): string {
  return `/kv/${key.split('/').map(encodeURIComponent).join('/')}`;
}

/** The problem of a failed KV call, naming the operation, the key and Consul's answer. */
export function kvProblem(op: KvOperation, key: string, err: unknown): Problem {
  const detail =
    err instanceof ConsulHttpError
      ? err.kind === 'http'
        ? err.message
        : `Consul unreachable (${err.kind}): ${err.message}`
      : err instanceof Error
        ? err.message
        : String(err);
  return {
    code: 'CONSUL',
    resource: key === '' ? 'Consul KV' : `Consul KV ${key}`,
    message: `${op}: ${detail}`,
  };
}

function decimal(n: bigint | number): string {
  return typeof n === 'bigint' ? n.toString() : String(Math.trunc(n));
}

export class ConsulKv {
  constructor(private readonly http: ConsulHttp) {}

  private withDc(query: Record<string, string | undefined>): ConsulQuery {
    return this.http.datacenter ? { ...query, dc: this.http.datacenter } : query;
  }

  /** One key; `value` is undefined when it does not exist (the index still comes back, to block on). */
  async get(key: string, o: KvReadOptions = {}): Promise<Result<KvRead<KvEntry | undefined>>> {
    const read = await this.read('get', key, {}, o);
    if (!read.ok) return read;
    const entries = decodeEntries(read.value.body);
    if (!entries.ok) return fail([kvProblem('get', key, new Error(entries.error))]);
    return ok({ value: entries.value[0], index: read.value.index });
  }

  /** Every key under a prefix (`?recurse`), sorted as Consul sorts them. */
  async list(prefix: string, o: KvReadOptions = {}): Promise<Result<KvRead<KvEntry[]>>> {
    const read = await this.read('list', prefix, { recurse: 'true' }, o);
    if (!read.ok) return read;
    const entries = decodeEntries(read.value.body);
    if (!entries.ok) return fail([kvProblem('list', prefix, new Error(entries.error))]);
    return ok({ value: entries.value, index: read.value.index });
  }

  /** Key names under a prefix, up to `separator` when given (`?keys&separator=/`). */
  async keys(
    prefix: string,
    o: KvReadOptions & { separator?: string } = {},
  ): Promise<Result<KvRead<string[]>>> {
    const query = { keys: 'true', ...(o.separator ? { separator: o.separator } : {}) };
    const read = await this.read('keys', prefix, query, o);
    if (!read.ok) return read;
    const body = read.value.body;
    if (!Array.isArray(body) || !body.every((k) => typeof k === 'string'))
      return fail([kvProblem('keys', prefix, new Error('answer is not a list of keys'))]);
    return ok({ value: body, index: read.value.index });
  }

  /** Writes a value; `false` when a `cas`, `acquire` or `release` condition did not hold. */
  async put(key: string, value: Buffer | string, o: KvPutOptions = {}): Promise<Result<boolean>> {
    const query = this.withDc({
      ...(o.cas !== undefined ? { cas: decimal(o.cas) } : {}),
      ...(o.flags !== undefined ? { flags: decimal(o.flags) } : {}),
      ...(o.acquire ? { acquire: o.acquire } : {}),
      ...(o.release ? { release: o.release } : {}),
    });
    try {
      const res = await this.http.put(kvPath(key), Buffer.from(value), query, o);
      return ok(res.body === true);
    } catch (err) {
      return fail([kvProblem('put', key, err)]);
    }
  }

  /** Deletes a key (or a tree); `false` when a `cas` condition did not hold. */
  async delete(key: string, o: KvDeleteOptions = {}): Promise<Result<boolean>> {
    const query = this.withDc({
      ...(o.cas !== undefined ? { cas: decimal(o.cas) } : {}),
      ...(o.recurse ? { recurse: 'true' } : {}),
    });
    try {
      const res = await this.http.delete(kvPath(key), query, o);
      // Consul answers `true` (an unconditional delete of a missing key is no failure).
      return ok(res.body !== false);
    } catch (err) {
      return fail([kvProblem('delete', key, err)]);
    }
  }

  /**
   * Runs operations atomically (PUT /v1/txn). A failed condition rolls everything back: that is an
   * outcome (`committed: false`, Consul's errors by op index), not a failure. Limits are Consul's:
   * at most 64 operations and 512 KiB; check them with `txnSize` before.
   */
  async txn(ops: readonly TxnOp[], o: ConsulCallOptions = {}): Promise<Result<TxnOutcome>> {
    const what = ops.length === 1 ? ops[0]!.key : `${ops.length} operations`;
    try {
      const res = await this.http.put('/txn', encodeTxnOps(ops), this.withDc({}), o);
      const results = decodeTxnResults(res);
      if (!results.ok) return fail([kvProblem('txn', what, new Error(results.error))]);
      return ok({ committed: true, results: results.value, ...(res.index ? { index: res.index } : {}) });
    } catch (err) {
      if (err instanceof ConsulHttpError && err.status === 409) {
        const errors = decodeTxnErrors(err.body);
        if (errors) return ok({ committed: false, errors });
      }
      return fail([kvProblem('txn', what, err)]);
    }
  }

  private async read(
    op: KvOperation,
    key: string,
    query: Record<string, string>,
    o: KvReadOptions,
  ): Promise<Result<{ body: unknown; index: bigint }>> {
    const q = this.withDc({
      ...query,
      ...(o.index !== undefined && o.index > 0n ? { index: decimal(o.index) } : {}),
      ...(o.waitMs !== undefined ? { wait: `${Math.max(1, Math.round(o.waitMs))}ms` } : {}),
      ...(o.consistent ? { consistent: '' } : {}),
    });
    try {
      const res = await this.http.get(kvPath(key), q, o);
      return ok({ body: res.body, index: res.index ?? 0n });
    } catch (err) {
      // A missing key (or an empty prefix) is a 404 that still carries the index to block on.
      if (err instanceof ConsulHttpError && err.status === 404)
        return ok({ body: op === 'keys' ? [] : [], index: err.index ?? 0n });
      return fail([kvProblem(op, key, err)]);
    }
  }
}

function decodeTxnResults(
  res: ConsulResponse,
): { ok: true; value: KvEntry[] } | { ok: false; error: string } {
  const body = res.body as { Results?: unknown } | null | undefined;
  const results = body?.Results ?? [];
  if (!Array.isArray(results)) return { ok: false, error: 'txn answer has no Results list' };
  const kv = results
    .map((r: unknown) => (r as { KV?: unknown } | null)?.KV)
    .filter((x): x is object => typeof x === 'object' && x !== null);
  const entries = decodeEntries(kv);
  return entries.ok ? { ok: true, value: entries.value } : { ok: false, error: entries.error };
}

function decodeTxnErrors(body: unknown): { opIndex: number; what: string }[] | undefined {
  const errors = (body as { Errors?: unknown } | null | undefined)?.Errors;
  if (!Array.isArray(errors)) return undefined;
  return errors.map((e: unknown) => {
    const x = (e ?? {}) as { OpIndex?: unknown; What?: unknown };
    return {
      opIndex: typeof x.OpIndex === 'number' ? x.OpIndex : -1,
      what: typeof x.What === 'string' ? x.What : 'unknown',
    };
  });
}
