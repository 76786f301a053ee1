// The mesh's SPIFFE trust domain: the CA's, fixed when it was made. An admin may migrate it
// (POST /v1/ca/trust-domain): the CA records the new one, the control plane serves under it, the
// stored Mesh follows, and agents are advised to renew. Until they have, credentials of the domain
// being left are still accepted for renewal and xDS (until the next restart). Peers renew within
// one bundle poll of each other; calls between a renewed and a not-yet-renewed sidecar can be
// refused in that window, so migrate in a quiet hour.
import type { CertificateAuthority } from '../ca/index.ts';
import type { ControlPlane } from '../xds/plan/control-plane.ts';
import { fail, formatProblem, ok, type Result } from '../errors.ts';
import { log as rootLog, type Logger } from '../log.ts';
import type { ControlPlaneIdentity } from './serving-identity.ts';
import type { WorkloadSigner } from './workload-signer.ts';

export interface MigrationDeps {
  readonly controlPlane: ControlPlane;
  readonly signer: WorkloadSigner;
  readonly serving: ControlPlaneIdentity;
  /** Default the process logger. */
  readonly log?: Logger;
}

export class TrustDomains {
  private leaving: string | undefined;

  constructor(private readonly ca: CertificateAuthority) {}

  current(): string {
    return this.ca.trustDomain;
  }

  /** Accepted in client certificates: the current domain first, then the one a migration left. */
  accepted(): readonly string[] {
    return this.leaving ? [this.ca.trustDomain, this.leaving] : [this.ca.trustDomain];
  }

  async migrate(
    next: string,
    d: MigrationDeps,
  ): Promise<Result<{ from: string; to: string; revision: number }>> {
    const from = this.ca.trustDomain;
    const log = (d.log ?? rootLog).child({ component: 'ca', from, to: next });
    if (next === from)
      return fail([{ code: 'CONFLICT', field: 'trustDomain', message: `the mesh already is ${from}` }]);
    const migrated = await this.ca.migrateTrustDomain(next);
    if (!migrated.ok) {
      log.warn({ reasons: migrated.errors.map(formatProblem) }, 'trust-domain migration refused');
      return migrated;
    }
    this.leaving = from;
    d.serving.refresh();
    log.info(
      'trust-domain migration begun: the CA and the control plane serve under the new domain; the old one is still accepted',
    );
    const mesh = d.controlPlane.store.list().find((m) => m.kind === 'Mesh');
    const replanned =
      mesh?.kind === 'Mesh'
        ? await d.controlPlane.apply([{ ...mesh, trustDomain: next }])
        : await d.controlPlane.refresh();
    if (!replanned.ok) {
      // Back to where it was: a CA on the new domain beside a stored Mesh on the old one would refuse
      // the next start.
      await this.ca.migrateTrustDomain(from);
      this.leaving = undefined;
      d.serving.refresh();
      log.error(
        { reasons: replanned.errors.map(formatProblem) },
        'trust-domain migration undone: re-planning the mesh under the new domain failed',
      );
      return replanned;
    }
    d.signer.adviseRenewal();
    log.info(
      { revision: replanned.value.revision },
      'trust-domain migration: mesh re-planned, node agents advised to renew',
    );
    return ok({ from, to: next, revision: replanned.value.revision });
  }
}
