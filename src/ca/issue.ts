// Workload certificates (X.509-SVIDs): the SPIFFE ID as the only URI SAN (an instance binding goes in
// the subject), usable for both ends of mTLS, never outliving the CA chain that signed it; for a key
// the CA makes (its own identity) or one a node agent made and proved in a CSR.
import { randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { ClinimeshError } from '../errors.ts';
import { CLOCK_SKEW_MS, toSeconds, type Issuer } from './hierarchy.ts';
import { PrivateKeyHandle, type KeyType } from './keys.ts';
import { buildCertificate, encodeName, randomSerial, type PublicKeyInfo } from './x509.ts';

export interface IssueRequest {
  readonly spiffeId: string;
  /** For the subject name only (`CN=<service>.<namespace>`); identity is the SPIFFE ID. */
  readonly commonName: string;
  readonly organization: string;
  readonly dnsNames: readonly string[];
  /** The one instance the certificate is bound to: the subject's serialNumber (spiffe.ts `boundInstance`). */
  readonly instance?: string;
  readonly keyType: KeyType;
  readonly ttlMs: number;
  readonly now: Date;
}

interface WorkloadCertFields {
  readonly spiffeId: string;
  readonly certChainPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly serial: string;
}

export class WorkloadCert implements WorkloadCertFields {
  readonly spiffeId: string;
  /** The leaf first, then the intermediate if there is one; never the root (that is the trust bundle). */
  readonly certChainPem: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Upper-case hex, as Node's X509Certificate.serialNumber and `openssl x509 -serial` print it. */
  readonly serial: string;
  readonly #key: PrivateKeyHandle;
  #keyPem: string | undefined;

  constructor(fields: WorkloadCertFields, key: PrivateKeyHandle) {
    this.spiffeId = fields.spiffeId;
    this.certChainPem = fields.certChainPem;
    this.notBefore = fields.notBefore;
    this.notAfter = fields.notAfter;
    this.serial = fields.serial;
    this.#key = key;
  }

  /**
   * The only place a key leaves the CA: for SDS delivery to this workload. A getter, so spreading,
   * cloning or serialising the certificate never copies it.
   */
  get privateKeyPem(): string {
    this.#keyPem ??= this.#key.exportPem();
    return this.#keyPem;
  }

  toJSON(): object {
    const { spiffeId, serial, notBefore, notAfter } = this;
    return { spiffeId, serial, notBefore, notAfter, privateKey: '[redacted]' };
  }

  [inspect.custom](): string {
    return `WorkloadCert ${JSON.stringify(this.toJSON())}`;
  }
}

export function issueWorkloadCert(issuer: Issuer, req: IssueRequest): WorkloadCert {
  const key = PrivateKeyHandle.generate(req.keyType);
  const { leafPem, notBefore, notAfter, serial } = buildLeaf(
    issuer,
    req,
    key.publicKey,
    key.algorithm === 'sha256WithRSAEncryption',
  );
  return new WorkloadCert(
    {
      spiffeId: req.spiffeId,
      certChainPem: leafPem + issuer.chainPem,
      notBefore,
      notAfter,
      serial: serial.toString('hex').toUpperCase(),
    },
    key,
  );
}

export interface SignedKey {
  readonly certChainPem: string;
  readonly notAfter: Date;
  readonly serial: string;
}

/**
 * Signs a certificate for a key the CA never sees: the node agent makes the key pair, and the CA gets
 * only its public half from a CSR whose proof of possession it checked. There is no key to return.
 */
export function signPublicKey(
  issuer: Issuer,
  req: IssueRequest,
  publicKey: PublicKeyInfo,
  rsa: boolean,
): SignedKey {
  const { leafPem, notAfter, serial } = buildLeaf(issuer, req, publicKey, rsa);
  return { certChainPem: leafPem + issuer.chainPem, notAfter, serial: serial.toString('hex').toUpperCase() };
}

function buildLeaf(issuer: Issuer, req: IssueRequest, publicKey: PublicKeyInfo, rsa: boolean) {
  const now = req.now.getTime();
  if (issuer.notAfter.getTime() <= now) {
    throw new ClinimeshError([
      { code: 'CA', message: `the CA chain expired at ${issuer.notAfter.toISOString()}; rotate the root` },
    ]);
  }
  // Backdated for clock skew, but by no more than a tenth of the lifetime: a short-lived certificate
  // (tests use seconds) must not have most of its rotation window already behind it.
  const backdate = Math.min(CLOCK_SKEW_MS, req.ttlMs / 10);
  const notBefore = new Date(
    Math.max(toSeconds(new Date(now - backdate)).getTime(), issuer.cert.facts.notBefore.getTime()),
  );
  const notAfter = new Date(
    Math.min(toSeconds(new Date(now + req.ttlMs)).getTime(), issuer.notAfter.getTime()),
  );
  const serial = randomSerial(randomBytes(16));
  const leafPem = buildCertificate(
    {
      subject: encodeName([
        { type: 'O', value: req.organization },
        { type: 'CN', value: req.commonName },
        ...(req.instance !== undefined ? [{ type: 'serialNumber' as const, value: req.instance }] : []),
      ]),
      issuer: issuer.cert.facts.subject,
      publicKey,
      serial,
      notBefore,
      notAfter,
      isCa: false,
      uriSans: [req.spiffeId],
      dnsSans: req.dnsNames,
      // keyEncipherment only means something for RSA key transport; an EC key only signs.
      keyUsage: rsa ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature'],
      extKeyUsage: ['serverAuth', 'clientAuth'],
      authorityKeyId: issuer.cert.facts.subjectKeyId,
    },
    issuer.key,
  );
  return { leafPem, notBefore, notAfter, serial };
}
