// Attestation: a workload proves who it is before anything is signed for it, with a one-time join
// token an editor made, or a Kubernetes service-account token (TokenReview, audience-bound). The
// identity comes from that proof only; what the agent asks for may narrow it, never widen it.
import { fail, ok, type Problem, type Result } from '../errors.ts';
import type { JoinTokens } from './join-tokens.ts';
import { CONTROL_PLANE_NAMESPACE } from '../ca/spiffe.ts';

/**
 * Whether a Service is declared in the applied manifests. Join tokens are made, workloads attested
 * and certificates renewed only for declared Services, so deleting one ends its identity's renewal.
 */
export type DeclaredService = (namespace: string, service: string) => boolean;

/** The refusal when `id` names no declared Service; `identity` (a SPIFFE ID, a service account) names the asker. */
export function undeclaredServiceProblems(
  declared: DeclaredService,
  id: { readonly namespace: string; readonly service: string },
  identity: string,
  action: string,
): Problem[] {
  if (declared(id.namespace, id.service)) return [];
  return [
    {
      code: 'PERMISSION_DENIED',
      resource: identity,
      field: 'service',
      message: `${identity} names no Service ${id.service}.${id.namespace} in the applied manifests (deleted, or never declared): certificates are ${action} only for declared Services`,
    },
  ];
}

export type Evidence = { readonly joinToken: string } | { readonly kubernetesToken: string };

export interface AttestedWorkload {
  readonly namespace: string;
  readonly service: string;
  /** The instance the proof names (a join token bound to one, a pod's name), else the one asked for. */
  readonly instance?: string;
  /**
   * The instance the proof itself named: the agent's credential to the control plane is bound to it,
   * so that it may fetch that instance's config only. Absent for service-wide evidence.
   */
  readonly boundInstance?: string;
  readonly method: 'join-token' | 'kubernetes';
  /** Who vouched, for logs: `join-token <id>` or the service account's username. */
  readonly subject: string;
  /**
   * For one-time evidence (a join token): spend it once the certificates are signed, or release it
   * if something later refuses, so that a refusal never burns the token.
   */
  readonly settle?: { spend(): Promise<Result<void>>; release(): Promise<void> };
}

/** What a Kubernetes TokenReview proves (see k8s-attestor.ts). */
export interface KubernetesReview {
  readonly namespace: string;
  readonly service: string;
  readonly subject: string;
  readonly podName?: string;
}

export interface KubernetesTokenReviewer {
  attest(token: string): Promise<Result<KubernetesReview>>;
}

export class Attestor {
  constructor(
    private readonly joinTokens: JoinTokens,
    private readonly declared: DeclaredService,
    private readonly kubernetes?: KubernetesTokenReviewer,
  ) {}

  async attest(evidence: Evidence, requestedInstance?: string): Promise<Result<AttestedWorkload>> {
    const attested = await this.prove(evidence);
    if (!attested.ok) return attested;
    const a = attested.value;
    const refuse = async (problems: Problem[]): Promise<Result<AttestedWorkload>> => {
      await a.settle?.release();
      return fail(problems);
    };
    if (a.namespace === CONTROL_PLANE_NAMESPACE) {
      return refuse([
        {
          code: 'PERMISSION_DENIED',
          field: 'namespace',
          message: `${CONTROL_PLANE_NAMESPACE} identities are never issued to workloads`,
        },
      ]);
    }
    // A service account in any namespace, or a token whose Service was deleted since, is no identity.
    const undeclared = undeclaredServiceProblems(this.declared, a, a.subject, 'issued');
    if (undeclared.length) return refuse(undeclared);
    if (a.instance && requestedInstance && a.instance !== requestedInstance) {
      return refuse([
        {
          code: 'PERMISSION_DENIED',
          field: 'instance',
          message: `the ${a.method} proves instance ${a.instance}, not ${requestedInstance}`,
        },
      ]);
    }
    return ok({
      ...a,
      ...((a.instance ?? requestedInstance) && { instance: a.instance ?? requestedInstance }),
      ...(a.instance && { boundInstance: a.instance }),
    });
  }

  private async prove(evidence: Evidence): Promise<Result<AttestedWorkload>> {
    if ('joinToken' in evidence) {
      const held = await this.joinTokens.reserve(evidence.joinToken);
      if (!held.ok) return held;
      const { namespace, service, instance, id } = held.value.claim;
      return ok({
        namespace,
        service,
        ...(instance && { instance }),
        method: 'join-token',
        subject: `join-token ${id}`,
        settle: { spend: held.value.spend, release: held.value.release },
      });
    }
    if (!this.kubernetes) {
      return fail([
        {
          code: 'UNAUTHENTICATED',
          field: 'kubernetesToken',
          message:
            'Kubernetes attestation is not configured on this control plane (serve --k8s-audience, in a cluster)',
        },
      ]);
    }
    const review = await this.kubernetes.attest(evidence.kubernetesToken);
    if (!review.ok) return review;
    const { namespace, service, subject, podName } = review.value;
    return ok({ namespace, service, ...(podName && { instance: podName }), method: 'kubernetes', subject });
  }
}
