// Consul's blocking-query semantics for every read endpoint: `index` and `wait` validated, the query
// held until the endpoint's index passes the caller's (or wait + up to wait/16 passes, or the caller
// leaves), then answered with X-Consul-Index (never below 1), KnownLeader, LastContact and the
// effective consistency.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { BadRequest } from './agent-api.ts';
import { parseGoDuration } from './duration.ts';
import { HttpError, sendJson } from './http.ts';
import type { Access, ReadResult } from './reads.ts';
import type { CatalogState } from './state.ts';

const DEFAULT_WAIT_MS = 5 * 60_000;
const MAX_WAIT_MS = 10 * 60_000;

export interface BlockingHost {
  readonly state: CatalogState;
  /** Held queries; each entry ends its query when called (the double drops them all on stop). */
  readonly waiters: Set<() => void>;
  running(): boolean;
  knownLeader(): boolean;
  readonly datacenter: string;
}

export async function answerRead(
  host: BlockingHost,
  req: IncomingMessage,
  res: ServerResponse,
  q: URLSearchParams,
  authorize: () => Access,
  result: ReadResult,
): Promise<void> {
  void req;
  const dc = q.get('dc');
  if (dc && dc !== host.datacenter) throw new HttpError(500, 'No path to datacenter');
  if (q.has('stale') && q.has('consistent'))
    throw new BadRequest('Cannot specify ?stale with ?consistent, conflicting semantics.');
  const indexText = q.get('index');
  if (indexText !== null && !/^\d+$/.test(indexText)) throw new BadRequest('Invalid index');
  const waitText = q.get('wait');
  const waitMs = waitText === null ? DEFAULT_WAIT_MS : parseGoDuration(waitText);
  if (waitMs === undefined || waitMs < 0) throw new BadRequest('Invalid wait time');
  const access = authorize();
  const minIndex = indexText === null ? 0 : Number(indexText);
  if (minIndex > 0 && result.index() <= minIndex)
    await block(host, result.wakeIndex ?? result.index, minIndex, Math.min(waitMs, MAX_WAIT_MS), res);
  if (res.destroyed || !host.running()) return;
  const { body, filtered, status, raw } = result.body(access);
  res.setHeader('X-Consul-Index', String(Math.max(1, result.index())));
  res.setHeader('X-Consul-KnownLeader', String(host.knownLeader()));
  res.setHeader('X-Consul-LastContact', '0');
  res.setHeader(
    'X-Consul-Effective-Consistency',
    q.has('stale') ? 'stale' : q.has('consistent') ? 'consistent' : 'leader',
  );
  res.setHeader('X-Consul-Query-Backend', 'blocking-query');
  if (filtered) res.setHeader('X-Consul-Results-Filtered-By-ACLs', 'true');
  if (raw) {
    res.writeHead(200, {
      'content-type': 'text/plain',
      'content-length': raw.length,
      'x-content-type-options': 'nosniff',
      'content-security-policy': 'sandbox',
    });
    res.end(raw);
    return;
  }
  sendJson(res, status ?? 200, body);
}

/** Holds until `index` passes `minIndex`, `wait` (+ up to wait/16) passes, or the client leaves. */
function block(
  host: BlockingHost,
  index: () => number,
  minIndex: number,
  waitMs: number,
  res: ServerResponse,
): Promise<void> {
  if (index() > minIndex) return Promise.resolve();
  return new Promise((resolve) => {
    const finish = (): void => {
      clearTimeout(timer);
      unsubscribe();
      res.off('close', finish);
      host.waiters.delete(finish);
      resolve();
    };
    const timer = setTimeout(finish, waitMs + Math.random() * (waitMs / 16));
    const unsubscribe = host.state.onChange(() => {
      if (index() > minIndex) finish();
    });
    res.on('close', finish);
    host.waiters.add(finish);
  });
}
