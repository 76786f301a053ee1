// X.509 encoding. The TBSCertificate is built with forge.asn1 (through der.ts), signed natively (the
// Signer holds a Node KeyObject), and assembled into DER and PEM here. forge's own pki.Certificate signs
// RSA only and in pure JavaScript, so it is not used for issuing.
import { X509Certificate, createHash } from 'node:crypto';
import { fail, ok, type Problem, type Result } from '../errors.ts';
import {
  CONTEXT,
  OID,
  T,
  U,
  algorithmIdentifier,
  asn1,
  bin,
  bitString,
  fromDer,
  generalNames,
  oid,
  readGeneralNames,
  seq,
  toDer,
  type Asn1,
} from './der.ts';
import type { SignatureAlgorithm } from './der.ts';

export type NameAttributeType = 'CN' | 'O' | 'OU' | 'serialNumber';
export interface NameAttribute {
  readonly type: NameAttributeType;
  readonly value: string;
}

/** The DER of an X.509 Name, kept as bytes so an issuer's name is copied exactly into what it signs. */
export type EncodedName = Buffer & { readonly __brand: 'X509Name' };

export type KeyUsage = 'digitalSignature' | 'keyEncipherment' | 'keyAgreement' | 'keyCertSign' | 'cRLSign';
export type ExtKeyUsage = 'serverAuth' | 'clientAuth';

export interface CertificateSpec {
  readonly subject: EncodedName;
  readonly issuer: EncodedName;
  readonly publicKey: PublicKeyInfo;
  /** Positive, big-endian; see `randomSerial`. */
  readonly serial: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly isCa: boolean;
  readonly pathLen?: number;
  readonly uriSans?: readonly string[];
  readonly dnsSans?: readonly string[];
  readonly keyUsage: readonly KeyUsage[];
  readonly extKeyUsage?: readonly ExtKeyUsage[];
  /** Defaults to `keyIdentifier(publicKey)`. */
  readonly subjectKeyId?: Buffer;
  /** The issuer's subject key identifier; left out for a self-signed root. */
  readonly authorityKeyId?: Buffer;
}

export interface Signer {
  readonly algorithm: SignatureAlgorithm;
  sign(data: Buffer): Buffer;
}

export function encodeName(attrs: readonly NameAttribute[]): EncodedName {
  const rdns = attrs.map((a) =>
    asn1.create(U, T.SET, true, [
      // RFC 5280 Appendix A: a serialNumber attribute is a PrintableString, the others DirectoryStrings.
      seq([
        oid(OID[a.type]),
        asn1.create(
          U,
          a.type === 'serialNumber' ? T.PRINTABLESTRING : T.UTF8,
          false,
          bin(Buffer.from(a.value, 'utf8')),
        ),
      ]),
    ]),
  );
  return toDer(seq(rdns)) as EncodedName;
}

/** 16 random bytes, made positive and minimally encoded (RFC 5280 §4.1.2.2 allows up to 20 octets). */
export function randomSerial(random: Buffer): Buffer {
  const serial = Buffer.from(random.subarray(0, 16));
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  return serial;
}

/**
 * A subject public key as the issuer sees it. EC keys travel as their curve point, read from the SEC1
 * encoding of the freshly generated key (see keys.ts for why not JWK or SPKI export); anything else as
 * SPKI DER.
 */
export type PublicKeyInfo =
  | { readonly kind: 'ec'; readonly curve: 'P-256' | 'P-384'; readonly point: Buffer }
  | { readonly kind: 'spki'; readonly der: Buffer };

interface EncodedKey {
  readonly spki: Asn1;
  /** The subjectPublicKey BIT STRING's bits: what the key identifier hashes. */
  readonly keyBits: Buffer;
}

function encodePublicKey(key: PublicKeyInfo): EncodedKey {
  if (key.kind === 'ec') {
    const algorithm = seq([oid(OID.ecPublicKey), oid(OID[key.curve])]);
    return { spki: seq([algorithm, bitString(key.point)]), keyBits: key.point };
  }
  const spki = fromDer(bin(key.der), { decodeBitStrings: false });
  const bits = (spki.value as Asn1[])[1]!.value as string;
  return { spki, keyBits: Buffer.from(bits.slice(1), 'binary') };
}

/** The public point inside a SEC1 `ECPrivateKey` (RFC 5915: publicKey [1] BIT STRING), if present. */
export function ecPointOfSec1(sec1Der: Buffer): Buffer | undefined {
  const parts = fromDer(bin(sec1Der), { decodeBitStrings: false }).value as Asn1[];
  const tagged = parts.find((a) => a.tagClass === CONTEXT && a.type === 1);
  const bits = (tagged?.value as Asn1[] | undefined)?.[0]?.value as string | undefined;
  return bits === undefined ? undefined : Buffer.from(bits.slice(1), 'binary');
}

/** RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey bits. An identifier, not a security hash. */
export function keyIdentifier(key: PublicKeyInfo): Buffer {
  return createHash('sha1').update(encodePublicKey(key).keyBits).digest();
}

function time(d: Date): Asn1 {
  const year = d.getUTCFullYear();
  return year >= 1950 && year < 2050
    ? asn1.create(U, T.UTCTIME, false, asn1.dateToUtcTime(d))
    : asn1.create(U, T.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d));
}

function extension(id: string, critical: boolean, value: Asn1): Asn1 {
  const parts = [oid(id)];
  if (critical) parts.push(asn1.create(U, T.BOOLEAN, false, '\xff'));
  parts.push(asn1.create(U, T.OCTETSTRING, false, asn1.toDer(value).getBytes()));
  return seq(parts);
}

const KEY_USAGE_BIT: Record<KeyUsage, number> = {
  digitalSignature: 0x80,
  keyEncipherment: 0x20,
  keyAgreement: 0x08,
  keyCertSign: 0x04,
  cRLSign: 0x02,
};

function keyUsageBits(usages: readonly KeyUsage[]): Asn1 {
  const byte = usages.reduce((b, u) => b | KEY_USAGE_BIT[u], 0);
  let unused = 0; // DER drops trailing zero bits of a named bit list
  while (unused < 7 && ((byte >> unused) & 1) === 0) unused++;
  return bitString(Buffer.of(byte), byte === 0 ? 0 : unused);
}

function extensions(spec: CertificateSpec, subjectKeyId: Buffer): Asn1[] {
  const basic: Asn1[] = [];
  if (spec.isCa) basic.push(asn1.create(U, T.BOOLEAN, false, '\xff'));
  if (spec.isCa && spec.pathLen !== undefined) {
    basic.push(asn1.create(U, T.INTEGER, false, asn1.integerToDer(spec.pathLen).getBytes()));
  }
  const exts = [
    extension(OID.basicConstraints, true, seq(basic)),
    extension(OID.keyUsage, true, keyUsageBits(spec.keyUsage)),
  ];
  if (spec.extKeyUsage?.length) {
    exts.push(extension(OID.extKeyUsage, false, seq(spec.extKeyUsage.map((u) => oid(OID[u])))));
  }
  const uris = spec.uriSans ?? [];
  const dns = spec.dnsSans ?? [];
  if (uris.length + dns.length > 0) exts.push(extension(OID.subjectAltName, false, generalNames(uris, dns)));
  exts.push(extension(OID.subjectKeyId, false, asn1.create(U, T.OCTETSTRING, false, bin(subjectKeyId))));
  if (spec.authorityKeyId) {
    const keyId = asn1.create(CONTEXT, 0, false, bin(spec.authorityKeyId));
    exts.push(extension(OID.authorityKeyId, false, seq([keyId])));
  }
  return exts;
}

/** Builds the TBSCertificate, signs its DER with `signer`, and returns the certificate as PEM. */
export function buildCertificate(spec: CertificateSpec, signer: Signer): string {
  const key = encodePublicKey(spec.publicKey);
  const subjectKeyId = spec.subjectKeyId ?? createHash('sha1').update(key.keyBits).digest();
  const algorithm = algorithmIdentifier(signer.algorithm);
  const tbs = seq([
    asn1.create(CONTEXT, 0, true, [asn1.create(U, T.INTEGER, false, '\x02')]),
    asn1.create(U, T.INTEGER, false, bin(spec.serial)),
    algorithm,
    fromDer(bin(spec.issuer), { decodeBitStrings: false }),
    seq([time(spec.notBefore), time(spec.notAfter)]),
    fromDer(bin(spec.subject), { decodeBitStrings: false }),
    key.spki,
    asn1.create(CONTEXT, 3, true, [seq(extensions(spec, subjectKeyId))]),
  ]);
  const tbsDer = asn1.toDer(tbs).getBytes();
  const signature = signer.sign(Buffer.from(tbsDer, 'binary'));
  const cert = asn1.toDer(seq([tbs, algorithm, bitString(signature)])); // toDer is deterministic: same TBS bytes
  return derToPem(Buffer.from(cert.getBytes(), 'binary'));
}

