// Certification requests (PKCS#10, RFC 2986). The node agent makes its own key and proves it holds it
// by signing a CSR with it; the CA checks that self-signature natively, and its key policy, before it
// signs anything. The CSR is encoded and read with forge.asn1 (through der.ts): forge's own CSR code
// handles RSA only.
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
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
import type { SignatureAlgorithm } from './keys.ts';
import { derToPem, encodeName, type PublicKeyInfo } from './x509.ts';

export interface CsrOptions {
  readonly commonName?: string;
  readonly uriSans?: readonly string[];
}

/** What a CSR asks for, once its signature and key have been checked. */
export interface CsrFacts {
  /** The requester's SubjectPublicKeyInfo, DER, as it came in the CSR. */
  readonly spkiDer: Buffer;
  readonly uriSans: string[];
  readonly dnsSans: string[];
  /** `ECDSA P-256`, `RSA 3072`: safe to log. */
  readonly keyDescription: string;
}

/** What the CA needs beyond the facts: the key as the certificate encoder and comparisons take it. */
export interface CheckedCsr extends CsrFacts {
  readonly publicKey: PublicKeyInfo;
  readonly keyObject: KeyObject;
}

const HASH: Record<SignatureAlgorithm, string> = {
  'ecdsa-with-SHA256': 'sha256',
  'ecdsa-with-SHA384': 'sha384',
  sha256WithRSAEncryption: 'sha256',
};

/** Signature algorithms a CSR may be signed with: SHA-2 only, and the key family that goes with it. */
const ACCEPTED_SIGNATURES = new Map<string, { hash: string; keyType: 'ec' | 'rsa' }>([
  [OID['ecdsa-with-SHA256'], { hash: 'sha256', keyType: 'ec' }],
  [OID['ecdsa-with-SHA384'], { hash: 'sha384', keyType: 'ec' }],
  [OID['ecdsa-with-SHA512'], { hash: 'sha512', keyType: 'ec' }],
  [OID.sha256WithRSAEncryption, { hash: 'sha256', keyType: 'rsa' }],
  [OID.sha384WithRSAEncryption, { hash: 'sha384', keyType: 'rsa' }],
  [OID.sha512WithRSAEncryption, { hash: 'sha512', keyType: 'rsa' }],
]);

const MIN_RSA_BITS = 2048;
/** Above this an RSA key buys no security a mesh needs, and each verification gets slow. */
const MAX_RSA_BITS = 8192;
const RSA_EXPONENT = 65537n;
/** Far above any CSR clinimesh accepts (~300 bytes for P-256): refuse big inputs before decoding them. */
const MAX_CSR_BYTES = 16 * 1024;

/**
 * A PEM `CERTIFICATE REQUEST` for `privateKey` (EC P-256 or P-384, or RSA), signed with it. Throws a
 * TypeError for any other key: the node agent only makes keys the CA accepts.
 */
export function createCsr(privateKey: KeyObject, opts: CsrOptions = {}): string {
  const algorithm = signatureAlgorithmFor(privateKey);
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const subject = encodeName(opts.commonName === undefined ? [] : [{ type: 'CN', value: opts.commonName }]);
  const uris = opts.uriSans ?? [];
  const attributes = uris.length === 0 ? [] : [extensionRequest(uris)];
  const info = seq([
    asn1.create(U, T.INTEGER, false, '\x00'),
    fromDer(bin(subject), { decodeBitStrings: false }),
    fromDer(bin(spki), { decodeBitStrings: false }),
    asn1.create(CONTEXT, 0, true, attributes),
  ]);
  const signature = sign(HASH[algorithm], toDer(info), privateKey);
  return derToPem(
    toDer(seq([info, algorithmIdentifier(algorithm), bitString(signature)])),
    'CERTIFICATE REQUEST',
  );
}

function signatureAlgorithmFor(key: KeyObject): SignatureAlgorithm {
  const curve = key.asymmetricKeyDetails?.namedCurve;
  if (key.asymmetricKeyType === 'ec' && curve === 'prime256v1') return 'ecdsa-with-SHA256';
  if (key.asymmetricKeyType === 'ec' && curve === 'secp384r1') return 'ecdsa-with-SHA384';
  if (key.asymmetricKeyType === 'rsa') return 'sha256WithRSAEncryption';
  throw new TypeError(`createCsr: unsupported key ${key.asymmetricKeyType} ${curve ?? ''}`.trim());
}

function extensionRequest(uris: readonly string[]): Asn1 {
  const san = seq([
    oid(OID.subjectAltName),
    asn1.create(U, T.OCTETSTRING, false, asn1.toDer(generalNames(uris, [])).getBytes()),
  ]);
  return seq([oid(OID.extensionRequest), asn1.create(U, T.SET, true, [seq([san])])]);
}

