// A sidecar's bootstrap credential: the certificate it presents to the xDS port. The workload makes
// its own key pair and sends only the public key, so no private key ever crosses the admin API.
import { createPublicKey } from 'node:crypto';
import type { CertificateAuthority, WorkloadId } from '../ca/index.ts';
import { fail, ok, type Result } from '../errors.ts';
import { serviceKey } from '../manifest/types.ts';
import type { DesiredState } from '../store/state.ts';
import { controlPlaneSpiffeId } from './control-plane-identity.ts';

/** Longer than a workload certificate: Envoy reads it from files at start, not over SDS. */
export const BOOTSTRAP_TTL_MS = 30 * 24 * 3_600_000;

export interface BootstrapCredential {
  readonly certChainPem: string;
  readonly trustBundlePem: string;
  /** The SPIFFE ID the sidecar must see on the control plane's certificate. */
  readonly serverSpiffeId: string;
  readonly notAfter: string;
}

export function bootstrapCredential(ca: CertificateAuthority, state: DesiredState, id: WorkloadId, publicKeyPem: string): Result<BootstrapCredential> {
  if (!state.services.has(serviceKey({ name: id.service, namespace: id.namespace }))) {
    return fail([{ code: 'NOT_FOUND', field: 'service', message: `no service ${id.service}.${id.namespace} in the applied manifests` }]);
  }
  let spki: Buffer;
  try {
    spki = createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
  } catch (e) {
    return fail([{ code: 'SCHEMA', field: 'publicKeyPem', message: `not a PEM public key: ${(e as Error).message}` }]);
  }
  const trustDomain = state.mesh.trustDomain;
  const cert = ca.signWorkloadKey(id, spki, { ttlMs: BOOTSTRAP_TTL_MS, trustDomain });
  return ok({
    certChainPem: cert.certChainPem,
    trustBundlePem: ca.trustBundle().join('\n'),
    serverSpiffeId: controlPlaneSpiffeId(trustDomain),
    notAfter: cert.notAfter.toISOString(),
  });
}
