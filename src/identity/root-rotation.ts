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
import type { WorkloadSigner } from './workload-signer.ts';
import type { Reconciler } from '../control/reconciler.ts';

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
}

export interface RotationOutcome {
  readonly phase: 'begin' | 'complete';
  /** Sidecars that had not ACKed the new bundle when the wait ended (they will get it on reconnect). */
  readonly lagging: readonly string[];
}

function laggingSidecars(d: RootRotationDeps): string[] {
  return d.statuses
    .all()
    .filter((s) => s.types.has(SECRET) && s.types.get(SECRET)?.ackedVersion !== d.cache.get(s.nodeId, SECRET)?.version)
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

export async function rotateRoot(d: RootRotationDeps, phase: 'begin' | 'complete'): Promise<Result<RotationOutcome>> {
  if (phase === 'begin') {
    const begun = d.ca.beginRootRotation();
    if (!begun.ok) return begun;
    const lagging = await pushBundleAndWait(d);
    d.signer.adviseRenewal();
    // The serving certificate keeps its old-root chain during the overlap, until agents have
    // written the new bundle for their Envoys (they poll it); it moves to the new root at `complete`.
    d.onRootsChanged?.('begin');
    return ok({ phase, lagging });
  }
  const completed = d.ca.completeRootRotation();
  if (!completed.ok) return completed;
  d.onRootsChanged?.('complete');
  return ok({ phase, lagging: await pushBundleAndWait(d) });
}
