// Make before break, shared by the SotW and delta streams: a removed cluster is kept until the
// listeners and routes that used it are held by the client at the cache's current version.
import type { SnapshotCache } from '../cache/snapshot.ts';
import { LISTENER, ROUTE, type TypeUrl } from '../resources/type-urls.ts';
import { hasVersion, type SidecarStatus } from '../status.ts';

/** Listeners or routes the client subscribes to but does not hold at the cache's current version. */
export function routesPending(
  cache: SnapshotCache,
  key: string,
  status: SidecarStatus,
  subscribed: (typeUrl: TypeUrl) => boolean,
): boolean {
  return ([LISTENER, ROUTE] as const).some((t) => {
    const current = cache.get(key, t);
    return subscribed(t) && current !== undefined && !hasVersion(status.types.get(t), current.version);
  });
}
