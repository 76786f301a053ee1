// What a TLS peer proved: the URI SAN of its verified client certificate, read from the subject
// alternative names as OpenSSL prints them (`DNS:a, URI:spiffe://td/ns/x/sa/y`), and the instance
// the certificate is bound to, if any (a node agent's credential whose evidence named one).
import type { TLSSocket } from 'node:tls';
import { boundInstance, uriSans } from '../../ca/spiffe.ts';

export interface PeerIdentity {
  readonly spiffeId: string;
  /** The one instance of its service the certificate is for; absent: any instance. */
  readonly instance?: string;
}

export function spiffeIdOfSan(subjectAltName: string | undefined): string | undefined {
  return uriSans(subjectAltName).find((u) => u.startsWith('spiffe://'));
}

/**
 * The SPIFFE ID and bound instance in the leaf certificate a TLS peer presented (the caller checks
 * that it was verified). The leaf only, as an object: getPeerX509Certificate() reads faster in a loop
 * over one socket, but measured once per fresh connection (two servers side by side, connections
 * alternating, bench/tls-floor.ts shape) it costs ~0.3 ms more server CPU per connection than this.
 */
export function peerIdentity(socket: TLSSocket): PeerIdentity | undefined {
  const leaf = socket.getPeerCertificate(false);
  const spiffeId = spiffeIdOfSan(leaf.subjectaltname);
  if (!spiffeId) return undefined;
  const instance = boundInstance(leaf.subject);
  return instance ? { spiffeId, instance } : { spiffeId };
}

/** The SPIFFE ID alone (see `peerIdentity`). */
export function spiffeIdOfPeer(socket: TLSSocket): string | undefined {
  return peerIdentity(socket)?.spiffeId;
}
