// Desired state in Consul KV, shared by every replica (`serve --store consul`). Layout under the
// prefix (default `clinimesh/`):
//   state/revision                         {"revision": n, "time": …}: the check-and-set anchor
//   state/manifests/<Kind>/<ns or _>/<name> one manifest as JSON
//   history/…, tokens/<kind>/<id>           see consul-records.ts
// A commit is ONE /v1/txn: a `cas` on the revision key at the ModifyIndex this replica last saw,
// plus set/delete of only the manifests that changed and the history entry. Another replica's
// commit in between makes the cas (and so the whole txn) fail: a CONFLICT, never a lost update.
// Each replica blocks on the revision key and, when it moves, reads the state tree at one index.
import { fail, ok, type Problem, type Result } from '../errors.ts';
import { manifestId, type Manifest } from '../manifest/types.ts';
import {
  staleBase,
  type CommitRequest,
  type RecordKind,
  type RecordSet,
  type StateBackend,
  type StoredState,
} from './backend.ts';
import type { ConsulKv } from './consul-kv.ts';
import { TXN_MAX_BYTES, TXN_MAX_OPS, txnSize, type KvEntry, type TxnOp } from './consul-kv.ts';
import { watchKv, type KvWatch } from './consul-kv-watch.ts';
import { ConsulHistory, ConsulRecordSet, historyKey } from './consul-records.ts';

export const DEFAULT_STORE_PREFIX = 'clinimesh';

export interface ConsulBackendOptions {
  /** Where the keys live; ends with `/` (added when missing). */
  readonly prefix?: string;
  /** `consul://127.0.0.1:8500`, for problems and logs. */
  readonly address: string;
  /** Blocking-query wait for the watches (default 5 min). */
  readonly waitMs?: number;
}

/** `Service clinical/his` → `Service/clinical/his`; a cluster-scoped `Mesh default` → `Mesh/_/default`. */
export function manifestKeyPath(id: string): string {
  const space = id.indexOf(' ');
  const kind = id.slice(0, space);
  const rest = id.slice(space + 1);
  const slash = rest.indexOf('/');
  return slash < 0 ? `${kind}/_/${rest}` : `${kind}/${rest.slice(0, slash)}/${rest.slice(slash + 1)}`;
}

