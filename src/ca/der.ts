// The ASN.1/DER vocabulary shared by x509.ts (certificates) and csr.ts (certification requests): the
// only three files that know node-forge. Object identifiers, the small constructors both encoders use,
// and GeneralNames, which both read and write.
import forge from 'node-forge';

/** The X.509 signature algorithms clinimesh's keys sign with; the hash follows the curve for EC keys. */
export type SignatureAlgorithm = 'ecdsa-with-SHA256' | 'ecdsa-with-SHA384' | 'sha256WithRSAEncryption';

export const { asn1 } = forge;
export type Asn1 = forge.asn1.Asn1;
export const U = asn1.Class.UNIVERSAL;
export const T = asn1.Type;
export const CONTEXT = asn1.Class.CONTEXT_SPECIFIC;

export const OID = {
  CN: '2.5.4.3',
  serialNumber: '2.5.4.5',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  ecPublicKey: '1.2.840.10045.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  'P-256': '1.2.840.10045.3.1.7',
  'P-384': '1.3.132.0.34',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  extensionRequest: '1.2.840.113549.1.9.14',
  'ecdsa-with-SHA256': '1.2.840.10045.4.3.2',
  'ecdsa-with-SHA384': '1.2.840.10045.4.3.3',
  'ecdsa-with-SHA512': '1.2.840.10045.4.3.4',
  sha256WithRSAEncryption: '1.2.840.113549.1.1.11',
  sha384WithRSAEncryption: '1.2.840.113549.1.1.12',
  sha512WithRSAEncryption: '1.2.840.113549.1.1.13',
} as const;

const oidCache = new Map<string, string>();
export function oid(dotted: string): Asn1 {
  let der = oidCache.get(dotted);
  if (der === undefined) {
    der = asn1.oidToDer(dotted).getBytes();
    oidCache.set(dotted, der);
  }
  return asn1.create(U, T.OID, false, der);
}

export const seq = (items: Asn1[]): Asn1 => asn1.create(U, T.SEQUENCE, true, items);
export const bin = (b: Buffer): string => b.toString('binary');
export const fromDer = asn1.fromDer as unknown as (
  bytes: string,
  opts: { decodeBitStrings: boolean },
) => Asn1;
export const toDer = (a: Asn1): Buffer => Buffer.from(asn1.toDer(a).getBytes(), 'binary');

export function bitString(bytes: Buffer, unusedBits = 0): Asn1 {
  return asn1.create(U, T.BITSTRING, false, String.fromCharCode(unusedBits) + bin(bytes));
}

export function algorithmIdentifier(alg: SignatureAlgorithm): Asn1 {
  // RFC 5758 §3.2: ECDSA identifiers have no parameters; RSA's carry an explicit NULL.
  return alg === 'sha256WithRSAEncryption'
    ? seq([oid(OID[alg]), asn1.create(U, T.NULL, false, '')])
    : seq([oid(OID[alg])]);
}

function ascii(s: string): string {
  // IA5String: a non-ASCII SAN is a caller bug (names are validated before they get here).
  if (!/^[\x21-\x7e]+$/.test(s))
    throw new TypeError(`subjectAltName must be printable ASCII: ${JSON.stringify(s)}`);
  return s;
}

/** GeneralNames (RFC 5280 §4.2.1.6) holding uniformResourceIdentifier [6] and dNSName [2] entries. */
export function generalNames(uris: readonly string[], dns: readonly string[]): Asn1 {
  return seq([
    ...uris.map((u) => asn1.create(CONTEXT, 6, false, ascii(u))),
    ...dns.map((d) => asn1.create(CONTEXT, 2, false, ascii(d))),
  ]);
}

/** The URI and DNS entries of a decoded GeneralNames; other kinds of name are skipped. */
export function readGeneralNames(names: Asn1): { uris: string[]; dns: string[] } {
  const found = { uris: [] as string[], dns: [] as string[] };
  for (const n of names.value as Asn1[]) {
    if (n.tagClass !== CONTEXT || n.constructed) continue;
    if (n.type === 6) found.uris.push(n.value as string);
    if (n.type === 2) found.dns.push(n.value as string);
  }
  return found;
}
