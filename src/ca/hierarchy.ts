// A CA hierarchy — a root and an optional intermediate — either generated here or brought by the
// operator as PEM (files in the CA directory or the keys of a Kubernetes secret), validated as a whole.
import { randomBytes } from 'node:crypto';
import { fail, ok, type Problem, type Result } from '../errors.ts';
import { PrivateKeyHandle, type KeyType } from './keys.ts';
import {
  buildCertificate,
  encodeName,
  keyIdentifier,
  randomSerial,
  readCertificate,
  type CertificateFacts,
} from './x509.ts';

export interface CaCertificate {
  readonly pem: string;
  readonly facts: CertificateFacts;
  /** Absent for a brought root whose key stays offline (an intermediate then signs). */
  readonly key?: PrivateKeyHandle;
}

export interface CaHierarchy {
  readonly root: CaCertificate;
  readonly intermediate?: CaCertificate;
}

/** The CA signing workload certificates: the intermediate when there is one. */
export interface Issuer {
  readonly cert: CaCertificate;
  readonly key: PrivateKeyHandle;
  /** Certificates sent after the leaf: the intermediate, if any. */
  readonly chainPem: string;
  /** The earliest expiry in the chain: no leaf may outlive it. */
  readonly notAfter: Date;
}

/**
 * An operator's CA as PEM text, named like the files of a CA directory and the keys of its Kubernetes
 * secret: `ca.crt`, `ca.key`, `intermediate.crt`, `intermediate.key`, `previous-ca.crt`, `trust-domain`.
 */
export interface CaPem {
  readonly 'ca.crt': string;
  readonly 'ca.key'?: string;
  readonly 'intermediate.crt'?: string;
  readonly 'intermediate.key'?: string;
  /** Roots being retired but still trusted (PEM, may hold several): only read when loading a whole CA. */
  readonly 'previous-ca.crt'?: string;
  /** The mesh's trust domain, for a root without a `spiffe://<trust-domain>` URI SAN. */
  readonly 'trust-domain'?: string;
}

/** Certificates are backdated this much so peers with slightly slow clocks accept them at once. */
export const CLOCK_SKEW_MS = 60_000;

export const toSeconds = (d: Date): Date => new Date(Math.floor(d.getTime() / 1000) * 1000);

export function issuerOf(h: CaHierarchy): Issuer {
  const cert = h.intermediate ?? h.root;
  if (!cert.key) throw new Error('a CA hierarchy without a signing key was accepted'); // parseCaPem prevents it
  const notAfter =
    h.intermediate && h.intermediate.facts.notAfter < h.root.facts.notAfter ? h.intermediate : h.root;
  return { cert, key: cert.key, chainPem: h.intermediate?.pem ?? '', notAfter: notAfter.facts.notAfter };
}

export interface GenerateCaOptions {
  readonly trustDomain: string;
  readonly keyType: KeyType;
  readonly ttlMs: number;
  readonly intermediate: boolean;
  readonly now: Date;
}

export function generateCa(opts: GenerateCaOptions): CaHierarchy {
  const rootKey = PrivateKeyHandle.generate(opts.keyType);
  const rootId = keyIdentifier(rootKey.publicKey);
  const tag = rootId.subarray(0, 4).toString('hex'); // tells roots apart across rotations
  const rootName = encodeName([
    { type: 'O', value: opts.trustDomain },
    { type: 'CN', value: `clinimesh root CA ${opts.trustDomain} ${tag}` },
  ]);
  const notBefore = toSeconds(new Date(opts.now.getTime() - CLOCK_SKEW_MS));
  const notAfter = toSeconds(new Date(opts.now.getTime() + opts.ttlMs));
  const caSpec = { notBefore, notAfter, isCa: true, keyUsage: ['keyCertSign', 'cRLSign'] } as const;
  const rootPem = buildCertificate(
    {
      ...caSpec,
      subject: rootName,
      issuer: rootName,
      publicKey: rootKey.publicKey,
      serial: serial(),
      subjectKeyId: rootId,
      pathLen: opts.intermediate ? 1 : 0,
      // The trust domain is fixed when the CA is made: the root names it, and `open` reads it back.
      uriSans: [`spiffe://${opts.trustDomain}`],
    },
    rootKey,
  );
  const root = ownCertificate(rootPem, rootKey);
  if (!opts.intermediate) return { root };

  const key = PrivateKeyHandle.generate(opts.keyType);
  const subject = encodeName([
    { type: 'O', value: opts.trustDomain },
    { type: 'CN', value: `clinimesh intermediate CA ${tag}` },
  ]);
  const pem = buildCertificate(
    {
      ...caSpec,
      subject,
      issuer: rootName,
      publicKey: key.publicKey,
      serial: serial(),
      pathLen: 0,
      authorityKeyId: rootId,
    },
    rootKey,
  );
  return { root, intermediate: ownCertificate(pem, key) };
}

