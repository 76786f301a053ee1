// `/v1/kv/<key>`: GET (one key, `?recurse`, `?keys` with `separator`, `?raw`, blocking), PUT (`cas`,
// `flags`, `acquire`, `release`; answers true/false), DELETE (`recurse`, `cas`), with Consul's
// statuses: 404 when nothing matches, 400 for a missing key or conflicting flags, 413 past 512 KiB.
import { HttpError, sendJson, uintParam } from './http.ts';
import { invalidKvKey, kvJson } from './kv-render.ts';
import { KV_MAX_VALUE_SIZE, KvOpError } from './kv-store.ts';
import type { KvEntry, KvStore } from './kv-store.ts';
import type { ReadResult } from './reads.ts';
import type { RouteContext, RouteFamily } from './route.ts';
import { methodNotAllowed } from './route.ts';

const PREFIX = '/v1/kv/';

export function kvRoutes(kv: KvStore): RouteFamily {
  return {
    matches: (path) => path.startsWith(PREFIX),
    handle: async (ctx) => {
      const key = decodeURIComponent(ctx.path.slice(PREFIX.length));
      if (key !== '') {
        const reason = invalidKvKey(key);
        if (reason) throw new HttpError(400, reason);
      }
      if (ctx.method === 'GET')
        await ctx.read(ctx.q.has('keys') ? keysRead(kv, key, ctx) : getRead(kv, key, ctx));
      else if (ctx.method === 'PUT') put(kv, key, ctx);
      else if (ctx.method === 'DELETE') del(kv, key, ctx);
      else methodNotAllowed(ctx.method, ['GET', 'PUT', 'DELETE']);
    },
  };
}

/** Consul's conflictingFlags: more than one of `flags` present is a 400 naming the whole query. */
function conflicting(q: URLSearchParams, flags: readonly string[]): void {
  if (flags.filter((f) => q.has(f)).length < 2) return;
  const sorted = new URLSearchParams([...q.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  throw new HttpError(400, `Conflicting flags: ${sorted.toString()}\n`);
}

function prefixRead(kv: KvStore, prefix: string): Pick<ReadResult, 'index' | 'wakeIndex'> {
  return {
    index: () => Math.max(1, kv.prefixIndex(prefix) || kv.tableIndex),
    wakeIndex: () => kv.prefixIndex(prefix),
  };
}

function getRead(kv: KvStore, key: string, ctx: RouteContext): ReadResult {
  if (ctx.q.has('recurse')) {
    return {
      ...prefixRead(kv, key),
      body: (access) => {
        const all = kv.list(key);
        // Default-deny ACLs: the anonymous token sees nothing, and is told results were filtered.
        const visible = access === 'anonymous' ? [] : all;
        const filtered = visible.length < all.length;
        return visible.length === 0
          ? { body: undefined, filtered, status: 404 }
          : { body: visible.map((e) => kvJson(e)), filtered };
      },
    };
  }
  if (key === '') throw new HttpError(400, 'Missing key name');
  return {
    index: () => kv.get(key)?.modifyIndex ?? Math.max(1, kv.tableIndex),
    wakeIndex: () => kv.keyIndex(key),
    body: (access) => {
      if (access === 'anonymous')
        throw new HttpError(
          403,
          `Permission denied: anonymous token lacks permission 'key:read' on "${key}"`,
        );
      const entry = kv.get(key);
      if (!entry) return { body: undefined, filtered: false, status: 404 };
      if (ctx.q.has('raw')) return { body: undefined, filtered: false, raw: entry.value };
      return { body: [kvJson(entry)], filtered: false };
    },
  };
}

function keysRead(kv: KvStore, prefix: string, ctx: RouteContext): ReadResult {
  const sep = ctx.q.get('separator') ?? ctx.q.get('seperator') ?? '';
  return {
    ...prefixRead(kv, prefix),
    body: (access) => {
      const all = kv.list(prefix);
      const visible: KvEntry[] = access === 'anonymous' ? [] : all;
      const keys: string[] = [];
      for (const e of visible) {
        const cut = sep === '' ? -1 : e.key.indexOf(sep, prefix.length);
        const k = cut === -1 ? e.key : e.key.slice(0, cut + sep.length);
        if (keys.at(-1) !== k) keys.push(k);
      }
      const filtered = visible.length < all.length;
      // The root answers an empty list; any other prefix with no keys is a 404.
      if (keys.length === 0 && prefix !== '') return { body: undefined, filtered, status: 404 };
      return { body: keys, filtered };
    },
  };
}

function put(kv: KvStore, key: string, ctx: RouteContext): void {
  ctx.requireWrite('key:write');
  if (key === '') throw new HttpError(400, 'Missing key name');
  conflicting(ctx.q, ['cas', 'acquire', 'release']);
  const flags = uintParam(ctx.q, 'flags') ?? 0;
  const cas = uintParam(ctx.q, 'cas');
  if (ctx.body.length > KV_MAX_VALUE_SIZE)
    throw new HttpError(
      413,
      `Request body(${ctx.body.length} bytes) too large, max size: ${KV_MAX_VALUE_SIZE} bytes. See https://developer.hashicorp.com/docs/agent/config/config-files#kv_max_value_size.`,
    );
  const input = { key, value: ctx.body, flags };
  const acquire = ctx.q.get('acquire');
  const release = ctx.q.get('release');
  let applied: boolean;
  try {
    if (acquire !== null) {
      // Lock-delay is enforced before the write reaches raft: a refused lock costs no index.
      applied = !kv.lockDelayed(key) && kv.write((w) => ok(w.lock({ ...input, session: acquire })));
    } else if (release !== null) {
      applied = kv.write((w) => ok(w.unlock({ ...input, session: release })));
    } else if (cas !== undefined) {
      applied = kv.write((w) => ok(w.cas({ ...input, index: cas })));
    } else {
      applied = kv.write((w) => ok(w.set(input)));
    }
  } catch (err) {
    if (err instanceof KvOpError) throw new HttpError(500, err.message);
    throw err;
  }
  sendJson(ctx.res, 200, applied);
}

function ok(entry: KvEntry | undefined): { commit: boolean; value: boolean } {
  return { commit: entry !== undefined, value: entry !== undefined };
}

function del(kv: KvStore, key: string, ctx: RouteContext): void {
  ctx.requireWrite('key:write');
  conflicting(ctx.q, ['recurse', 'cas']);
  const cas = uintParam(ctx.q, 'cas');
  if (!ctx.q.has('recurse') && key === '') throw new HttpError(400, 'Missing key name');
  let result = true;
  if (cas !== undefined) {
    result = kv.write((w) => {
      const done = w.deleteCas(key, cas);
      return { commit: done, value: done };
    });
  } else if (ctx.q.has('recurse')) {
    kv.write((w) => ({ commit: true, value: w.deleteTree(key) }));
  } else {
    kv.write((w) => ({ commit: true, value: w.delete(key) }));
  }
  sendJson(ctx.res, 200, result);
}
