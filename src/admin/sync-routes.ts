// GET /v1/proxy-status: each connected sidecar's sync state per xDS type, judged against what the
// cache holds for it now (istioctl's proxy-status): SYNCED (it ACKed the current version), NACKED
// (it rejected the current version; Envoy's text is kept), STALE (the current version is not ACKed
// yet: in flight, or not yet sent) or NOT SENT (it never asked for that type). `?state=STALE,NACKED`
// answers only the sidecars with a type in one of those states: `apply --wait` polls that, since the
// whole answer is megabytes at thousands of sidecars.
import { fail, ok, type Result } from '../errors.ts';
import type { SnapshotCache } from '../xds/cache/snapshot.ts';
import { PUSH_ORDER, shortName, type TypeUrl } from '../xds/resources/type-urls.ts';
import { hasVersion, type SidecarStatus, type StatusTransport, type TypeStatus } from '../xds/status.ts';
import type { AdminCall } from './deps.ts';
import { send, sendProblems } from './respond.ts';

export const SYNC_STATES = ['SYNCED', 'STALE', 'NACKED', 'NOT SENT'] as const;
export type SyncState = (typeof SYNC_STATES)[number];

export interface TypeSync {
  readonly state: SyncState;
  /** The version the cache holds for this sidecar now. */
  readonly current?: string;
  readonly sent?: string;
  readonly acked?: string;
  /** Envoy's error text, when the current version was rejected. */
  readonly nack?: { readonly version: string; readonly error: string; readonly at: string };
}

export interface SidecarSync {
  readonly node: string;
  readonly transport: StatusTransport;
  readonly connectedSince: string;
  readonly ageSeconds: number;
  readonly types: Readonly<Record<string, TypeSync>>;
}

export function typeSync(current: string | undefined, t: TypeStatus | undefined): TypeSync {
  const base = { current, sent: t?.sentVersion, acked: t?.ackedVersion };
  // A sidecar that reconnected already holding the current version was sent nothing: in sync.
  if (current !== undefined && hasVersion(t, current)) return { ...base, state: 'SYNCED' };
  if (!t || (t.sentVersion === undefined && t.ackedVersion === undefined && !t.lastNack))
    return { ...base, state: 'NOT SENT' };
  if (t.lastNack && t.lastNack.version === current) {
    return {
      ...base,
      state: 'NACKED',
      nack: { version: t.lastNack.version, error: t.lastNack.error, at: t.lastNack.at },
    };
  }
  return { ...base, state: 'STALE' };
}

export function sidecarSync(cache: SnapshotCache, s: SidecarStatus, now = Date.now()): SidecarSync {
  const types: Record<string, TypeSync> = {};
  for (const t of PUSH_ORDER as readonly TypeUrl[])
    types[shortName(t)] = typeSync(cache.get(s.nodeId, t)?.version, s.types.get(t));
  const ageSeconds = Math.max(0, Math.round((now - Date.parse(s.connectedSince)) / 1000));
  return { node: s.nodeId, transport: s.transport, connectedSince: s.connectedSince, ageSeconds, types };
}

/** The states `?state=` names (comma-separated; `NOT_SENT` may stand for `NOT SENT`), or a problem. */
export function stateFilter(raw: string | null): Result<ReadonlySet<SyncState> | undefined> {
  if (raw === null) return ok(undefined);
  const states = new Set<SyncState>();
  for (const word of raw.split(',')) {
    const state = SYNC_STATES.find((s) => s === word.trim().toUpperCase().replace('_', ' '));
    if (!state)
      return fail([
        {
          code: 'SCHEMA',
          field: 'state',
          message: `unknown sync state "${word}": expected a comma-separated list of ${SYNC_STATES.join(', ')}`,
        },
      ]);
    states.add(state);
  }
  return ok(states);
}

export function proxyStatus(call: AdminCall): void {
  const { deps } = call;
  const filter = stateFilter(call.url.searchParams.get('state'));
  if (!filter.ok) return sendProblems(call.res, filter.errors, 400);
  const wanted = filter.value;
  const sidecars = deps.statuses
    .all()
    .map((s) => sidecarSync(deps.cache, s))
    .filter((s) => !wanted || Object.values(s.types).some((t) => wanted.has(t.state)))
    .sort((a, b) => a.node.localeCompare(b.node) || a.connectedSince.localeCompare(b.connectedSince));
  send(call.res, 200, { revision: deps.controlPlane.state().revision, sidecars });
}
