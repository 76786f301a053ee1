// Signs a node agent's two CSRs for an identity that attestation (or its current certificate)
// proved: its credential to the control plane (`xds`) and its workload certificate for peers. The
// identity is never read from the CSRs; the CA checks proof of possession and key policy.
import { parseCsr, type CertificateAuthority, type WorkloadId } from '../ca/index.ts';
import { fail, ok, type Problem, type Result } from '../errors.ts';
import { controlPlaneSpiffeId } from './serving-identity.ts';

export interface SignRequest {
  readonly xdsCsr: string;
  readonly workloadCsr: string;
}

export interface SignedCert {
  readonly certChainPem: string;
  readonly notAfter: string;
}

export interface SignedIdentity {
  readonly spiffeId: string;
  readonly trustDomain: string;
  readonly namespace: string;
  readonly service: string;
  readonly xds: SignedCert;
  readonly workload: SignedCert;
  readonly trustBundlePem: string;
  /** The control plane's SPIFFE ID, which the agent and Envoy pin. */
  readonly serverSpiffeId: string;
  readonly renewalEpoch: number;
}

export interface SignerOptions {
  /** Lifetime of the agent's credential to the control plane (default 24 h). */
  readonly xdsTtlMs?: number;
  /** Lifetime of workload certificates (default: the CA's). */
  readonly workloadTtlMs?: number;
}

/** What agents poll: the roots to trust and whether they should renew now (a root rotation). */
export interface TrustBundleView {
  readonly trustBundlePem: string;
  readonly renewalEpoch: number;
}

export interface SignerState {
  readonly renewalEpoch: number;
  readonly paused: boolean;
}

export class WorkloadSigner {
  /** Bumped once every sidecar trusts a new root: agents holding older certificates renew. */
  private epoch = 0;
  /** During a root rotation's wait for ACKs: nothing is signed (agents retry with backoff). */
  private paused = false;

  constructor(
    private readonly ca: CertificateAuthority,
    private readonly o: SignerOptions = {},
  ) {}

  /**
   * `boundInstance`: the one instance the agent's credential to the control plane is for (its evidence
   * named it, or the credential it renews carried it); the workload certificate stays service-wide.
   */
  sign(id: WorkloadId & { readonly boundInstance?: string }, req: SignRequest): Result<SignedIdentity> {
    if (this.paused) {
      const message = 'a root rotation is waiting for every sidecar to trust the new root; retry shortly';
      return fail([{ code: 'IO', message }]);
    }
    const xds = this.ca.signCsr(id, req.xdsCsr, {
      ttlMs: this.o.xdsTtlMs ?? 24 * 3_600_000,
      ...(id.boundInstance !== undefined && { instance: id.boundInstance }),
    });
    const workload = this.ca.signCsr(
      id,
      req.workloadCsr,
      this.o.workloadTtlMs ? { ttlMs: this.o.workloadTtlMs } : {},
    );
    const problems: Problem[] = [...prefixed(xds, 'xdsCsr'), ...prefixed(workload, 'workloadCsr')];
    if (!xds.ok || !workload.ok) return fail(problems);
    const trustDomain = this.ca.trustDomain;
    return ok({
      spiffeId: xds.value.spiffeId,
      trustDomain,
      namespace: id.namespace,
      service: id.service,
      xds: { certChainPem: xds.value.certChainPem, notAfter: xds.value.notAfter.toISOString() },
      workload: {
        certChainPem: workload.value.certChainPem,
        notAfter: workload.value.notAfter.toISOString(),
      },
      ...this.bundle(),
      serverSpiffeId: controlPlaneSpiffeId(trustDomain),
    });
  }

  /** The CSRs' own problems (format, proof of possession, key policy), before any evidence is spent. */
  precheck(req: SignRequest): Problem[] {
    return [
      ...prefixed(parseCsr(req.xdsCsr), 'xdsCsr'),
      ...prefixed(parseCsr(req.workloadCsr), 'workloadCsr'),
    ];
  }

  bundle(): TrustBundleView {
    return { trustBundlePem: this.ca.trustBundle().join('\n'), renewalEpoch: this.epoch };
  }

  /** Every agent renews at its next bundle poll (called once a new root is trusted everywhere). */
  adviseRenewal(): void {
    this.paused = false;
    this.epoch++;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }

  /** What replicas share: the renewal epoch and whether signing waits for a rotation. */
  sharedState(): SignerState {
    return { renewalEpoch: this.epoch, paused: this.paused };
  }

  /** Takes the state another replica (the leader) recorded, so every replica answers agents alike. */
  adopt(state: SignerState): void {
    this.epoch = state.renewalEpoch;
    this.paused = state.paused;
  }
}

function prefixed(r: Result<unknown>, field: string): Problem[] {
  return r.ok ? [] : r.errors.map((p) => ({ ...p, field: p.field ? `${field}.${p.field}` : field }));
}