function parseJson(entry: KvEntry): unknown {
  try {
    return JSON.parse(entry.value.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

export class ConsulBackend implements StateBackend {
  readonly kind = 'consul' as const;
  /** Manifests one commit may change (the rest of a txn's 64 operations: revision and history). */
  readonly maxChangesPerCommit = TXN_MAX_OPS - 2;
  readonly location: string;
  readonly prefix: string;
  readonly history: ConsulHistory;
  private readonly kv: ConsulKv;
  /** The latest revision this replica knows of, and its key's ModifyIndex (the cas anchor). */
  private known = { revision: 0, index: 0n };
  private readonly sets = new Map<RecordKind, ConsulRecordSet>();
  private readonly watches = new Set<KvWatch>();

  constructor(
    kv: ConsulKv,
    private readonly o: ConsulBackendOptions,
  ) {
    this.kv = kv;
    const prefix = o.prefix ?? DEFAULT_STORE_PREFIX;
    this.prefix = prefix.endsWith('/') ? prefix : `${prefix}/`;
    this.location = `${o.address}/v1/kv/${this.prefix}`;
    this.history = new ConsulHistory(kv, this.prefix);
  }

  private get revisionKey(): string {
    return `${this.prefix}state/revision`;
  }

  private get manifestsDir(): string {
    return `${this.prefix}state/manifests/`;
  }

  /** Reads the whole state tree at one index. */
  async load(): Promise<Result<StoredState | undefined>> {
    const read = await this.kv.list(`${this.prefix}state/`);
    if (!read.ok) return fail(read.errors.map((p) => this.unavailable(p)));
    const revisionEntry = read.value.value.find((e) => e.key === this.revisionKey);
    if (!revisionEntry) return ok(undefined);
    const rev = (parseJson(revisionEntry) as { revision?: unknown } | undefined)?.revision;
    if (typeof rev !== 'number')
      return fail([
        { code: 'CONSUL', resource: this.revisionKey, message: 'the revision key is not {"revision": n}' },
      ]);
    const manifests: Manifest[] = [];
    for (const e of read.value.value) {
      if (!e.key.startsWith(this.manifestsDir)) continue;
      const m = parseJson(e);
      if (typeof m !== 'object' || m === null)
        return fail([{ code: 'CONSUL', resource: e.key, message: 'not a manifest (JSON object)' }]);
      manifests.push(m as Manifest);
    }
    if (rev > this.known.revision) this.known = { revision: rev, index: revisionEntry.modifyIndex };
    return ok({ revision: rev, manifests });
  }

  async commit(c: CommitRequest): Promise<Result<void>> {
    if (c.base !== this.known.revision) return fail([staleBase(this.location, c.base, this.known.revision)]);
    const ops: TxnOp[] = [
      {
        verb: 'cas',
        key: this.revisionKey,
        value: JSON.stringify({ revision: c.revision, time: c.history?.time ?? new Date().toISOString() }),
        index: this.known.index,
      },
      ...c.upserts.map((m): TxnOp => ({
        verb: 'set',
        key: this.manifestKey(manifestId(m)),
        value: JSON.stringify(m),
      })),
      ...c.removed.map((id): TxnOp => ({ verb: 'delete', key: this.manifestKey(id) })),
      ...(c.history
        ? [
            {
              verb: 'set',
              key: historyKey(this.prefix, c.history),
              value: JSON.stringify(c.history),
            } as const,
          ]
        : []),
    ];
    const tooLarge = this.tooLarge(ops, c);
    if (tooLarge) return fail([tooLarge]);
    const done = await this.kv.txn(ops);
    if (!done.ok) return fail(done.errors.map((p) => this.unavailable(p)));
    if (!done.value.committed) {
      const casLost = done.value.errors.some((e) => e.opIndex === 0);
      if (casLost) return fail([staleBase(this.location, c.base, undefined)]);
      return fail(
        done.value.errors.map((e) => ({
          code: 'CONSUL',
          resource: ops[e.opIndex]?.key,
          message: `txn rolled back: ${e.what}`,
        })),
      );
    }
    const written = done.value.results.find((e) => e.key === this.revisionKey);
    if (c.revision > this.known.revision)
      this.known = { revision: c.revision, index: written?.modifyIndex ?? this.known.index };
    return ok(undefined);
  }

  /** Blocks on the revision key; when another replica moved it, reads the state and hands it over. */
  watch(onRemote: (state: StoredState) => void): () => void {
    const watch = watchKv(this.kv, this.revisionKey, {
      ...(this.o.waitMs ? { waitMs: this.o.waitMs } : {}),
      onChange: async (entries) => {
        const rev = entries[0] && (parseJson(entries[0]) as { revision?: unknown } | undefined)?.revision;
        if (typeof rev !== 'number' || rev <= this.known.revision) return;
        const loaded = await this.load();
        if (loaded.ok && loaded.value) onRemote(loaded.value);
      },
    });
    this.watches.add(watch);
    return () => {
      this.watches.delete(watch);
      void watch.stop();
    };
  }

  records(kind: RecordKind): RecordSet {
    let set = this.sets.get(kind);
    if (!set) {
      set = new ConsulRecordSet(
        this.kv,
        `${this.prefix}tokens/${kind === 'admin-tokens' ? 'admin' : 'join'}/`,
      );
      this.sets.set(kind, set);
    }
    return set;
  }

  async close(): Promise<void> {
    await Promise.all([...this.watches].map((w) => w.stop()));
    this.watches.clear();
  }

  private manifestKey(id: string): string {
    return this.manifestsDir + manifestKeyPath(id);
  }

  /** One txn holds at most 64 operations and 512 KiB: a larger change is refused, saying how to split it. */
  private tooLarge(ops: readonly TxnOp[], c: CommitRequest): Problem | undefined {
    const bytes = txnSize(ops);
    if (ops.length <= TXN_MAX_OPS && bytes <= TXN_MAX_BYTES) return undefined;
    const room = TXN_MAX_OPS - (ops.length - c.touched.length);
    return {
      code: 'SCHEMA',
      resource: 'apply',
      message: `this change touches ${c.touched.length} manifests (${Math.ceil(bytes / 1024)} KiB); one Consul transaction takes at most ${TXN_MAX_OPS} operations and ${TXN_MAX_BYTES / 1024} KiB, so apply it in parts of at most ${room} manifests`,
    };
  }

  /** A Consul failure names the shared store (the admin API answers CONSUL problems with 503). */
  private unavailable(p: Problem): Problem {
    return { ...p, message: `${p.message} (shared store ${this.location})` };
  }
}
