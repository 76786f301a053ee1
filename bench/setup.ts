// Starts a control plane for one mesh size the way a deployment runs it (mutual TLS on xDS unless
// told otherwise), feeds Consul's first answers, applies the manifests, and issues each service the
// workload certificate its sidecars prove their identity with.
import type { CertificateAuthority } from '../src/ca/index.ts';
import type { RunningControlPlane } from '../src/main.ts';
import { startControlPlane } from '../src/main.ts';
import type { XdsTlsMaterial } from './ipc.ts';
import type { BenchMesh } from './mesh-gen.ts';
import { profiled } from './profile.ts';

export interface StartedPlane {
  readonly cp: RunningControlPlane;
  readonly applyMs: number;
  readonly target: string;
  readonly tls?: XdsTlsMaterial;
}

export async function startMeshPlane(
  mesh: BenchMesh,
  xdsTls: boolean,
  label: string,
  disconnectGraceMs?: number,
): Promise<StartedPlane> {
  // The CA is made for the mesh's own trust domain (it is fixed when the CA is made).
  const meshDoc = mesh.manifests.find((m) => m.kind === 'Mesh');
  const trustDomain = meshDoc?.kind === 'Mesh' ? meshDoc.trustDomain : undefined;
  const cp = await startControlPlane({
    xdsPort: 0,
    xdsRestPort: 0,
    adminPort: 0,
    xdsTls,
    disconnectGraceMs,
    trustDomain,
  });
  try {
    // Consul's first answers arrive before the manifests naming the services are applied; one call,
    // as one batch, so the control plane re-plans once rather than once per service.
    await cp.controlPlane.updateEndpoints([...mesh.endpoints.values()]);
    const t0 = performance.now();
    const applied = await profiled(`${label}-apply`, () => cp.controlPlane.apply(mesh.manifests));
    if (!applied.ok) throw new Error(`apply failed: ${JSON.stringify(applied.errors.slice(0, 3))}`);
    const applyMs = performance.now() - t0;
    return {
      cp,
      applyMs,
      target: `${cp.host}:${cp.xdsPort}`,
      tls: xdsTls ? workloadCredentials(cp.ca, mesh) : undefined,
    };
  } catch (e) {
    await cp.stop();
    throw e;
  }
}

/** One workload certificate per service, from the CA the control plane trusts, and its roots. */
export function workloadCredentials(ca: CertificateAuthority, mesh: BenchMesh): XdsTlsMaterial {
  const byService: Record<string, { cert: string; key: string }> = {};
  for (const s of mesh.sidecars) {
    if (byService[s.cluster]) continue;
    const c = ca.issueWorkload({ namespace: s.namespace, service: s.cluster });
    byService[s.cluster] = { cert: c.certChainPem, key: c.privateKeyPem };
  }
  return { ca: ca.trustBundle().join('\n'), byService };
}
