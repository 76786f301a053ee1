// The certificate authority: root and intermediate, SPIFFE workload certificates, CSRs, rotation.
export { CertificateAuthority } from './authority.ts';
export type {
  CaDescription,
  CaOptions,
  CertSummary,
  IssueOptions,
  SignCsrOptions,
  SignedCsr,
} from './authority.ts';
export { createCsr, parseCsr } from './csr.ts';
export type { CsrFacts, CsrOptions } from './csr.ts';
export { parseCaPem } from './hierarchy.ts';
export type { CaHierarchy, CaPem } from './hierarchy.ts';
export { WorkloadCert } from './issue.ts';
export { PrivateKeyHandle } from './keys.ts';
export type { KeyType } from './keys.ts';
export { RotationScheduler, nodeTimers, rotationDelayMs } from './rotation.ts';
export type { RotationSchedulerOptions, Timers } from './rotation.ts';
export { CONTROL_PLANE_NAMESPACE, spiffeId } from './spiffe.ts';
export type { WorkloadId } from './spiffe.ts';
