// Envelope encryption of the CA's private keys for a shared store: each save makes a fresh data key
// (AES-256-GCM) that encrypts the keys, and the data key is itself encrypted with the
// key-encryption key (KEK) every replica reads from a file (on Kubernetes, a mounted Secret). The
// sealed box names the KEK by id (a hash of it, never the key), so a KEK can be rotated later and a
// wrong one is a clear error, not garbage. Additional authenticated data binds a box to where it
// is stored and to the certificate it belongs to: a box moved elsewhere does not open.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fail, ok, type Result } from '../errors.ts';

export interface Kek {
  /** First 16 hex digits of SHA-256 of the key: names it without revealing it. */
  readonly id: string;
  readonly key: Buffer;
  /** Where it was read from, for messages. */
  readonly file: string;
}

interface GcmBox {
  readonly iv: string;
  readonly tag: string;
  readonly data: string;
}

export interface SealedBox {
  readonly alg: 'AES-256-GCM';
  /** The KEK's id. */
  readonly kid: string;
  /** The data key, encrypted with the KEK. */
  readonly dek: GcmBox;
  /** The payload, encrypted with the data key. */
  readonly payload: GcmBox;
}

const kekId = (key: Buffer): string => createHash('sha256').update(key).digest('hex').slice(0, 16);

/** A KEK from its bytes (32 raw bytes, or their base64 or hex as text). */
export function kekFromBytes(bytes: Buffer, file: string): Result<Kek> {
  const text = bytes.toString('utf8').trim();
  const key =
    bytes.length === 32
      ? bytes
      : /^[0-9a-f]{64}$/i.test(text)
        ? Buffer.from(text, 'hex')
        : /^[A-Za-z0-9+/_-]{43}=?$/.test(text)
          ? Buffer.from(text, 'base64')
          : undefined;
  if (key?.length !== 32)
    return fail([
      {
        code: 'CA',
        field: 'ca-kek-file',
        resource: file,
        message:
          'a key-encryption key is 32 random bytes (raw, or as 64 hex digits or base64): make one with `head -c 32 /dev/urandom > FILE`',
      },
    ]);
  return ok({ id: kekId(key), key, file });
}

export function readKek(file: string): Result<Kek> {
  try {
    return kekFromBytes(readFileSync(file), file);
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code ?? (e as Error).message;
    return fail([
      {
        code: 'CA',
        field: 'ca-kek-file',
        resource: file,
        message: `cannot read the key-encryption key (${reason})`,
      },
    ]);
  }
}

function encrypt(key: Buffer, plain: Buffer, aad: string): GcmBox {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad));
  const data = Buffer.concat([cipher.update(plain), cipher.final()]);
  return {
    iv: iv.toString('base64'),
    tag: cipher.getAuthTag().toString('base64'),
    data: data.toString('base64'),
  };
}

function decrypt(key: Buffer, box: GcmBox, aad: string): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(box.iv, 'base64'));
  decipher.setAAD(Buffer.from(aad));
  decipher.setAuthTag(Buffer.from(box.tag, 'base64'));
  return Buffer.concat([decipher.update(Buffer.from(box.data, 'base64')), decipher.final()]);
}

/** Seals `plain` under a fresh data key wrapped by `kek`; `aad` must be given again to open it. */
export function seal(plain: Buffer, kek: Kek, aad: string): SealedBox {
  const dek = randomBytes(32);
  try {
    return {
      alg: 'AES-256-GCM',
      kid: kek.id,
      dek: encrypt(kek.key, dek, `${aad}\ndek`),
      payload: encrypt(dek, plain, aad),
    };
  } finally {
    dek.fill(0);
  }
}

function isBox(v: unknown): v is GcmBox {
  const b = v as Partial<GcmBox> | null;
  return typeof b?.iv === 'string' && typeof b.tag === 'string' && typeof b.data === 'string';
}

export function isSealedBox(v: unknown): v is SealedBox {
  const b = v as Partial<SealedBox> | null;
  return b?.alg === 'AES-256-GCM' && typeof b.kid === 'string' && isBox(b.dek) && isBox(b.payload);
}

/** Opens a box sealed by `seal`; a box for another KEK, or one altered or moved, is a CA problem. */
export function unseal(box: SealedBox, kek: Kek, aad: string, resource: string): Result<Buffer> {
  if (box.kid !== kek.id)
    return fail([
      {
        code: 'CA',
        field: 'ca-kek-file',
        resource,
        message: `the CA keys are sealed with key-encryption key ${box.kid}, but ${kek.file} holds key ${kek.id}: every replica needs the same KEK`,
      },
    ]);
  let dek: Buffer | undefined;
  try {
    dek = decrypt(kek.key, box.dek, `${aad}\ndek`);
    return ok(decrypt(dek, box.payload, aad));
  } catch {
    return fail([
      {
        code: 'CA',
        field: 'keys',
        resource,
        message: `the sealed CA keys do not open with ${kek.file} (key ${kek.id}): altered, or stored under another name`,
      },
    ]);
  } finally {
    dek?.fill(0);
  }
}
