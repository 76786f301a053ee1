import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../../src/ca/index.ts';
import { tempDir } from './helpers.ts';

const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;

async function openCa(dir: string): Promise<CertificateAuthority> {
  const ca = await CertificateAuthority.open({ dir, trustDomain: 'clinic.example' });
  if (!ca.ok) throw new Error(JSON.stringify(ca.errors));
  return ca.value;
}

/** Stages a whole second CA as `*.next` files in `dir`, as a save interrupted before or after its commit. */
async function stageNext(dir: string, committed: boolean): Promise<string> {
  const other = path.join(dir, '..', `${path.basename(dir)}-other`);
  const next = await openCa(other);
  for (const f of ['ca.crt', 'ca.key'])
    writeFileSync(path.join(dir, `${f}.next`), readFileSync(path.join(other, f)));
  if (committed)
    writeFileSync(
      path.join(dir, '.commit.json'),
      JSON.stringify({ write: ['ca.crt', 'ca.key'], remove: [] }),
    );
  return next.trustBundle()[0]!;
}

describe('the CA directory after a crash mid-save', () => {
  const tmp = tempDir();
  afterAll(tmp.cleanup);

  it('keeps the old CA when the save had not committed', async () => {
    const dir = path.join(tmp.dir, 'uncommitted');
    const before = (await openCa(dir)).trustBundle()[0]!;
    await stageNext(dir, false);
    const after = await openCa(dir);
    expect(fingerprint(after.trustBundle()[0]!)).toBe(fingerprint(before));
    expect(readdirSync(dir).sort()).toEqual(['ca.crt', 'ca.key']);
  });

  it('finishes the save when it had committed, so certificate and key still match', async () => {
    const dir = path.join(tmp.dir, 'committed');
    await openCa(dir);
    const staged = await stageNext(dir, true);
    // half-applied: the certificate was renamed into place, the key not yet
    writeFileSync(path.join(dir, 'ca.crt'), readFileSync(path.join(dir, 'ca.crt.next')));
    const after = await openCa(dir);
    expect(fingerprint(after.trustBundle()[0]!)).toBe(fingerprint(staged));
    expect(readdirSync(dir).sort()).toEqual(['ca.crt', 'ca.key']);
    expect(existsSync(path.join(dir, '.commit.json'))).toBe(false);
  });

  it('names a key without its certificate instead of generating over it', async () => {
    const dir = path.join(tmp.dir, 'orphan-key');
    await openCa(dir);
    rmSync(path.join(dir, 'ca.crt'));
    const r = await CertificateAuthority.open({ dir, trustDomain: 'clinic.example' });
    expect(!r.ok && r.errors.map((e) => [e.code, e.field, e.message])).toEqual([
      ['CA', 'ca.crt', 'missing beside ca.key'],
    ]);
    expect(readdirSync(dir)).toEqual(['ca.key']);
  });
});