export function derToPem(der: Buffer, label = 'CERTIFICATE'): string {
  const b64 = der.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

// A block's body is base64 (no '-'), so a block cut short cannot swallow the next one.
const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[^-]*-----END CERTIFICATE-----\n?/g;

/** Every CERTIFICATE block in a PEM text, in order; whatever lies around them is ignored. */
export function splitPemCertificates(pem: string): string[] {
  return pem.match(CERTIFICATE_BLOCK)?.map(normalise) ?? [];
}
const normalise = (block: string): string => (block.endsWith('\n') ? block : `${block}\n`);

/**
 * Every CERTIFICATE block of a file that must hold nothing else (previous-ca.crt): text outside the
 * blocks, such as a block whose END line a truncated write lost, is a problem rather than skipped.
 */
export function readPemCertificates(pem: string, source: string): Result<string[]> {
  const leftover = pem.replace(CERTIFICATE_BLOCK, '').trim();
  if (leftover === '') return ok(splitPemCertificates(pem));
  const message = leftover.includes('-----BEGIN')
    ? 'a PEM block is not terminated (truncated file?)'
    : 'text outside the PEM certificate blocks';
  return fail([{ code: 'CA', field: source, message }]);
}

/** What the CA needs from a certificate beyond what Node's X509Certificate offers. */
export interface CertificateFacts {
  readonly x509: X509Certificate;
  /** The subject Name's exact DER: copied into the issuer field of what this certificate signs. */
  readonly subject: EncodedName;
  readonly subjectKeyId: Buffer;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Undefined when the certificate has no keyUsage extension (which then allows every use). */
  readonly keyCertSign: boolean | undefined;
  readonly pathLen: number | undefined;
  /** subjectAltName URIs: a clinimesh root carries `spiffe://<trust-domain>`. */
  readonly uriSans: readonly string[];
  /** SubjectPublicKeyInfo DER, as OpenSSL encodes it: what a CSR's key is compared against. */
  readonly spkiDer: Buffer;
}

/** Reads one PEM certificate; a Problem (code CA, field = `source`) when it is not one. */
export function readCertificate(pem: string, source: string): Result<CertificateFacts> {
  const problem = (message: string): Result<CertificateFacts> =>
    fail([{ code: 'CA', message, field: source } satisfies Problem]);
  const blocks = splitPemCertificates(pem);
  if (blocks.length !== 1) return problem(`expected one PEM certificate, found ${blocks.length}`);
  try {
    const x509 = new X509Certificate(blocks[0]!);
    const cert = fromDer(bin(x509.raw), { decodeBitStrings: false });
    // The issuer name is copied byte for byte, so only a certificate forge re-encodes exactly is accepted.
    if (!toDer(cert).equals(x509.raw)) return problem('certificate is not DER-encoded');
    return ok(factsOf(x509, cert));
  } catch {
    return problem('not a valid X.509 certificate');
  }
}

function factsOf(x509: X509Certificate, cert: Asn1): CertificateFacts {
  const tbs = (cert.value as Asn1[])[0]!.value as Asn1[];
  const v = tbs[0]!.tagClass === CONTEXT ? 1 : 0;
  const validity = tbs[v + 3]!.value as Asn1[];
  const exts = readExtensions(tbs.find((a) => a.tagClass === CONTEXT && a.type === 3));
  const spkiDer = x509.publicKey.export({ type: 'spki', format: 'der' });
  return {
    x509,
    subject: toDer(tbs[v + 4]!) as EncodedName,
    subjectKeyId: exts.subjectKeyId ?? keyIdentifier({ kind: 'spki', der: spkiDer }),
    notBefore: readTime(validity[0]!),
    notAfter: readTime(validity[1]!),
    keyCertSign: exts.keyCertSign,
    pathLen: exts.pathLen,
    uriSans: exts.uriSans ?? [],
    spkiDer,
  };
}

function readTime(t: Asn1): Date {
  const s = t.value as string;
  return t.type === T.UTCTIME ? asn1.utcTimeToDate(s) : asn1.generalizedTimeToDate(s);
}

interface ExtensionFacts {
  subjectKeyId?: Buffer;
  keyCertSign?: boolean;
  pathLen?: number;
  uriSans?: string[];
}

function readExtensions(wrapper: Asn1 | undefined): ExtensionFacts {
  const found: ExtensionFacts = {};
  const list = ((wrapper?.value as Asn1[] | undefined)?.[0]?.value as Asn1[] | undefined) ?? [];
  for (const ext of list) {
    const parts = ext.value as Asn1[];
    const id = asn1.derToOid(parts[0]!.value as string);
    const value = fromDer(parts[parts.length - 1]!.value as string, { decodeBitStrings: false });
    if (id === OID.subjectKeyId) found.subjectKeyId = Buffer.from(value.value as string, 'binary');
    if (id === OID.keyUsage) found.keyCertSign = ((value.value as string).charCodeAt(1) & 0x04) !== 0;
    if (id === OID.basicConstraints) {
      const pathLen = (value.value as Asn1[]).find((a) => a.type === T.INTEGER);
      if (pathLen) found.pathLen = asn1.derToInteger(pathLen.value as string);
    }
    if (id === OID.subjectAltName) found.uriSans = readGeneralNames(value).uris;
  }
  return found;
}
