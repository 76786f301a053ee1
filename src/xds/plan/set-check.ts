// Where an apply's cross-document check runs. A change to a few documents is checked in place, for
// what reaches them only (checkManifestChange); small sets are checked whole in place; large ones on
// a worker thread, so the event loop (health checks, xDS streams, endpoint pushes) keeps moving while
// thousands of documents are checked. A worker that cannot start falls back to checking in place,
// once and for all.
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Problem } from '../../errors.ts';
import { log } from '../../log.ts';
import { checkManifestChange } from '../../manifest/check-change.ts';
import { checkManifestSet } from '../../manifest/index.ts';
import type { Manifest } from '../../manifest/types.ts';
import type { SetChecker } from '../../store/store.ts';

/** Below this many documents the check takes a few milliseconds: a worker round trip costs more. */
const WORKER_THRESHOLD = 500;
/** Up to this many touched documents, checking what reaches them costs less than a worker round trip. */
const CHANGE_THRESHOLD = 50;
/**
 * A worker idle this long is let go: its isolate keeps ~100 MiB (at 2500 services) for checks that
 * come rarely (large applies), and starting another takes well under a second.
 */
export const WORKER_IDLE_MS = 10_000;

const logger = log.child({ component: 'control-plane' });

export function checkInPlace(manifests: readonly Manifest[]): Promise<readonly Problem[]> {
  return Promise.resolve(checkManifestSet(manifests));
}

export class WorkerSetChecker {
  private worker: Worker | undefined;
  private idle: NodeJS.Timeout | undefined;
  private broken = false;
  private nextId = 1;
  private readonly waiting = new Map<
    number,
    { resolve: (p: readonly Problem[]) => void; manifests: readonly Manifest[] }
  >();

  readonly check: SetChecker = (manifests, touched, previous) => {
    if (touched && touched.length <= CHANGE_THRESHOLD)
      return Promise.resolve(checkManifestChange(manifests, touched, previous));
    if (manifests.length < WORKER_THRESHOLD || this.broken) return checkInPlace(manifests);
    const worker = this.start();
    if (!worker) return checkInPlace(manifests);
    clearTimeout(this.idle);
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, { resolve, manifests });
      worker.postMessage({ id, manifests });
    });
  };

  constructor(private readonly idleMs = WORKER_IDLE_MS) {}

  /** Whether a worker thread is running now (for tests). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  stop(): void {
    clearTimeout(this.idle);
    void this.worker?.terminate();
    this.worker = undefined;
  }

  /** Lets an idle worker go; the next large check starts another. */
  private retire(): void {
    const worker = this.worker;
    this.worker = undefined;
    worker?.removeAllListeners('exit');
    void worker?.terminate();
  }

  private start(): Worker | undefined {
    if (this.worker) return this.worker;
    const here = fileURLToPath(import.meta.url);
    try {
      const script = new URL(`./set-check-worker${extname(here)}`, import.meta.url);
      // From TypeScript sources (tsx, test runners) the worker registers tsx's loader first.
      const worker =
        extname(here) === '.ts'
          ? new Worker(
              `import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(script.href)}); });`,
              { eval: true },
            )
          : new Worker(script);
      worker.unref();
      worker.on('message', (m: { id: number; problems: Problem[] }) => {
        this.waiting.get(m.id)?.resolve(m.problems);
        this.waiting.delete(m.id);
        if (this.waiting.size === 0) this.idle = setTimeout(() => this.retire(), this.idleMs).unref();
      });
      worker.on('error', (e) => this.fail(e));
      worker.on('exit', () => this.fail(new Error('worker exited')));
      this.worker = worker;
      return worker;
    } catch (e) {
      this.fail(e as Error);
      return undefined;
    }
  }

  /** The worker is gone: answer what it held in place, and never start another. */
  private fail(e: Error): void {
    if (!this.broken && this.worker)
      logger.warn({ error: e.message }, 'manifest-check worker unavailable; checking on the main thread');
    this.broken = true;
    this.worker = undefined;
    for (const { resolve, manifests } of this.waiting.values()) resolve(checkManifestSet(manifests));
    this.waiting.clear();
  }
}
