// What a sidecar's connect says about it beyond its node id, and so what its plan depends on: its
// transport (config sources) and its node metadata (audit log, proxyless, SDS directory, admin port).
import type { SidecarRef } from '../generate/types.ts';

/** The node metadata key (or `transport`) of each way two refs of one node differ. */
export function sidecarDifferences(a: SidecarRef, b: SidecarRef): string[] {
  const differ: string[] = [];
  if (a.transport !== b.transport) differ.push('transport');
  if (a.auditLogPath !== b.auditLogPath) differ.push('clinimesh.audit_log');
  if (a.proxyless !== b.proxyless) differ.push('clinimesh.proxyless');
  if (a.sdsDir !== b.sdsDir) differ.push('clinimesh.sds_dir');
  if (a.adminPort !== b.adminPort) differ.push('clinimesh.admin_port');
  return differ;
}

/** Whether two refs of one node would be planned alike (what its connect told us about it). */
export const sameSidecar = (a: SidecarRef, b: SidecarRef): boolean => sidecarDifferences(a, b).length === 0;
