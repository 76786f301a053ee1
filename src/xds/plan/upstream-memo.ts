// Shares what an upstream gives every caller alike (generate/upstream-shared.ts) between the sidecars
// a plan generates, and between plans: the same inputs (the very same objects: views keep what did
// not change) give the very same resources, which the resource pool then prepares once, by identity,
// instead of serialising and hashing them again per caller. An apply that makes 700 callers of a
// hub plan again generates each of their other upstreams' clusters and assignments not at all.
import type { Resource } from '../generate/types.ts';
import type { ShareUpstream, UpstreamInputs } from '../generate/upstream-shared.ts';

/**
 * Past this many entries the memo starts over (most are then of objects no view holds any more): a
 * mesh of 5000 sidecars has a few thousand distinct upstreams, and an entry holds its JSON bodies.
 */
const MAX_ENTRIES = 10_000;

export class UpstreamMemo {
  private readonly ids = new WeakMap<object, number>();
  private nextId = 1;
  private entries = new Map<string, readonly Resource[]>();

  readonly share: ShareUpstream = (inputs, make) => {
    const key = this.key(inputs);
    let hit = this.entries.get(key);
    if (!hit) {
      if (this.entries.size >= MAX_ENTRIES) this.entries = new Map();
      this.entries.set(key, (hit = make(inputs)));
    }
    return hit;
  };

  /** Every input, objects by identity. */
  private key(i: UpstreamInputs): string {
    const { service, namespace, port } = i.upstream;
    const locality = i.locality ? JSON.stringify(i.locality) : '';
    return [
      service,
      namespace,
      port,
      this.id(i.port),
      this.id(i.mesh),
      this.id(i.endpoints),
      this.id(i.policy),
      i.transport,
      i.mtls,
      i.sdsDir ?? '',
      locality,
    ].join('\u0000');
  }

  private id(o: object | undefined): number {
    if (!o) return 0;
    let id = this.ids.get(o);
    if (!id) this.ids.set(o, (id = this.nextId++));
    return id;
  }
}
