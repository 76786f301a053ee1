// `apply --wait`: after a change, poll GET /v1/proxy-status until every connected sidecar whose
// served versions changed has ACKed them, or one has NACKed them (Envoy's error text is the answer),
// or the timeout passes. The polls ask only for sidecars not in sync (a SYNCED one has nothing left
// to wait for), so each stays small however many sidecars are connected.
import { AlreadyReported, callAdmin } from './cli-support.ts';
import type { OperatorCredential } from './credential.ts';

export interface TypeSync {
  readonly state: 'SYNCED' | 'STALE' | 'NACKED' | 'NOT SENT';
  readonly current?: string;
  readonly nack?: { readonly version: string; readonly error: string; readonly at: string };
}

export interface SidecarSync {
  readonly node: string;
  readonly transport: string;
  readonly connectedSince: string;
  readonly ageSeconds: number;
  readonly types: Readonly<Record<string, TypeSync>>;
}

/** Pending: only sidecars with a type STALE or NACKED. */
export async function fetchProxyStatus(cred: OperatorCredential, pending = false): Promise<SidecarSync[]> {
  const res = await callAdmin(
    cred,
    'GET',
    pending ? '/v1/proxy-status?state=STALE,NACKED' : '/v1/proxy-status',
  );
  if (!res) throw new AlreadyReported();
  return (res.json as { sidecars: SidecarSync[] }).sidecars;
}

/** node → type → the version served before the change. */
export type ServedVersions = ReadonlyMap<string, Readonly<Record<string, string | undefined>>>;

export function servedVersions(sidecars: readonly SidecarSync[]): ServedVersions {
  return new Map(
    sidecars.map((s) => [
      s.node,
      Object.fromEntries(Object.entries(s.types).map(([t, v]) => [t, v.current])),
    ]),
  );
}

/** The node/type pairs whose served version differs from `before`, with their state now. */
function affected(
  before: ServedVersions,
  now: readonly SidecarSync[],
): Array<{ node: string; type: string; sync: TypeSync }> {
  const out: Array<{ node: string; type: string; sync: TypeSync }> = [];
  for (const s of now) {
    for (const [type, sync] of Object.entries(s.types)) {
      if (sync.state === 'NOT SENT' || sync.current === undefined) continue;
      if (before.get(s.node)?.[type] !== sync.current) out.push({ node: s.node, type, sync });
    }
  }
  return out;
}

export interface WaitOutcome {
  readonly ok: boolean;
  /** What to print: one line per NACK, or the sidecars still pending at the timeout. */
  readonly lines: readonly string[];
  readonly sidecars: number;
}

export async function waitForSidecars(
  cred: OperatorCredential,
  before: ServedVersions,
  timeoutMs: number,
  pollMs = 200,
): Promise<WaitOutcome> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pending = affected(before, await fetchProxyStatus(cred, true));
    const nodes = new Set(pending.map((p) => p.node)).size;
    const nacked = pending.filter((p) => p.sync.state === 'NACKED');
    if (nacked.length) {
      return {
        ok: false,
        sidecars: nodes,
        lines: nacked.map(
          (p) =>
            `${p.node} rejected ${p.type} version ${p.sync.current}: ${p.sync.nack?.error ?? '(no error text)'}`,
        ),
      };
    }
    const stale = pending.filter((p) => p.sync.state !== 'SYNCED');
    if (stale.length === 0) {
      // Every one in sync: once, the whole answer, to count the sidecars the change reached.
      const reached = new Set(affected(before, await fetchProxyStatus(cred)).map((p) => p.node));
      return { ok: true, sidecars: reached.size, lines: [] };
    }
    if (Date.now() >= deadline) {
      const which = [...new Set(stale.map((p) => p.node))].map(
        (n) =>
          `${n} (${stale
            .filter((p) => p.node === n)
            .map((p) => p.type)
            .join(', ')})`,
      );
      return {
        ok: false,
        sidecars: nodes,
        lines: [`timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${which.join('; ')} to ACK`],
      };
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
