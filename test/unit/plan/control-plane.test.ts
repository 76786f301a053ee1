// The control plane's one ordered path for changes, and what happens to sidecars that go away.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ControlPlane } from '../../../src/xds/plan/control-plane.ts';
import { Reconciler } from '../../../src/xds/plan/reconciler.ts';
import { ok, type Result } from '../../../src/errors.ts';
import type { CommitRequest } from '../../../src/store/backend.ts';
import { FileStore } from '../../../src/store/file-store.ts';
import { StateStore } from '../../../src/store/store.ts';
import { SnapshotCache } from '../../../src/xds/cache/snapshot.ts';
import { DEFAULT_SDS_DIR } from '../../../src/xds/generate/secrets.ts';
import type { Resource } from '../../../src/xds/generate/types.ts';
import { CLUSTER, LISTENER, SECRET } from '../../../src/xds/resources/type-urls.ts';
import type { ConnectContext } from '../../../src/xds/server/hooks.ts';
import { SotwStream } from '../../../src/xds/server/sotw-stream.ts';
import { StatusRegistry } from '../../../src/xds/status.ts';
import { assignedAddresses, EMR_NODE, hisEndpoints, meshManifests } from './fixtures.ts';

/** A file store whose next save waits until the test lets it finish. */
class GatedFileStore extends FileStore {
  private gate: Promise<void> | undefined;
  private open: (() => void) | undefined;
  saving: Promise<void> = Promise.resolve();
  private startedSaving: (() => void) | undefined;

  holdNextSave(): void {
    this.gate = new Promise((resolve) => (this.open = resolve));
    this.saving = new Promise((resolve) => (this.startedSaving = resolve));
  }

  release(): void {
    this.open?.();
  }

  override async commit(c: CommitRequest): Promise<Result<void>> {
    this.startedSaving?.();
    await this.gate;
    this.gate = undefined;
    return super.commit(c);
  }
}

const emrNode = { id: EMR_NODE, cluster: 'emr', metadata: {}, userAgent: 'test' };
const ads: ConnectContext = { transport: 'ads', peer: 'test' };

describe('ControlPlane: one ordered publish path for applies and endpoints', () => {
  let dir: string;
  let files: GatedFileStore;
  let cache: SnapshotCache;
  let cp: ControlPlane;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clinimesh-cp-'));
    files = new GatedFileStore(dir);
    cache = new SnapshotCache();
    cp = new ControlPlane(new StateStore(files), new Reconciler(cache));
    expect((await cp.start()).ok).toBe(true);
    await cp.updateEndpoints(hisEndpoints('10.0.0.1'));
    expect((await cp.apply(meshManifests())).ok).toBe(true);
  });

  afterEach(async () => {
    cp.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('publishes the planned endpoints', () => {
    expect(assignedAddresses(cache, EMR_NODE)).toEqual(['10.0.0.1']);
  });

  it('keeps what a sidecar said when it connects while an apply is being saved', async () => {
    files.holdNextSave();
    const applying = cp.apply(meshManifests('r2'));
    await files.saving;
    // EMR connects now as a proxyless gRPC client, after the apply was planned for an Envoy.
    const connected = cp.hooks.connect({ ...emrNode, metadata: { 'clinimesh.proxyless': true } }, ads);
    expect(connected.ok).toBe(true);
    files.release();
    expect((await applying).ok).toBe(true);
    // Not an Envoy's listeners: the apply's publish planned it again as what it said it is.
    const listeners = [...(cache.get(EMR_NODE, LISTENER)?.resources.keys() ?? [])];
    expect(listeners.filter((l) => l.startsWith('inbound|'))).toEqual([]);
  });

  it('keeps an endpoint change that lands while an apply is being saved', async () => {
    files.holdNextSave();
    const applying = cp.apply(meshManifests('r2'));
    await files.saving;
    // Consul moves HIS while the apply (planned with 10.0.0.1) waits on the disk.
    // It does not wait for the apply: only a publish in progress holds the queue.
    await cp.updateEndpoints(hisEndpoints('10.0.0.2'));
    expect(assignedAddresses(cache, EMR_NODE)).toEqual(['10.0.0.2']);
    files.release();
    const applied = await applying;
    expect(applied.ok && applied.value.changed).toBe(true);
    expect(assignedAddresses(cache, EMR_NODE)).toEqual(['10.0.0.2']);
  });

  it('re-plans through the same queue when a discovered service gains an instance mid-save', async () => {
    files.holdNextSave();
    const applying = cp.apply(meshManifests('r3'));
    await files.saving;
    const grown = {
      ...hisEndpoints('10.0.0.1'),
      endpoints: [...hisEndpoints('10.0.0.1').endpoints, ...hisEndpoints('10.0.0.3', 'his-2').endpoints],
    };
    const moved = cp.updateEndpoints(grown);
    files.release();
    await applying;
    await moved;
    expect(assignedAddresses(cache, EMR_NODE).sort()).toEqual(['10.0.0.1', '10.0.0.3']);
  });

  it('coalesces endpoint sets that queue behind an apply: the latest per service wins', async () => {
    files.holdNextSave();
    const applying = cp.apply(meshManifests('r4'));
    await files.saving;
    const first = cp.updateEndpoints(hisEndpoints('10.0.0.4'));
    const second = cp.updateEndpoints(hisEndpoints('10.0.0.5'));
    expect(second).toBe(first);
    files.release();
    await applying;
    await second;
    expect(assignedAddresses(cache, EMR_NODE)).toEqual(['10.0.0.5']);
  });
});

