// The desired-state store: manifests in force, a revision that grows by one per real change, and
// change notifications. Changes are proposed (validated as a whole set) and then committed, so a
// bad document in a batch means nothing of the batch is applied; an identical apply is a no-op.
import { fail, ok, type Problem, type Result } from '../errors.ts';
import { checkManifestSet } from '../manifest/index.ts';
import { manifestId, type Manifest, type ManifestKind } from '../manifest/types.ts';
import {
  isStaleBase,
  staleBase,
  type CommitNote,
  type HistoryEntry,
  type StateBackend,
  type StoredState,
} from './backend.ts';
import { SerialWriter } from './durable-file.ts';
import { MemoryBackend } from './memory-backend.ts';
import { buildState, nextState, type DesiredState } from './state.ts';

export interface ManifestRef {
  readonly kind: ManifestKind;
  readonly name: string;
  readonly namespace?: string;
}

export interface Change {
  readonly apply?: readonly Manifest[];
  readonly delete?: readonly ManifestRef[];
}

/**
 * Every cross-document problem of a whole manifest set (`checkManifestSet`, wherever it runs).
 * `touched` names the documents that differ from the committed set `previous` (by manifest id),
 * which passed this check: a checker may look only at what reaches them (`checkManifestChange`).
 */
export type SetChecker = (
  manifests: readonly Manifest[],
  touched?: readonly string[],
  previous?: ReadonlyMap<string, Manifest>,
) => Promise<readonly Problem[]>;

export interface Proposal {
  readonly state: DesiredState;
  readonly manifests: readonly Manifest[];
  /** The same by manifest id: what the store holds once committed (not keyed again per commit). */
  readonly byId: ReadonlyMap<string, Manifest>;
  readonly changed: boolean;
  /** Ids (`Service clinical/his`) of manifests added, changed or removed. */
  readonly touched: readonly string[];
}

/** Manifests compared without where they came from: re-applying the same content is no change. */
function canonical(m: Manifest): string {
  return JSON.stringify(m, (k, v: unknown) => (k === 'origin' ? undefined : v));
}

/** Where a commit was made: here, or on another replica (seen through the backend's watch). */
export interface CommitOrigin {
  readonly remote: boolean;
}

export type StateListener = (state: DesiredState, touched: readonly string[], origin: CommitOrigin) => void;

export class StateStore {
  private manifests: ReadonlyMap<string, Manifest> = new Map<string, Manifest>();
  private state: DesiredState = buildState(0, []);
  private readonly listeners = new Set<StateListener>();
  /** Local commits and remote catch-ups take turns, so revisions reach listeners in order. */
  private readonly turns = new SerialWriter();
  private unwatch: () => void = () => undefined;

  constructor(readonly backend: StateBackend = new MemoryBackend()) {}

  /** Restores what was last committed, then follows commits made elsewhere (shared backends). */
  async restore(): Promise<Result<void>> {
    const loaded = await this.backend.load();
    if (!loaded.ok) return loaded;
    if (loaded.value) this.adopt(loaded.value, false);
    this.unwatch();
    this.unwatch = this.backend.watch((state) => void this.catchUp(state));
    return ok(undefined);
  }

  /** Stops following the backend (the backend itself is closed by whoever opened it). */
  close(): void {
    this.unwatch();
    this.unwatch = () => undefined;
  }

  /**
   * Takes a newer state committed elsewhere, exactly as a local commit: listeners hear it with what
   * it touched. Older or equal revisions (our own commits, seen again by the watch) are ignored.
   */
  catchUp(remote: StoredState): Promise<void> {
    return this.turns.run(() => {
      if (remote.revision > this.state.revision) this.adopt(remote, true);
      return Promise.resolve();
    });
  }

  private adopt(stored: StoredState, notify: boolean): void {
    const next = new Map(stored.manifests.map((m) => [manifestId(m), m]));
    const touched = notify
      ? [...new Set([...this.manifests.keys(), ...next.keys()])].filter((id) => this.differs(id, next))
      : [];
    this.manifests = next;
    this.state = buildState(stored.revision, stored.manifests);
    if (notify) for (const l of this.listeners) l(this.state, touched, { remote: true });
  }

  /** Whether the store moved since `p` was proposed (a commit elsewhere): propose again on top. */
  moved(p: Proposal): boolean {
    return p.state.revision !== this.state.revision + 1;
  }

  current(): DesiredState {
    return this.state;
  }

  list(): Manifest[] {
    return [...this.manifests.values()];
  }

  /** The committed manifest with this id (`manifestId`), if any. */
  get(id: string): Manifest | undefined {
    return this.manifests.get(id);
  }

  propose(change: Change): Result<Proposal> {
    const next = this.nextManifests(change);
    if (!next.ok) return next;
    const { byId } = next.value;
    return this.finishProposal(byId, checkManifestSet([...byId.values()]));
  }

