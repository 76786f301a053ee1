// What the scenarios share: the running control plane with its sidecars, one way to make an
// endpoint change and know which sidecars must ACK it, the server's push counters, settled memory
// readings, and the steady-state check.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import type { EndpointSet } from '../src/discovery/endpoints.ts';
import type { RunningControlPlane } from '../src/main.ts';
import type { Manifest } from '../src/manifest/index.ts';
import { hasVersion, type StatusRegistry } from '../src/xds/status.ts';
import { CLUSTER, ENDPOINT, LISTENER, ROUTE, SECRET, type TypeUrl } from '../src/xds/resources/type-urls.ts';
import { EndpointBatcher } from '../src/discovery/endpoint-batcher.ts';
import type { AckTracker, Change } from './ack-tracker.ts';
import type { BenchMesh } from './mesh-gen.ts';
import type { SimulatorPool } from './workers.ts';

export interface BenchContext {
  readonly cp: RunningControlPlane;
  readonly mesh: BenchMesh;
  /** The manifests in force now (applies edit them one Service at a time). */
  readonly manifests: Manifest[];
  /** Bytes of EDS responses sent, by transport (SotW or delta). */
  readonly bytes: TransportBytes;
  /** Sidecars on incremental (delta) ADS. */
  readonly deltaNodes: ReadonlySet<string>;
  readonly tracker: AckTracker;
  readonly pool: SimulatorPool;
  /** The endpoints each service has now; every change builds on the last one. */
  readonly endpoints: Map<string, EndpointSet>;
}

export interface MadeChange {
  readonly change: Change;
  /** Wall-clock start, comparable with the simulators' receipt times. */
  readonly wallStart: number;
}

/**
 * Endpoint changes, made through an EndpointBatcher built exactly as `startControlPlane` builds the
 * one Consul feeds (same class, same defaults): an isolated change goes at once, a burst is coalesced
 * the way Consul churn is. When the sets reach the cache, each change learns which sidecars must ACK
 * which EDS version: "affected" is read from the mesh (who calls the service), narrowed to the
 * sidecars whose version actually moved.
 */
export class EndpointChanges {
  private unflushed: Array<{ change: Change; service: string }> = [];
  private readonly batcher: EndpointBatcher;
  /** Batches the batcher flushed, and how long each `updateEndpoints` call ran. */
  flushes = 0;
  readonly syncMs: number[] = [];

  /**
   * Batches are handed over one after another: a batch's "before" versions must be read after the
   * previous batch reached the cache, or a flap and its flap back (A→B→A on one sidecar) would look
   * like no change and the push of A would be owed to no one. The control plane publishes in order
   * anyway, so this adds no wait of its own.
   */
  private publishing: Promise<void> = Promise.resolve();

  constructor(private readonly ctx: BenchContext) {
    this.batcher = new EndpointBatcher((sets) => {
      const changes = this.unflushed.splice(0);
      const run = () => this.publish(sets, changes);
      this.publishing = this.publishing.then(run, run);
    });
  }

  viaBatcher(id: number, set: EndpointSet): MadeChange {
    const made = this.make(id, set);
    this.unflushed.push({ change: made.change, service: set.service });
    this.batcher.update(set);
    return made;
  }

  stop(): void {
    this.batcher.stop();
  }

  private make(id: number, set: EndpointSet): MadeChange {
    const startedAt = performance.now();
    this.ctx.endpoints.set(set.service, set);
    return { change: this.ctx.tracker.open(id, startedAt), wallStart: performance.timeOrigin + startedAt };
  }

  private async publish(
    sets: readonly EndpointSet[],
    changes: ReadonlyArray<{ change: Change; service: string }>,
  ): Promise<void> {
    const { cp, mesh } = this.ctx;
    const consumers = [...new Set(sets.flatMap((s) => mesh.consumers.get(s.service) ?? []))];
    const before = consumers.map((n) => cp.cache.get(n, ENDPOINT)?.version);
    const t0 = performance.now();
    await cp.controlPlane.updateEndpoints(sets);
    this.syncMs.push(performance.now() - t0);
    this.flushes++;
    const moved = new Map<string, string>();
    consumers.forEach((n, i) => {
      const now = cp.cache.get(n, ENDPOINT)?.version;
      if (now !== undefined && now !== before[i]) moved.set(n, now);
    });
    for (const { change, service } of changes) {
      const mine = new Map(
        (mesh.consumers.get(service) ?? []).flatMap((n) =>
          moved.has(n) ? [[n, moved.get(n)!] as const] : [],
        ),
      );
      this.ctx.tracker.expect(change, mine);
    }
  }
}

/**
 * EDS bytes sent per transport, read where every push is recorded (the StatusRegistry's `pushed`),
 * so SotW and delta sidecars answering the same change can be compared.
 */
export class TransportBytes {
  sotw = 0;
  delta = 0;

  constructor(statuses: StatusRegistry) {
    const pushed = statuses.pushed.bind(statuses);
    statuses.pushed = (s, typeUrl, version, nonce, bytes, counts) => {
      pushed(s, typeUrl, version, nonce, bytes, counts);
      if (typeUrl !== ENDPOINT) return;
      if (s.transport === 'delta') this.delta += bytes;
      else this.sotw += bytes;
    };
  }
}

export interface PushCounters {
  readonly pushes: number;
  readonly bytes: number;
}

/** EDS responses and their bytes sent so far, from the server's own Prometheus counters. */
export async function edsCounters(cp: RunningControlPlane): Promise<PushCounters> {
  const sum = async (c: typeof cp.metrics.pushes) =>
    (await c.get()).values.filter((v) => v.labels.type === 'EDS').reduce((n, v) => n + v.value, 0);
  return { pushes: await sum(cp.metrics.pushes), bytes: await sum(cp.metrics.pushBytes) };
}

let gcFn: (() => void) | undefined;
/** `npm run bench` cannot pass --expose-gc through tsx, so it is switched on at run time. */
function collectGarbage(): void {
  if (!gcFn) {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as () => void;
  }
  gcFn();
  gcFn();
}

export function settledMemory(): NodeJS.MemoryUsage {
  collectGarbage();
  return process.memoryUsage();
}

/** Sidecars that ACKed the version the cache holds for every type they subscribe to. */
export function steadySidecars(cp: RunningControlPlane): number {
  const steady = new Set<string>();
  for (const s of cp.statuses.all()) {
    const ok = ([SECRET, CLUSTER, ENDPOINT, LISTENER, ROUTE] as TypeUrl[]).every((t) => {
      const snapshot = cp.cache.get(s.nodeId, t);
      // A sidecar with only TCP upstreams has no route configuration to ask for (nor secrets, without mTLS).
      if ((t === ROUTE || t === SECRET) && (!snapshot || snapshot.resources.size === 0)) return true;
      // A delta stream with nothing to send holds the version without a response to ACK.
      return snapshot !== undefined && hasVersion(s.types.get(t), snapshot.version);
    });
    if (ok) steady.add(s.nodeId);
  }
  return steady.size;
}

/** Polls (bounded in time) until `want` sidecars are steady; resolves with when that happened. */
export async function waitSteady(
  cp: RunningControlPlane,
  want: number,
  timeoutMs: number,
  pollMs = 250,
): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  let seen = 0;
  while (performance.now() < deadline) {
    seen = steadySidecars(cp);
    if (seen >= want) return performance.now();
    await new Promise((r) => setTimeout(r, pollMs));
  }
  throw new Error(`only ${seen} of ${want} sidecars reached steady state within ${timeoutMs} ms`);
}
