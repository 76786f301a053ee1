// The control plane's own serving certificate for the xDS ports (SPIFFE ID
// spiffe://<trust-domain>/ns/clinimesh-system/sa/control-plane), rotated like a workload's, and
// handed to the xDS listeners, which swap their secure context when it changes, so rotation needs
// no restart. Sidecar bootstraps pin this SPIFFE ID.
import { rotationDelayMs, spiffeId, type CertificateAuthority } from '../ca/index.ts';
import type { XdsTls } from '../xds/server/index.ts';
import { CONTROL_PLANE_NAMESPACE } from '../ca/spiffe.ts';

export const CONTROL_PLANE_ID = { namespace: CONTROL_PLANE_NAMESPACE, service: 'control-plane' } as const;

export function controlPlaneSpiffeId(trustDomain: string): string {
  return spiffeId(trustDomain, CONTROL_PLANE_ID);
}

export class ControlPlaneIdentity {
  private tls!: XdsTls;
  private expiresAt = new Date(0);
  private timer: NodeJS.Timeout | undefined;
  private readonly changeListeners = new Set<(tls: XdsTls) => void>();

  constructor(
    private readonly ca: CertificateAuthority,
    private readonly dnsNames: readonly string[],
  ) {
    this.refresh();
  }

  current(): XdsTls {
    return this.tls;
  }

  /** When the serving certificate in use expires. */
  notAfter(): Date {
    return this.expiresAt;
  }

  /** Re-issues the serving certificate and re-reads the trust bundle (after a root rotation). */
  refresh(): void {
    const issuedAt = new Date();
    const cert = this.ca.issueWorkload(CONTROL_PLANE_ID, { dnsNames: [...this.dnsNames] });
    this.tls = {
      certChainPem: cert.certChainPem,
      privateKeyPem: cert.privateKeyPem,
      trustBundlePem: this.ca.trustBundle().join('\n'),
    };
    this.expiresAt = cert.notAfter;
    clearTimeout(this.timer);
    this.timer = setTimeout(
      () => this.refresh(),
      // Node fires a timer longer than 2^31-1 ms at once: a long lifetime refreshes early, not in a loop.
      Math.min(
        2 ** 31 - 1,
        rotationDelayMs({ notBefore: issuedAt, notAfter: cert.notAfter }, Math.random, issuedAt),
      ),
    ).unref();
    for (const l of this.changeListeners) l(this.tls);
  }

  /** Trusts the CA's current bundle for client certificates, keeping the serving certificate. */
  refreshTrust(): void {
    this.tls = { ...this.tls, trustBundlePem: this.ca.trustBundle().join('\n') };
    for (const l of this.changeListeners) l(this.tls);
  }

  onChange(listener: (tls: XdsTls) => void): void {
    this.changeListeners.add(listener);
  }

  stop(): void {
    clearTimeout(this.timer);
  }
}