  /**
   * `propose` with the whole-set check done by `checkSet` (e.g. on a worker thread, so a large
   * apply does not hold the event loop while its cross-document rules are checked).
   */
  async proposeWith(change: Change, checkSet: SetChecker): Promise<Result<Proposal>> {
    const next = this.nextManifests(change);
    if (!next.ok) return next;
    const { byId, ids } = next.value;
    const base = this.state;
    // Comparing thousands of documents is sliced too, yielding to the event loop in between. Only
    // the documents the change names can differ.
    const touched: string[] = [];
    let sliceStart = performance.now();
    for (const id of ids) {
      if (this.differs(id, byId)) touched.push(id);
      else this.keepCommitted(id, byId);
      if (performance.now() - sliceStart > 20) {
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
    }
    const problems = await checkSet([...byId.values()], touched, this.manifests);
    if (problems.length) return fail(problems);
    if (this.state !== base)
      return fail([
        {
          code: 'CONFLICT',
          message: `state moved to revision ${this.state.revision} while this change was checked`,
        },
      ]);
    return ok(this.proposal(byId, touched));
  }

  /** The manifest set after `change`, and the ids of the documents it names. */
  private nextManifests(change: Change): Result<{ byId: Map<string, Manifest>; ids: Set<string> }> {
    const next = new Map(this.manifests);
    const ids = new Set<string>();
    const missing = (change.delete ?? []).filter((ref) => {
      const id = manifestId(ref);
      ids.add(id);
      return !next.delete(id);
    });
    if (missing.length)
      return fail(
        missing.map((ref) => ({
          code: 'NOT_FOUND',
          resource: manifestId(ref),
          message: 'no such manifest to delete',
        })),
      );
    for (const m of change.apply ?? []) {
      const id = manifestId(m);
      ids.add(id);
      next.set(id, m);
    }
    return ok({ byId: next, ids });
  }

  private finishProposal(next: Map<string, Manifest>, problems: readonly Problem[]): Result<Proposal> {
    if (problems.length) return fail(problems);
    const touched = [...new Set([...this.manifests.keys(), ...next.keys()])].filter((id) =>
      this.differs(id, next),
    );
    return ok(this.proposal(next, touched));
  }

  /**
   * A document applied again with the same content stays the very object committed, so what
   * derives from it (views, memoised endpoints, node ids) is found unchanged by identity.
   */
  private keepCommitted(id: string, next: Map<string, Manifest>): void {
    const committed = this.manifests.get(id);
    if (committed && next.has(id)) next.set(id, committed);
  }

  private differs(id: string, next: ReadonlyMap<string, Manifest>): boolean {
    const a = this.manifests.get(id);
    const b = next.get(id);
    return !a || !b || (a !== b && canonical(a) !== canonical(b));
  }

  private proposal(next: Map<string, Manifest>, touched: string[]): Proposal {
    const manifests = [...next.values()];
    const changed = touched.length > 0;
    const state = changed
      ? nextState(this.state, this.state.revision + 1, this.manifests, next, touched)
      : this.state;
    return { state, manifests, byId: next, changed, touched };
  }

  /**
   * Persists first (only what changed, with its history entry), then makes the proposal current
   * and tells listeners; a no-op when unchanged. When the backend says another replica committed
   * first, the store catches up and answers CONFLICT: `moved(p)` is then true and the caller may
   * propose the change again on top.
   */
  commit(p: Proposal, note?: CommitNote, now = new Date()): Promise<Result<boolean>> {
    if (!p.changed) return Promise.resolve(ok(false));
    return this.turns.run(async () => {
      const base = this.state.revision;
      if (p.state.revision !== base + 1) {
        return fail([staleBase('this replica', p.state.revision - 1, base)]);
      }
      const next = p.byId;
      const upserts = p.touched.flatMap((id) => next.get(id) ?? []);
      const removed = p.touched.filter((id) => !next.has(id));
      const history: HistoryEntry | undefined = note && {
        time: now.toISOString(),
        author: { tokenId: note.author.tokenId, name: note.author.name },
        role: note.role,
        action: note.action,
        revision: p.state.revision,
        touched: p.touched,
        ...(note.detail ? { detail: note.detail } : {}),
      };
      const saved = await this.backend.commit({
        base,
        revision: p.state.revision,
        upserts,
        removed,
        touched: p.touched,
        manifests: p.manifests,
        ...(history ? { history } : {}),
      });
      if (!saved.ok) {
        if (isStaleBase(saved.errors)) await this.refresh();
        return saved;
      }
      this.manifests = next;
      this.state = p.state;
      for (const l of this.listeners) l(p.state, p.touched, { remote: false });
      return ok(true);
    });
  }

  /** Reads the backend again and takes what is newer (after a lost commit race). */
  private async refresh(): Promise<void> {
    const loaded = await this.backend.load();
    if (loaded.ok && loaded.value && loaded.value.revision > this.state.revision)
      this.adopt(loaded.value, true);
  }

  subscribe(listener: StateListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
}
