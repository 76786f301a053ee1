// The shapes Consul's KV and /v1/txn endpoints speak: entries as Consul writes them (base64 values,
// uint64 indexes, kept as bigint), transaction operations, and the limits Consul puts on one txn.
export interface KvEntry {
  readonly key: string;
  /** The value's bytes (empty when Consul says `null`). */
  readonly value: Buffer;
  readonly flags: number;
  readonly createIndex: bigint;
  readonly modifyIndex: bigint;
  readonly lockIndex: bigint;
  readonly session?: string;
}

/** One KV operation of a transaction, with Consul's verbs. */
export type TxnOp =
  | { readonly verb: 'set'; readonly key: string; readonly value: Buffer | string; readonly flags?: number }
  | {
      readonly verb: 'cas';
      readonly key: string;
      readonly value: Buffer | string;
      /** 0: only if the key does not exist. */
      readonly index: bigint;
      readonly flags?: number;
    }
  | {
      readonly verb: 'lock' | 'unlock';
      readonly key: string;
      readonly value: Buffer | string;
      readonly session: string;
    }
  | {
      readonly verb: 'get' | 'get-tree' | 'check-not-exists' | 'delete' | 'delete-tree';
      readonly key: string;
    }
  | { readonly verb: 'check-index' | 'delete-cas'; readonly key: string; readonly index: bigint }
  | { readonly verb: 'check-session'; readonly key: string; readonly session: string };

export type TxnOutcome =
  | { readonly committed: true; readonly results: readonly KvEntry[]; readonly index?: bigint }
  /** Rolled back: which operation's condition failed, and Consul's words for it. */
  | { readonly committed: false; readonly errors: readonly { opIndex: number; what: string }[] };

/** Consul's default `txn_max_req_len` is 512 KiB, and one txn takes at most 64 operations. */
export const TXN_MAX_OPS = 64;
export const TXN_MAX_BYTES = 512 * 1024;

function toBuffer(v: Buffer | string): Buffer {
  return typeof v === 'string' ? Buffer.from(v, 'utf8') : v;
}

/** The JSON body of PUT /v1/txn. Indexes travel as JSON numbers, as Consul's Go client sends them. */
export function encodeTxnOps(ops: readonly TxnOp[]): unknown[] {
  return ops.map((op) => {
    const kv: Record<string, unknown> = { Verb: op.verb, Key: op.key };
    if ('value' in op) kv.Value = toBuffer(op.value).toString('base64');
    if ('flags' in op && op.flags !== undefined) kv.Flags = op.flags;
    if ('index' in op) kv.Index = Number(op.index);
    if ('session' in op) kv.Session = op.session;
    return { KV: kv };
  });
}

/** The request size of a txn, to compare with TXN_MAX_BYTES before sending it. */
export function txnSize(ops: readonly TxnOp[]): number {
  return Buffer.byteLength(JSON.stringify(encodeTxnOps(ops)));
}

function index(v: unknown): bigint | undefined {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return BigInt(v);
  if (typeof v === 'string' && /^\d+$/.test(v)) return BigInt(v);
  return undefined;
}

/** Entries from a KV read or txn results; an error names what was malformed. */
export function decodeEntries(body: unknown): { ok: true; value: KvEntry[] } | { ok: false; error: string } {
  if (body === undefined || body === null) return { ok: true, value: [] };
  if (!Array.isArray(body)) return { ok: false, error: 'answer is not a list of KV entries' };
  const out: KvEntry[] = [];
  for (const raw of body as unknown[]) {
    const e = (raw ?? {}) as Record<string, unknown>;
    const createIndex = index(e.CreateIndex);
    const modifyIndex = index(e.ModifyIndex);
    if (typeof e.Key !== 'string' || createIndex === undefined || modifyIndex === undefined)
      return { ok: false, error: 'a KV entry lacks Key, CreateIndex or ModifyIndex' };
    if (e.Value !== null && e.Value !== undefined && typeof e.Value !== 'string')
      return { ok: false, error: `KV entry ${e.Key} has a non-base64 Value` };
    out.push({
      key: e.Key,
      value: typeof e.Value === 'string' ? Buffer.from(e.Value, 'base64') : Buffer.alloc(0),
      flags: typeof e.Flags === 'number' ? e.Flags : 0,
      createIndex,
      modifyIndex,
      lockIndex: index(e.LockIndex) ?? 0n,
      ...(typeof e.Session === 'string' && e.Session !== '' ? { session: e.Session } : {}),
    });
  }
  return { ok: true, value: out };
}