/**
 * Reads a PEM CSR and checks it: strict DER, a key the mesh accepts (EC P-256/P-384, RSA 2048–8192
 * bits), and a self-signature that verifies with that key (proof of possession). Every Problem has code
 * `CA` and a field under `csr`; none echoes the input.
 */
export function parseCsr(pem: string): Result<CsrFacts> {
  return checkCsr(pem);
}

/** `parseCsr`, keeping what the CA needs to issue and compare keys. */
export function checkCsr(pem: string): Result<CheckedCsr> {
  const der = pemBody(pem);
  if (der === undefined) return problem('csr', 'not a PEM CERTIFICATE REQUEST');
  if (der.length > MAX_CSR_BYTES) return problem('csr', `larger than ${MAX_CSR_BYTES} bytes`);
  let parts: CsrParts;
  try {
    const request = fromDer(bin(der), { decodeBitStrings: false });
    if (!toDer(request).equals(der)) return problem('csr', 'not DER-encoded');
    parts = partsOf(request);
  } catch {
    return problem('csr', 'not a PKCS#10 certification request');
  }
  const key = acceptedKey(parts.spkiDer, parts.spki);
  if (!key.ok) return key;
  const proof = checkSignature(parts, key.value);
  if (proof.length > 0) return fail(proof);
  return ok({ ...parts.sans, spkiDer: parts.spkiDer, ...key.value });
}

const PEM =
  /^\s*-----BEGIN (NEW )?CERTIFICATE REQUEST-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END \1CERTIFICATE REQUEST-----\s*$/;

function pemBody(pem: string): Buffer | undefined {
  const body = PEM.exec(pem)?.[2];
  return body === undefined ? undefined : Buffer.from(body.replace(/\s/g, ''), 'base64');
}

interface CsrParts {
  readonly infoDer: Buffer;
  readonly spkiDer: Buffer;
  readonly spki: Asn1;
  readonly signatureOid: string;
  readonly signature: Buffer;
  readonly sans: { uriSans: string[]; dnsSans: string[] };
}

/** The pieces of a decoded CertificationRequest; throws on a shape RFC 2986 does not allow. */
function partsOf(request: Asn1): CsrParts {
  const isSeq = (a: Asn1 | undefined): a is Asn1 =>
    a?.tagClass === U && a.type === T.SEQUENCE && a.constructed;
  if (!isSeq(request)) throw new Error('shape');
  const [info, algorithm, signature, ...extra] = request.value as Asn1[];
  if (!isSeq(info) || !isSeq(algorithm) || !signature || extra.length > 0) throw new Error('shape');
  const fields = info.value as Asn1[];
  const [version, subject, spki, attributes] = fields;
  const v0 = version?.type === T.INTEGER && version.value === '\x00';
  const named = isSeq(subject) && isSeq(spki);
  const attrs = attributes?.tagClass === CONTEXT && attributes.type === 0 && attributes.constructed;
  const bits = signature.tagClass === U && signature.type === T.BITSTRING ? (signature.value as string) : '';
  if (!v0 || !named || !attrs || fields.length !== 4 || !bits.startsWith('\x00')) throw new Error('shape');
  if (!version || !subject || !spki || !attributes) throw new Error('shape'); // for the compiler: checked above
  return {
    infoDer: toDer(info),
    spkiDer: toDer(spki),
    spki,
    signatureOid: asn1.derToOid((algorithm.value as Asn1[])[0]!.value as string),
    signature: Buffer.from(bits.slice(1), 'binary'),
    sans: requestedSans(attributes.value as Asn1[]),
  };
}

function requestedSans(attributes: Asn1[]): { uriSans: string[]; dnsSans: string[] } {
  const sans = { uriSans: [] as string[], dnsSans: [] as string[] };
  for (const attribute of attributes) {
    const [type, values] = attribute.value as Asn1[];
    if (asn1.derToOid(type!.value as string) !== OID.extensionRequest) continue;
    for (const extensions of values!.value as Asn1[]) {
      for (const ext of extensions.value as Asn1[]) {
        const parts = ext.value as Asn1[];
        if (asn1.derToOid(parts[0]!.value as string) !== OID.subjectAltName) continue;
        const names = readGeneralNames(
          fromDer(parts[parts.length - 1]!.value as string, { decodeBitStrings: false }),
        );
        sans.uriSans.push(...names.uris);
        sans.dnsSans.push(...names.dns);
      }
    }
  }
  return sans;
}

type AcceptedKey = Pick<CheckedCsr, 'publicKey' | 'keyObject' | 'keyDescription'>;

/** The curves a workload key may use, by the OID its SPKI names, with the length of an uncompressed point. */
const CURVES = new Map([
  [OID['P-256'], { curve: 'P-256', pointLength: 65 }],
  [OID['P-384'], { curve: 'P-384', pointLength: 97 }],
] as const);

