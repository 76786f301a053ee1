// The read endpoints of the double: each gives the index a blocking query waits on and the body,
// computed when the query answers (after any wait), filtered as Consul filters it.
import { compileFilter } from './filter.ts';
import type { Predicate } from './filter.ts';
import { catalogServiceJson, healthEntryJson } from './render.ts';
import type { CatalogState, ServiceRecord } from './state.ts';

export type Access = 'management' | 'read' | 'anonymous';

export interface ReadBody {
  readonly body: unknown;
  readonly filtered: boolean;
  /** 200 unless set (KV answers 404 when nothing matches, with the index headers still set). */
  readonly status?: number;
  /** Sent as-is instead of JSON (`?raw`). */
  readonly raw?: Buffer;
}

export interface ReadResult {
  /** The index the answer carries (X-Consul-Index); a query whose index is past it answers at once. */
  readonly index: () => number;
  /** What a held query waits on to pass its index; `index` unless the endpoint watches less than it reports. */
  readonly wakeIndex?: () => number;
  readonly body: (access: Access) => ReadBody;
}

function filterOf(q: URLSearchParams): Predicate {
  const expr = q.get('filter');
  return expr ? compileFilter(expr) : () => true;
}

/** `GET /v1/health/service/:name` with `passing`, `tag`, `node-meta` and `filter`. */
export function healthService(state: CatalogState, name: string, ns: string, q: URLSearchParams): ReadResult {
  const filter = filterOf(q);
  const tags = q.getAll('tag');
  const passing =
    q.has('passing') && !['0', 'false', 'f', 'F', 'FALSE', 'False'].includes(q.get('passing') ?? '');
  const nodeMeta = q.getAll('node-meta').map((kv) => kv.split(':', 2) as [string, string?]);
  return {
    index: () => state.serviceIndex(ns, name),
    body: (access) => {
      if (access === 'anonymous') return { body: [], filtered: state.instances(ns, name).length > 0 };
      const entries = state
        .instances(ns, name)
        .filter((s) => tags.every((t) => s.tags.includes(t)))
        .filter((s) => nodeMeta.every(([k, v]) => state.nodes.get(s.node)?.meta[k] === (v ?? '')))
        .filter((s) => !passing || state.checksFor(s).every((c) => c.status === 'passing'))
        .map((s) => healthEntryJson(state, s))
        .filter(filter);
      return { body: entries, filtered: false };
    },
  };
}

/** `GET /v1/catalog/services`: name → union of tags. */
export function catalogServices(state: CatalogState, ns: string, q: URLSearchParams): ReadResult {
  const filter = filterOf(q);
  return {
    index: () => state.catalogIndex(),
    body: (access) => {
      if (access === 'anonymous') return { body: {}, filtered: state.services.size > 0 };
      const out: Record<string, string[]> = {};
      const all = [...state.services.values()].filter(
        (s) => s.namespace === ns && filter(catalogServiceJson(state, s)),
      );
      for (const s of all.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
        out[s.name] = [...new Set([...(out[s.name] ?? []), ...s.tags])].sort();
      }
      return { body: out, filtered: false };
    },
  };
}

/** `GET /v1/catalog/service/:name` with `tag` and `filter`. */
export function catalogService(
  state: CatalogState,
  name: string,
  ns: string,
  q: URLSearchParams,
): ReadResult {
  const filter = filterOf(q);
  const tags = q.getAll('tag');
  return {
    index: () => state.serviceIndex(ns, name),
    body: (access) => {
      if (access === 'anonymous') return { body: [], filtered: state.instances(ns, name).length > 0 };
      const list = state
        .instances(ns, name)
        .filter((s: ServiceRecord) => tags.every((t) => s.tags.includes(t)));
      return { body: list.map((s) => catalogServiceJson(state, s)).filter(filter), filtered: false };
    },
  };
}
