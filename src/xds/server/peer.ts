// The SPIFFE ID a TLS peer proved: the URI SAN of its verified client certificate, read from the
// subject alternative names as OpenSSL prints them (`DNS:a, URI:spiffe://td/ns/x/sa/y`).
import type { TLSSocket } from 'node:tls';
import { uriSans } from '../../ca/spiffe.ts';

export function spiffeIdOfSan(subjectAltName: string | undefined): string | undefined {
  return uriSans(subjectAltName).find((u) => u.startsWith('spiffe://'));
}

/**
 * The SPIFFE ID in the leaf certificate a TLS peer presented (the caller checks that it was
 * verified). The leaf only, as an object: getPeerX509Certificate() reads faster in a loop over one
 * socket, but measured once per fresh connection (two servers side by side, connections alternating,
 * bench/tls-floor.ts shape) it costs ~0.3 ms more server CPU per connection than this.
 */
export function spiffeIdOfPeer(socket: TLSSocket): string | undefined {
  return spiffeIdOfSan(socket.getPeerCertificate(false).subjectaltname);
}
