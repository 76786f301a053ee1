// The SPIFFE ID a TLS peer proved: the URI SAN of its verified client certificate.
import type { PeerCertificate } from 'node:tls';

export function spiffeIdOf(cert: PeerCertificate | undefined): string | undefined {
  const sans = cert?.subjectaltname ?? '';
  const uri = sans.split(', ').find((s) => s.startsWith('URI:spiffe://'));
  return uri?.slice('URI:'.length);
}