const serial = (): Buffer => randomSerial(randomBytes(16));

function ownCertificate(pem: string, key: PrivateKeyHandle): CaCertificate {
  const facts = readCertificate(pem, 'generated');
  if (!facts.ok) throw new Error('generated CA certificate does not parse'); // a bug in x509.ts
  return { pem, facts: facts.value, key };
}

/**
 * Validates an operator-brought CA: each certificate parses, is a CA (CA:TRUE, keyCertSign), is valid
 * at `now`, and matches its key; the root is self-signed and issued the intermediate. Every problem is
 * reported (field = the file or secret key at fault, resource = `source`); none echoes a key.
 */
export function parseCaPem(pem: CaPem, now: Date, source = 'CA'): Result<CaHierarchy> {
  const problems: Problem[] = [];
  const at = (p: Omit<Problem, 'resource'>): void => void problems.push({ ...p, resource: source });
  const root = parseOne(pem['ca.crt'], pem['ca.key'], 'ca', now, at);
  const hasIntermediate = pem['intermediate.crt'] !== undefined || pem['intermediate.key'] !== undefined;
  const intermediate = hasIntermediate
    ? parseOne(pem['intermediate.crt'], pem['intermediate.key'], 'intermediate', now, at)
    : undefined;
  if (root && !root.facts.x509.verify(root.facts.x509.publicKey)) {
    at({
      code: 'CA',
      field: 'ca.crt',
      message: 'not self-signed: bring a subordinate CA as intermediate.crt/.key with its root as ca.crt',
    });
  }
  if (root && intermediate) {
    const x = intermediate.facts.x509;
    if (!x.checkIssued(root.facts.x509) || !x.verify(root.facts.x509.publicKey)) {
      at({ code: 'CA', field: 'intermediate.crt', message: 'not issued by ca.crt' });
    }
    if (root.facts.pathLen === 0)
      at({ code: 'CA', field: 'ca.crt', message: 'pathLen 0 forbids an intermediate' });
    if (!intermediate.key)
      at({
        code: 'CA',
        field: 'intermediate.key',
        message: 'missing: the intermediate signs workload certificates',
      });
  } else if (root && !hasIntermediate && !root.key) {
    at({
      code: 'CA',
      field: 'ca.key',
      message: 'missing: needed to sign unless intermediate.crt/.key are brought',
    });
  }
  if (problems.length > 0 || !root) return fail(problems);
  return ok(intermediate ? { root, intermediate } : { root });
}

function parseOne(
  certPem: string | undefined,
  keyPem: string | undefined,
  name: 'ca' | 'intermediate',
  now: Date,
  at: (p: Omit<Problem, 'resource'>) => void,
): CaCertificate | undefined {
  const crt = `${name}.crt`;
  const key = keyPem === undefined ? undefined : PrivateKeyHandle.fromPem(keyPem, `${name}.key`);
  if (key && !key.ok) key.errors.forEach(at);
  if (certPem === undefined) return void at({ code: 'CA', field: crt, message: 'missing' });
  const facts = readCertificate(certPem, crt);
  if (!facts.ok) return void facts.errors.forEach(at);
  const f = facts.value;
  if (!f.x509.ca) at({ code: 'CA', field: crt, message: 'not a CA certificate (basicConstraints CA:TRUE)' });
  if (f.keyCertSign === false) at({ code: 'CA', field: crt, message: 'keyUsage lacks keyCertSign' });
  if (now < f.notBefore)
    at({ code: 'CA', field: crt, message: `not valid before ${f.notBefore.toISOString()}` });
  if (now >= f.notAfter) at({ code: 'CA', field: crt, message: `expired ${f.notAfter.toISOString()}` });
  const pem = f.x509.toString(); // just the certificate, whatever surrounded it
  if (!key) return { pem, facts: f };
  if (!key.ok) return undefined;
  if (!key.value.matches(f.x509)) {
    return void at({ code: 'CA', field: `${name}.key`, message: `does not match the public key of ${crt}` });
  }
  return { pem, facts: f, key: key.value };
}
