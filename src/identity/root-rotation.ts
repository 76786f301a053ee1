// Root rotation with traffic flowing. Begin: the new root joins the trust bundle everywhere first;
// only once sidecars have ACKed that bundle are node agents advised to renew (from the new root), so
// no peer ever meets a certificate it cannot verify. Complete: the old root leaves the bundle. Agents
// poll the bundle too, so Envoy's own trust in the control plane follows before `complete`.
import { setTimeout as sleep } from 'node:timers/promises';
import { ok, type Result } from '../errors.ts';
import type { CertificateAuthority } from '../ca/index.ts';
import type { SnapshotCache } from '../xds/cache/snapshot.ts';
import { SECRET } from '../xds/resources/type-urls.ts';
import type { StatusRegistry } from '../xds/status.ts';
import type { SignerState, WorkloadSigner } from './workload-signer.ts';
import type { Reconciler } from '../xds/plan/reconciler.ts';
import { formatProblem } from '../errors.ts';
import { log as rootLog, type Logger } from '../log.ts';

export interface RootRotationDeps {
  readonly ca: CertificateAuthority;
  readonly signer: WorkloadSigner;
  readonly reconciler: Reconciler;
  readonly cache: SnapshotCache;
  readonly statuses: StatusRegistry;
  /** How long to wait for sidecars to ACK the new bundle before re-issuing anyway. */
  readonly ackTimeoutMs?: number;
  /** The control plane's own client trust (begin) and serving certificate (complete) follow the roots. */
  readonly onRootsChanged?: (phase: 'begin' | 'complete') => void;
  /** Default the process logger. */
  readonly log?: Logger;
  /**
   * Replicas sharing the CA: each step's signer state is recorded before the rotation goes on, so
   * every replica pauses and advises alike, and a new leader can finish a rotation its predecessor
   * began (`finishRootRotation`).
   */
  readonly shared?: { record(step: RotationStep, signer: SignerState): Promise<Result<void>> };
}

/** Where a rotation stands: `awaiting-acks` between a begin and its advice to renew. */
export type RotationStep = 'awaiting-acks' | 'idle';

export interface RotationOutcome {
  readonly phase: 'begin' | 'complete';
  /** Sidecars that had not ACKed the new bundle when the wait ended (they will get it on reconnect). */
  readonly lagging: readonly string[];
}

function laggingSidecars(d: RootRotationDeps): string[] {
  return d.statuses
    .all()
    .filter(
      (s) =>
        s.types.has(SECRET) && s.types.get(SECRET)?.ackedVersion !== d.cache.get(s.nodeId, SECRET)?.version,
    )
    .map((s) => s.nodeId);
}

async function pushBundleAndWait(d: RootRotationDeps): Promise<string[]> {
  for (const node of d.cache.nodeIds()) d.reconciler.refreshSecrets(node);
  const deadline = Date.now() + (d.ackTimeoutMs ?? 15_000);
  let lagging = laggingSidecars(d);
  while (lagging.length && Date.now() < deadline) {
    await sleep(50);
    lagging = laggingSidecars(d);
  }
  return lagging;
}

/** Fingerprints only: what an operator compares with `clinimesh` output and the CA files. */
function roots(d: RootRotationDeps) {
  const ca = d.ca.describe();
  return { root: ca.root.fingerprint256, previousRoots: ca.previousRoots.map((r) => r.fingerprint256) };
}

/**
 * The second half of `begin`: the new bundle pushed and ACKed, then agents advised to renew. A new
 * leader runs it when the rotation state says its predecessor stopped in between.
 */
export async function finishRootRotation(d: RootRotationDeps): Promise<Result<RotationOutcome>> {
  const log = (d.log ?? rootLog).child({ component: 'ca', phase: 'begin' });
  const lagging = await pushBundleAndWait(d);
  if (lagging.length)
    log.warn(
      { lagging: lagging.length, sidecars: lagging.slice(0, 20) },
      'sidecars did not ACK the new trust bundle in time; they get it when they reconnect',
    );
  d.signer.adviseRenewal();
  const recorded = (await d.shared?.record('idle', d.signer.sharedState())) ?? ok(undefined);
  if (!recorded.ok) return recorded;
  log.info({ lagging: lagging.length }, 'node agents advised to renew from the new root');
  return ok({ phase: 'begin', lagging });
}

export async function rotateRoot(
  d: RootRotationDeps,
  phase: 'begin' | 'complete',
): Promise<Result<RotationOutcome>> {
  const log = (d.log ?? rootLog).child({ component: 'ca', phase });
  const refused = <T>(r: Result<T> & { ok: false }) => {
    log.warn({ reasons: r.errors.map(formatProblem) }, 'root rotation refused');
    return r;
  };
  if (phase === 'begin') {
    // No certificate from the new root until every sidecar trusts it: signing waits for the ACKs.
    d.signer.pause();
    // Recorded first: every replica pauses too, and a new leader knows to finish what this begins.
    const paused = (await d.shared?.record('awaiting-acks', d.signer.sharedState())) ?? ok(undefined);
    const begun = paused.ok ? await d.ca.beginRootRotation() : paused;
    if (!begun.ok) {
      d.signer.resume();
      await d.shared?.record('idle', d.signer.sharedState());
      return refused(begun);
    }
    // The control plane accepts new-root clients at once; its serving certificate keeps its old-root
    // chain during the overlap, until agents have written the new bundle for their Envoys (they poll
    // it); it moves to the new root at `complete`.
    d.onRootsChanged?.('begin');
    log.info(roots(d), 'root rotation begun: the new root joins the trust bundle');
    return finishRootRotation(d);
  }
  const completed = await d.ca.completeRootRotation();
  if (!completed.ok) return refused(completed);
  d.onRootsChanged?.('complete');
  log.info(
    roots(d),
    'root rotation complete: the old root left the trust bundle, the control plane serves from the new root',
  );
  const lagging = await pushBundleAndWait(d);
  if (lagging.length)
    log.warn(
      { lagging: lagging.length, sidecars: lagging.slice(0, 20) },
      'sidecars did not ACK the trust bundle without the old root in time',
    );
  return ok({ phase, lagging });
}
