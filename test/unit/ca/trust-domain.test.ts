import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CertificateAuthority, createCsr } from '../../../src/ca/index.ts';
import { opensslRoot, tempDir } from './helpers.ts';

const his = { namespace: 'clinical', service: 'his' };
type Opened = Awaited<ReturnType<typeof CertificateAuthority.open>>;
const refusal = (r: Opened | Awaited<ReturnType<CertificateAuthority['migrateTrustDomain']>>) =>
  r.ok ? 'accepted' : r.errors.map((e) => [e.code, e.field]);

async function openCa(dir: string, trustDomain: string): Promise<CertificateAuthority> {
  const ca = await CertificateAuthority.open({ dir, trustDomain });
  if (!ca.ok) throw new Error(JSON.stringify(ca.errors));
  return ca.value;
}

describe('the trust domain of a generated CA', () => {
  const tmp = tempDir();
  afterAll(tmp.cleanup);

  it('is named by the root: URI SAN spiffe://<trust-domain>, and in its subject', async () => {
    const dir = path.join(tmp.dir, 'generated');
    const ca = await openCa(dir, 'clinic.example');
    const root = new X509Certificate(readFileSync(path.join(dir, 'ca.crt'), 'utf8'));
    expect(root.subjectAltName).toBe('URI:spiffe://clinic.example');
    expect(root.subject).toContain('O=clinic.example');
    expect(root.subject).toContain('CN=clinimesh root CA clinic.example');
    expect(ca.trustDomain).toBe('clinic.example');
  });

  it('refuses to open with another trust domain', async () => {
    const dir = path.join(tmp.dir, 'mismatch');
    await openCa(dir, 'clinic.example');
    const r = await CertificateAuthority.open({ dir, trustDomain: 'hospital.example' });
    expect(refusal(r)).toEqual([['CA', 'trustDomain']]);
    expect(!r.ok && r.errors[0]!.message).toContain('migrateTrustDomain');
  });

  it('changes only by an explicit migration, which a restart keeps', async () => {
    const dir = path.join(tmp.dir, 'migrate');
    const ca = await openCa(dir, 'clinic.example');
    const rootBefore = readFileSync(path.join(dir, 'ca.crt'), 'utf8');
    expect((await ca.migrateTrustDomain('hospital.example')).ok).toBe(true);
    expect(ca.trustDomain).toBe('hospital.example');
    expect(ca.spiffeId(his)).toBe('spiffe://hospital.example/ns/clinical/sa/his');
    expect(readFileSync(path.join(dir, 'trust-domain'), 'utf8')).toBe('hospital.example\n');
    expect(statSync(path.join(dir, 'trust-domain')).mode & 0o777).toBe(0o600);
    expect(readFileSync(path.join(dir, 'ca.crt'), 'utf8')).toBe(rootBefore); // the root keeps its SAN

    const signed = ca.signCsr(his, createCsr(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey));
    expect(signed.ok && signed.value.spiffeId).toBe('spiffe://hospital.example/ns/clinical/sa/his');
    const reopened = await openCa(dir, 'hospital.example');
    expect(reopened.trustDomain).toBe('hospital.example');
    expect(refusal(await CertificateAuthority.open({ dir, trustDomain: 'clinic.example' }))).toEqual([
      ['CA', 'trustDomain'],
    ]);
  });

  it('names the new trust domain in the next generated root', async () => {
    const dir = path.join(tmp.dir, 'migrate-rotate');
    const ca = await openCa(dir, 'clinic.example');
    expect((await ca.migrateTrustDomain('hospital.example')).ok).toBe(true);
    expect((await ca.beginRootRotation()).ok).toBe(true);
    expect(new X509Certificate(ca.trustBundle()[0]!).subjectAltName).toBe('URI:spiffe://hospital.example');
  });

  it('refuses a migration to a name that is not a trust domain', async () => {
    const ca = await openCa(path.join(tmp.dir, 'bad-migration'), 'clinic.example');
    expect(refusal(await ca.migrateTrustDomain('Hospital Example'))).toEqual([['CA', 'trustDomain']]);
    expect(ca.trustDomain).toBe('clinic.example');
  });
});

describe('the trust domain of a brought CA', () => {
  const tmp = tempDir();
  afterAll(tmp.cleanup);

  function brought(name: string): string {
    const dir = path.join(tmp.dir, name);
    mkdirSync(dir);
    opensslRoot(dir);
    return dir;
  }

  it('is recorded in a trust-domain file on first open and held to afterwards', async () => {
    const dir = brought('operator');
    await openCa(dir, 'clinic.example');
    expect(readFileSync(path.join(dir, 'trust-domain'), 'utf8')).toBe('clinic.example\n');
    expect((await openCa(dir, 'clinic.example')).trustDomain).toBe('clinic.example');
    expect(refusal(await CertificateAuthority.open({ dir, trustDomain: 'hospital.example' }))).toEqual([
      ['CA', 'trustDomain'],
    ]);
  });

  it('opens with a warning when the file cannot be written', async () => {
    const dir = brought('unwritable');
    mkdirSync(path.join(dir, 'trust-domain.tmp')); // in the way of the staged file, even for root
    const ca = await openCa(dir, 'clinic.example');
    expect(ca.warnings.map((w) => [w.code, w.field])).toEqual([['CA', 'trust-domain']]);
  });

  it('may come as a secret key beside the PEM', async () => {
    const dir = brought('secret');
    const read = (f: string) => readFileSync(path.join(dir, f), 'utf8');
    const pem = { 'ca.crt': read('ca.crt'), 'ca.key': read('ca.key'), 'trust-domain': 'clinic.example\n' };
    expect((await CertificateAuthority.fromPem(pem, { trustDomain: 'clinic.example' })).ok).toBe(true);
    const other = await CertificateAuthority.fromPem(pem, { trustDomain: 'hospital.example' });
    expect(!other.ok && other.errors.map((e) => [e.code, e.field])).toEqual([['CA', 'trustDomain']]);
  });
});
