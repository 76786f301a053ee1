// Private keys: generated, parsed and used for signing through Node's native crypto, and held in a
// handle that never shows the key by accident — not in JSON, util.inspect, template strings or errors.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, type KeyObject, type X509Certificate } from 'node:crypto';
import { inspect } from 'node:util';
import { fail, ok, type Result } from '../errors.ts';

export type KeyType = 'ecdsa-p256' | 'rsa-2048';
export const KEY_TYPES: readonly KeyType[] = ['ecdsa-p256', 'rsa-2048'];

/** The X.509 signature algorithm a key signs with; the hash follows the curve for EC keys. */
export type SignatureAlgorithm = 'ecdsa-with-SHA256' | 'ecdsa-with-SHA384' | 'sha256WithRSAEncryption';

const HASH: Record<SignatureAlgorithm, string> = {
  'ecdsa-with-SHA256': 'sha256',
  'ecdsa-with-SHA384': 'sha384',
  sha256WithRSAEncryption: 'sha256',
};

const REDACTED = '[redacted]';

export class PrivateKeyHandle {
  readonly #key: KeyObject;
  readonly publicKey: KeyObject;
  readonly algorithm: SignatureAlgorithm;
  /** `ECDSA P-256`, `RSA 2048`: safe to log. */
  readonly description: string;

  private constructor(key: KeyObject, publicKey: KeyObject, algorithm: SignatureAlgorithm, description: string) {
    this.#key = key;
    this.publicKey = publicKey;
    this.algorithm = algorithm;
    this.description = description;
  }

  static generate(type: KeyType): PrivateKeyHandle {
    if (type === 'rsa-2048') {
      const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
      return new PrivateKeyHandle(pair.privateKey, pair.publicKey, 'sha256WithRSAEncryption', 'RSA 2048');
    }
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return new PrivateKeyHandle(pair.privateKey, pair.publicKey, 'ecdsa-with-SHA256', 'ECDSA P-256');
  }

  /**
   * Accepts PKCS#8, SEC1 (`EC PRIVATE KEY`) and PKCS#1 (`RSA PRIVATE KEY`) PEM: EC P-256 or P-384, RSA of
   * at least 2048 bits. A Problem names `source` and never echoes the key or the parser's message.
   */
  static fromPem(pem: string, source: string): Result<PrivateKeyHandle> {
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: pem, format: 'pem' });
    } catch {
      return fail([{ code: 'CA', message: 'not a readable unencrypted PEM private key', field: source }]);
    }
    const publicKey = createPublicKey(key);
    const details = key.asymmetricKeyDetails ?? {};
    if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'prime256v1') {
      return ok(new PrivateKeyHandle(key, publicKey, 'ecdsa-with-SHA256', 'ECDSA P-256'));
    }
    if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'secp384r1') {
      return ok(new PrivateKeyHandle(key, publicKey, 'ecdsa-with-SHA384', 'ECDSA P-384'));
    }
    if (key.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) >= 2048) {
      return ok(new PrivateKeyHandle(key, publicKey, 'sha256WithRSAEncryption', `RSA ${details.modulusLength}`));
    }
    const what = `${key.asymmetricKeyType ?? 'unknown'} ${details.namedCurve ?? details.modulusLength ?? ''}`;
    return fail([{ code: 'CA', message: `unsupported key (${what.trim()}): use EC P-256/P-384 or RSA ≥ 2048`, field: source }]);
  }

  sign(data: Buffer): Buffer {
    return sign(HASH[this.algorithm], data, this.#key);
  }

  /** Whether this is the private half of `cert`'s public key. */
  matches(cert: X509Certificate): boolean {
    return cert.checkPrivateKey(this.#key);
  }

  /**
   * The key as PEM — the only way it leaves the handle: for SDS delivery to its own workload and for
   * the CA's own 0600 files. EC keys are SEC1 (`EC PRIVATE KEY`: OpenSSL 3 encodes it ~6× faster than
   * PKCS#8, and Envoy reads both); RSA keys are PKCS#8.
   */
  exportPem(): string {
    const type = this.#key.asymmetricKeyType === 'ec' ? 'sec1' : 'pkcs8';
    return this.#key.export({ type, format: 'pem' }).toString();
  }

  toJSON(): object {
    return { privateKey: REDACTED, algorithm: this.algorithm, description: this.description };
  }

  toString(): string {
    return `PrivateKeyHandle(${this.description}, ${REDACTED})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}
