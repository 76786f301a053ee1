// Versioned per-sidecar snapshots. The only place versions are computed: a type's version is the
// hash of its resources' names and content hashes, so the same state gives the same versions after
// a restart and sidecars that reconnect see no churn.
import { hash } from 'node:crypto';
import type { PreparedResource } from '../resources/prepared.ts';
import { PUSH_ORDER, type TypeUrl } from '../resources/type-urls.ts';

export interface TypeSnapshot {
  readonly typeUrl: TypeUrl;
  readonly version: string;
  readonly resources: ReadonlyMap<string, PreparedResource>;
  /** When this version entered the cache (performance.now()), for push-latency metrics. */
  readonly publishedAt: number;
}

export type SnapshotListener = (snapshot: TypeSnapshot) => void;

export function typeVersion(resources: Iterable<PreparedResource>): string {
  const parts: string[] = [];
  for (const r of resources) parts.push(`${r.name}\u0000${r.hash}`);
  // One-shot hash: every endpoint push computes a version per affected sidecar.
  return hash('sha256', parts.sort().join('\n')).slice(0, 16);
}

/** The very same objects by name (resources are interned: one object per content). */
function sameResources(
  held: ReadonlyMap<string, PreparedResource>,
  next: ReadonlyMap<string, PreparedResource>,
): boolean {
  if (held.size !== next.size) return false;
  for (const [name, r] of next) if (held.get(name) !== r) return false;
  return true;
}

export class SnapshotCache {
  private readonly nodes = new Map<string, Map<TypeUrl, TypeSnapshot>>();
  private readonly listeners = new Map<string, Set<SnapshotListener>>();

  /**
   * Replaces a node's resources of the given types; types not named keep what they have. Listeners
   * hear of each changed type in push order (clusters before endpoints before listeners before
   * routes), which is what lets a sidecar make new config before it breaks the old.
   */
  set(node: string, byType: Partial<Record<TypeUrl, readonly PreparedResource[]>>): TypeUrl[] {
    const current = this.nodes.get(node) ?? new Map<TypeUrl, TypeSnapshot>();
    this.nodes.set(node, current);
    const changed: TypeUrl[] = [];
    for (const typeUrl of PUSH_ORDER) {
      const list = byType[typeUrl];
      if (!list) continue;
      // By name once: a name given twice is held once, and the version is of what is held.
      const resources = new Map(list.map((r) => [r.name, r]));
      const held = current.get(typeUrl);
      // The very same objects need no hashing.
      if (held && sameResources(held.resources, resources)) continue;
      const version = typeVersion(resources.values());
      if (held?.version === version) continue;
      current.set(typeUrl, { typeUrl, version, resources, publishedAt: performance.now() });
      changed.push(typeUrl);
    }
    for (const typeUrl of changed) for (const l of this.listeners.get(node) ?? []) l(current.get(typeUrl)!);
    return changed;
  }

  get(node: string, typeUrl: TypeUrl): TypeSnapshot | undefined {
    return this.nodes.get(node)?.get(typeUrl);
  }

  has(node: string): boolean {
    return this.nodes.has(node);
  }

  nodeIds(): string[] {
    return [...this.nodes.keys()];
  }

  /** Every resource any node holds, so the resource pool can drop the rest. */
  liveResources(): Set<PreparedResource> {
    const live = new Set<PreparedResource>();
    for (const types of this.nodes.values())
      for (const s of types.values()) for (const r of s.resources.values()) live.add(r);
    return live;
  }

  delete(node: string): void {
    this.nodes.delete(node);
  }

  watch(node: string, listener: SnapshotListener): () => void {
    const set = this.listeners.get(node) ?? new Set();
    set.add(listener);
    this.listeners.set(node, set);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(node);
    };
  }
}