/**
 * A started control plane with the EMR → HIS mesh applied and mutual TLS between sidecars (the
 * config names where each agent keeps the workload secret).
 */
async function meshWithSecrets(options?: { releaseAfterMs: number }) {
  const cache = new SnapshotCache();
  const reconciler = new Reconciler(cache);
  reconciler.useSecrets({
    trustBundlePem: () => '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----',
  });
  const cp = new ControlPlane(new StateStore(), reconciler, undefined, undefined, options);
  await cp.start();
  await cp.updateEndpoints(hisEndpoints('10.0.0.1'));
  expect((await cp.apply(meshManifests())).ok).toBe(true);
  return { cache, reconciler, cp };
}

describe('ControlPlane: disconnected sidecars', () => {
  let cache: SnapshotCache;
  let reconciler: Reconciler;
  let cp: ControlPlane;

  beforeEach(async () => {
    ({ cache, reconciler, cp } = await meshWithSecrets({ releaseAfterMs: 60_000 }));
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  });

  afterEach(() => {
    vi.useRealTimers();
    cp.stop();
  });

  const connect = (ctx: ConnectContext = ads): Result<string> => cp.hooks.connect(emrNode, ctx);

  it('are released once the grace period passes', () => {
    expect(connect()).toEqual(ok(EMR_NODE));
    expect(reconciler.connectedSidecars()).toEqual([EMR_NODE]);
    cp.hooks.disconnect!(EMR_NODE, ads);
    vi.advanceTimersByTime(59_000);
    expect(reconciler.connectedSidecars()).toEqual([EMR_NODE]);
    vi.advanceTimersByTime(2_000);
    expect(reconciler.connectedSidecars()).toEqual([]);
    expect(cp.connectedNodes()).toEqual([]);
    // Still declared by the state: its snapshot stays for when it comes back.
    expect(cache.has(EMR_NODE)).toBe(true);
  });

  it('are kept while another stream of the same node is open, and when they return in time', () => {
    connect();
    connect();
    cp.hooks.disconnect!(EMR_NODE, ads);
    vi.advanceTimersByTime(120_000);
    expect(reconciler.connectedSidecars()).toEqual([EMR_NODE]);
    cp.hooks.disconnect!(EMR_NODE, ads);
    vi.advanceTimersByTime(30_000);
    connect();
    vi.advanceTimersByTime(120_000);
    expect(reconciler.connectedSidecars()).toEqual([EMR_NODE]);
  });

  it('counts a REST poller as one session until it is swept', () => {
    const rest: ConnectContext = { transport: 'rest', peer: 'test' };
    connect(rest);
    connect(rest);
    cp.hooks.disconnect!(EMR_NODE, rest);
    vi.advanceTimersByTime(61_000);
    expect(reconciler.connectedSidecars()).toEqual([]);
  });

  it('forgets a sidecar the state no longer declares', async () => {
    connect();
    vi.useRealTimers();
    expect((await cp.delete([{ kind: 'Service', namespace: 'clinical', name: 'emr' }])).ok).toBe(true);
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    cp.hooks.disconnect!(EMR_NODE, ads);
    vi.advanceTimersByTime(61_000);
    expect(reconciler.connectedSidecars()).toEqual([]);
    expect(reconciler.sidecar(EMR_NODE)).toBeUndefined();
    expect(cache.has(EMR_NODE)).toBe(false);
  });

  it('that reconnect within the grace period are sent nothing again', () => {
    const statuses = new StatusRegistry();
    const sent: Buffer[] = [];
    const io = { send: (b: Buffer) => sent.push(b) > 0, close: () => undefined };
    const first = new SotwStream(cache, cp.hooks, statuses, ads, io);
    first.onRequest({
      node: emrNode,
      versionInfo: '',
      resourceNames: [],
      typeUrl: CLUSTER,
      responseNonce: '',
    });
    expect(sent).toHaveLength(1);
    const version = cache.get(EMR_NODE, CLUSTER)!.version;
    first.onRequest({ versionInfo: version, resourceNames: [], typeUrl: CLUSTER, responseNonce: '1' });
    first.close();
    vi.advanceTimersByTime(30_000);
    const second = new SotwStream(cache, cp.hooks, statuses, ads, io);
    second.onRequest({
      node: emrNode,
      versionInfo: version,
      resourceNames: [],
      typeUrl: CLUSTER,
      responseNonce: '',
    });
    expect(sent).toHaveLength(1);
    expect(cache.get(EMR_NODE, CLUSTER)!.version).toBe(version);
    expect(statuses.all()[0]!.types.get(CLUSTER)!.heldVersion).toBe(version);
    second.close();
  });
});

