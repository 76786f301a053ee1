// A root certificate's pin: SHA-256 of its DER, base64url. Join tokens carry the current root's pin
// so a node agent can pick the real root out of a bundle fetched before it trusts anything.
import { X509Certificate, createHash } from 'node:crypto';

export function rootPin(rootPem: string): string {
  return createHash('sha256').update(new X509Certificate(rootPem).raw).digest('base64url');
}
