// When the certificates the control plane itself holds expire: the roots in the trust bundle (the
// current one and any a rotation keeps), the intermediate that signs, and the serving certificate of
// the xDS and admin ports. Workload certificates live with the node agents, which report their own.
import type { CertificateAuthority } from '../ca/index.ts';
import type { ControlPlaneIdentity } from './serving-identity.ts';

export interface HeldCertificateExpiry {
  readonly kind: 'root' | 'intermediate' | 'serving';
  readonly notAfter: Date;
}

export function heldCertificateExpiries(
  ca: CertificateAuthority,
  serving: ControlPlaneIdentity,
): HeldCertificateExpiry[] {
  const d = ca.describe();
  return [
    ...[d.root, ...d.previousRoots].map((c) => ({ kind: 'root' as const, notAfter: new Date(c.notAfter) })),
    ...(d.intermediate
      ? [{ kind: 'intermediate' as const, notAfter: new Date(d.intermediate.notAfter) }]
      : []),
    { kind: 'serving', notAfter: serving.notAfter() },
  ];
}
