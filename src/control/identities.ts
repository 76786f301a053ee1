// Workload identities of connected sidecars: one certificate (and key) per sidecar, issued on first
// connect, re-issued at a jittered 50–80 % of its lifetime, and re-issued for all when the roots
// change. Keys live only here and in the SDS secret sent to their own sidecar.
import { rotationDelayMs, type CertificateAuthority, type WorkloadCert } from '../ca/index.ts';
import type { SidecarRef, SidecarSecrets } from '../xds/generate/types.ts';

export class Identities {
  private readonly certs = new Map<string, { ref: SidecarRef; cert: WorkloadCert }>();
  private readonly timers = new Map<string, NodeJS.Timeout>();

  constructor(
    readonly ca: CertificateAuthority,
    /** Called after a sidecar's certificate was replaced, to push it over SDS. */
    private readonly onRotate: (nodeId: string) => void,
    /** The mesh's trust domain now (it may change with an applied Mesh manifest). */
    private readonly trustDomain: () => string,
    private readonly random: () => number = Math.random,
  ) {}

  secretsFor(ref: SidecarRef): SidecarSecrets {
    let entry = this.certs.get(ref.nodeId);
    const stale = !entry || entry.cert.notAfter.getTime() <= Date.now() || !entry.cert.spiffeId.startsWith(`spiffe://${this.trustDomain()}/`);
    if (stale) entry = this.issue(ref);
    return { certChainPem: entry!.cert.certChainPem, privateKeyPem: entry!.cert.privateKeyPem, trustBundlePem: this.ca.trustBundle().join('\n') };
  }

  /** The certificate a sidecar holds, without its key (for status pages). */
  certificateOf(nodeId: string): WorkloadCert | undefined {
    return this.certs.get(nodeId)?.cert;
  }

  /** Re-issues every certificate now (a root rotation began or completed). */
  reissueAll(): void {
    for (const { ref } of [...this.certs.values()]) {
      this.issue(ref);
      this.onRotate(ref.nodeId);
    }
  }

  forget(nodeId: string): void {
    clearTimeout(this.timers.get(nodeId));
    this.timers.delete(nodeId);
    this.certs.delete(nodeId);
  }

  stop(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  get size(): number {
    return this.certs.size;
  }

  private issue(ref: SidecarRef): { ref: SidecarRef; cert: WorkloadCert } {
    const cert = this.ca.issueWorkload({ namespace: ref.namespace, service: ref.service }, { trustDomain: this.trustDomain() });
    const entry = { ref, cert };
    this.certs.set(ref.nodeId, entry);
    clearTimeout(this.timers.get(ref.nodeId));
    // Measured from issuance, not notBefore: notBefore is backdated for clock skew, which would
    // pull a short-lived certificate's rotation point to (almost) now.
    const issuedAt = new Date();
    const delay = rotationDelayMs({ notBefore: issuedAt, notAfter: cert.notAfter }, this.random, issuedAt);
    this.timers.set(
      ref.nodeId,
      setTimeout(() => {
        this.issue(ref);
        this.onRotate(ref.nodeId);
      }, delay).unref(),
    );
    return entry;
  }
}
