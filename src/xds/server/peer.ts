// The SPIFFE ID a TLS peer proved: the URI SAN of its verified client certificate, read from the
// subject alternative names as OpenSSL prints them (`DNS:a, URI:spiffe://td/ns/x/sa/y`).
export function spiffeIdOfSan(subjectAltName: string | undefined): string | undefined {
  const uri = (subjectAltName ?? '').split(', ').find((s) => s.startsWith('URI:spiffe://'));
  return uri?.slice('URI:'.length);
}
