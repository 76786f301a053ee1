// Private keys: generated, parsed and used for signing through Node's native crypto, and held in a
// handle that never shows the key by accident — not in JSON, util.inspect, template strings or errors.
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  sign,
  type KeyObject,
  type X509Certificate,
} from 'node:crypto';
import { inspect } from 'node:util';
import { fail, ok, type Result } from '../errors.ts';
import type { SignatureAlgorithm } from './der.ts';
import { derToPem, ecPointOfSec1, type PublicKeyInfo } from './x509.ts';

export type { SignatureAlgorithm } from './der.ts';

export type KeyType = 'ecdsa-p256' | 'rsa-2048';
export const KEY_TYPES: readonly KeyType[] = ['ecdsa-p256', 'rsa-2048'];

const HASH: Record<SignatureAlgorithm, string> = {
  'ecdsa-with-SHA256': 'sha256',
  'ecdsa-with-SHA384': 'sha384',
  sha256WithRSAEncryption: 'sha256',
};

const REDACTED = '[redacted]';

// Public keys are read from the private key's SEC1 encoding, which carries the point (~13 µs), not
// exported as SPKI (~150 µs in OpenSSL 3's encoder) or JWK: on Node 20.20 `export({ format: 'jwk' })`
// of a key from generateKeyPairSync deadlocks when a GC during the export finalises the KeyGenJob
// (both take the key's mutex; seen after a few thousand keys in a loop).
function ecPublicKeyInfo(sec1: Buffer, key: KeyObject, curve: 'P-256' | 'P-384'): PublicKeyInfo {
  const point = ecPointOfSec1(sec1);
  return point ? { kind: 'ec', curve, point } : spkiInfo(key);
}

const spkiInfo = (key: KeyObject): PublicKeyInfo => ({
  kind: 'spki',
  der: createPublicKey(key).export({ type: 'spki', format: 'der' }),
});

export class PrivateKeyHandle {
  readonly #key: KeyObject;
  /** EC keys only: exported once, it yields both the public point and the PEM. */
  readonly #sec1: Buffer | undefined;
  readonly publicKey: PublicKeyInfo;
  readonly algorithm: SignatureAlgorithm;
  /** `ECDSA P-256`, `RSA 2048`: safe to log. */
  readonly description: string;

  private constructor(key: KeyObject, algorithm: SignatureAlgorithm, description: string) {
    this.#key = key;
    this.algorithm = algorithm;
    this.description = description;
    if (algorithm === 'sha256WithRSAEncryption') {
      this.publicKey = spkiInfo(key);
    } else {
      this.#sec1 = key.export({ type: 'sec1', format: 'der' });
      this.publicKey = ecPublicKeyInfo(
        this.#sec1,
        key,
        algorithm === 'ecdsa-with-SHA256' ? 'P-256' : 'P-384',
      );
    }
  }

  static generate(type: KeyType): PrivateKeyHandle {
    if (type === 'rsa-2048') {
      const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
      return new PrivateKeyHandle(privateKey, 'sha256WithRSAEncryption', 'RSA 2048');
    }
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return new PrivateKeyHandle(privateKey, 'ecdsa-with-SHA256', 'ECDSA P-256');
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
    const details = key.asymmetricKeyDetails ?? {};
    if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'prime256v1') {
      return ok(new PrivateKeyHandle(key, 'ecdsa-with-SHA256', 'ECDSA P-256'));
    }
    if (key.asymmetricKeyType === 'ec' && details.namedCurve === 'secp384r1') {
      return ok(new PrivateKeyHandle(key, 'ecdsa-with-SHA384', 'ECDSA P-384'));
    }
    if (key.asymmetricKeyType === 'rsa' && (details.modulusLength ?? 0) >= 2048) {
      return ok(new PrivateKeyHandle(key, 'sha256WithRSAEncryption', `RSA ${details.modulusLength}`));
    }
    const what =
      `${key.asymmetricKeyType ?? 'unknown'} ${details.namedCurve ?? details.modulusLength ?? ''}`.trim();
    return fail([
      { code: 'CA', message: `unsupported key (${what}): use EC P-256/P-384 or RSA ≥ 2048`, field: source },
    ]);
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
    if (!this.#sec1) return this.#key.export({ type: 'pkcs8', format: 'pem' }).toString();
    return derToPem(this.#sec1, 'EC PRIVATE KEY');
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