describe("ControlPlane: a connecting sidecar's first plan", () => {
  let cache: SnapshotCache;
  let reconciler: Reconciler;
  let cp: ControlPlane;

  beforeEach(async () => {
    ({ cache, reconciler, cp } = await meshWithSecrets());
  });

  afterEach(() => cp.stop());

  const connectWithSdsDir = (dir: string) =>
    cp.hooks.connect({ ...emrNode, metadata: { 'clinimesh.sds_dir': dir } }, ads);
  const secretPaths = (): string[] =>
    ([CLUSTER, LISTENER] as const).flatMap((t) =>
      [...cache.get(EMR_NODE, t)!.resources.values()].flatMap(
        (r) => JSON.stringify(r.json()).match(/"path":"[^"]*\/default\.json"/g) ?? [],
      ),
    );

  it('is the plan its apply made when the agent keeps its secrets in the default directory', () => {
    const prepared: Resource[] = [];
    const prepare = reconciler.pool.prepare.bind(reconciler.pool);
    vi.spyOn(reconciler.pool, 'prepare').mockImplementation((r) => (prepared.push(r), prepare(r)));
    expect(connectWithSdsDir(DEFAULT_SDS_DIR).ok).toBe(true);
    // Only the trust bundle, which connecting adds: no cluster or listener is generated again.
    expect(prepared.map((r) => r.typeUrl)).toEqual([SECRET]);
    expect(secretPaths().length).toBeGreaterThan(0);
    expect(secretPaths().every((p) => p.includes(`${DEFAULT_SDS_DIR}/`))).toBe(true);
  });

  it('names the directory an agent keeps its secrets in elsewhere', () => {
    expect(connectWithSdsDir('/srv/emr-1/sds').ok).toBe(true);
    expect(secretPaths().length).toBeGreaterThan(0);
    expect(secretPaths().every((p) => p.includes('/srv/emr-1/sds/'))).toBe(true);
  });
});
