// The SPIFFE ID a TLS peer proved: the URI SAN of its verified client certificate, read from the
// subject alternative names as OpenSSL prints them (`DNS:a, URI:spiffe://td/ns/x/sa/y`).
import type { TLSSocket } from 'node:tls';

export function spiffeIdOfSan(subjectAltName: string | undefined): string | undefined {
  const uri = (subjectAltName ?? '').split(', ').find((s) => s.startsWith('URI:spiffe://'));
  return uri?.slice('URI:'.length);
}

/**
 * The SPIFFE ID in the leaf certificate a TLS peer presented (the caller checks that it was
 * verified). Read through X509Certificate, which prints only the SAN asked for: getPeerCertificate()
 * builds every field, fingerprints and all, at ~6x the cost, once per connection.
 */
export function spiffeIdOfPeer(socket: TLSSocket): string | undefined {
  return spiffeIdOfSan(socket.getPeerX509Certificate()?.subjectAltName);
}