function acceptedKey(spkiDer: Buffer, spki: Asn1): Result<AcceptedKey> {
  const ec = namedCurveKey(spki);
  return ec ? ecKey(ec.curve, ec.point) : otherKey(spkiDer);
}

/** An EC key on an accepted named curve, read from the SPKI directly; undefined for anything else. */
function namedCurveKey(spki: Asn1): { curve: 'P-256' | 'P-384'; point: Buffer } | undefined {
  const [algorithm, bits] = spki.value as Asn1[];
  const [type, params] = (algorithm?.value ?? []) as Asn1[];
  if (type?.type !== T.OID || asn1.derToOid(type.value as string) !== OID.ecPublicKey) return undefined;
  if (params?.type !== T.OID || bits?.type !== T.BITSTRING) return undefined;
  const named = CURVES.get(asn1.derToOid(params.value as string) as (typeof OID)['P-256' | 'P-384']);
  const value = bits.value as string;
  if (!named || !value.startsWith('\x00')) return undefined;
  return { curve: named.curve, point: Buffer.from(value.slice(1), 'binary') };
}

/**
 * An EC key is imported from its coordinates (JWK), which checks the point is on the curve: OpenSSL 3's
 * SPKI decoder costs ~250 µs more per CSR, counting the first use of the key it makes.
 */
function ecKey(curve: 'P-256' | 'P-384', point: Buffer): Result<AcceptedKey> {
  const size = curve === 'P-256' ? 32 : 48;
  if (point.length !== 1 + 2 * size || point[0] !== 0x04)
    return problem('csr.publicKey', 'the EC point must be uncompressed');
  const x = point.subarray(1, 1 + size).toString('base64url');
  const y = point.subarray(1 + size).toString('base64url');
  try {
    const keyObject = createPublicKey({ key: { kty: 'EC', crv: curve, x, y }, format: 'jwk' });
    return ok({ keyObject, publicKey: { kind: 'ec', curve, point }, keyDescription: `ECDSA ${curve}` });
  } catch {
    return problem('csr.publicKey', `not a point on ${curve}`);
  }
}

/** RSA within bounds; anything else is described and refused. */
function otherKey(spkiDer: Buffer): Result<AcceptedKey> {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' });
  } catch {
    return problem('csr.publicKey', 'not a readable public key');
  }
  const details = key.asymmetricKeyDetails ?? {};
  const bits = details.modulusLength ?? 0;
  if (key.asymmetricKeyType === 'rsa' && bits >= MIN_RSA_BITS && bits <= MAX_RSA_BITS) {
    // Checked before the self-signature: a huge exponent makes one verify cost milliseconds, and
    // requests to attest are checked before anyone is authenticated. Every toolkit makes 65537.
    if (details.publicExponent !== RSA_EXPONENT)
      return problem('csr.publicKey', `the RSA public exponent must be ${RSA_EXPONENT}`);
    return ok({ keyObject: key, publicKey: { kind: 'spki', der: spkiDer }, keyDescription: `RSA ${bits}` });
  }
  const what = details.namedCurve ?? (bits || (key.asymmetricKeyType === 'ec' ? 'explicit parameters' : ''));
  return refused(`${key.asymmetricKeyType ?? 'unknown'} ${what}`.trim());
}

const refused = (what: string): Result<never> =>
  problem(
    'csr.publicKey',
    `unsupported key (${what}): use EC P-256/P-384 or RSA of ${MIN_RSA_BITS}–${MAX_RSA_BITS} bits`,
  );

function checkSignature(parts: CsrParts, key: AcceptedKey): Problem[] {
  const algorithm = ACCEPTED_SIGNATURES.get(parts.signatureOid);
  if (!algorithm)
    return [
      {
        code: 'CA',
        field: 'csr.signatureAlgorithm',
        message: `unsupported (${parts.signatureOid}): use SHA-2 ECDSA or RSA`,
      },
    ];
  if (algorithm.keyType !== key.keyObject.asymmetricKeyType)
    return [
      { code: 'CA', field: 'csr.signatureAlgorithm', message: `does not fit a ${key.keyDescription} key` },
    ];
  if (verifies(algorithm.hash, parts.infoDer, key.keyObject, parts.signature)) return [];
  return [
    {
      code: 'CA',
      field: 'csr.signature',
      message: "does not verify with the CSR's own key: no proof of possession",
    },
  ];
}

function verifies(hash: string, data: Buffer, key: KeyObject, signature: Buffer): boolean {
  try {
    return verify(hash, data, key, signature);
  } catch {
    return false; // a malformed ECDSA signature throws rather than failing to verify
  }
}

const problem = (field: string, message: string): Result<never> => fail([{ code: 'CA', field, message }]);
