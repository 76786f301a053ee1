import { X509Certificate } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  statSync,
  chmodSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CertificateAuthority, parseCaPem } from '../../../src/ca/index.ts';
import { opensslIntermediate, opensslRoot, opensslVerify, pemBlocks, tempDir } from './helpers.ts';

const his = { namespace: 'clinical', service: 'his' };
const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;
const mode = (file: string): number => statSync(file).mode & 0o777;

describe('a CA generated on first start', () => {
  const tmp = tempDir();
  afterAll(tmp.cleanup);

  it('is persisted with directory mode 0700 and file mode 0600', async () => {
    const dir = path.join(tmp.dir, 'generated');
    const ca = await CertificateAuthority.open({ dir, trustDomain: 'clinic.example' });
    expect(ca.ok).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['ca.crt', 'ca.key']);
    expect(mode(dir)).toBe(0o700);
    for (const f of readdirSync(dir)) expect(mode(path.join(dir, f))).toBe(0o600);
  });

  it('is loaded again on the next start: same root', async () => {
    const dir = path.join(tmp.dir, 'reopen');
    const first = await CertificateAuthority.open({ dir, trustDomain: 'clinic.example', intermediate: true });
    const second = await CertificateAuthority.open({
      dir,
      trustDomain: 'clinic.example',
      intermediate: true,
    });
    if (!first.ok || !second.ok) throw new Error('open failed');
    expect(fingerprint(second.value.trustBundle()[0]!)).toBe(fingerprint(first.value.trustBundle()[0]!));
    expect(second.value.describe().intermediate?.fingerprint256).toBe(
      first.value.describe().intermediate?.fingerprint256,
    );
    // a leaf from the reopened CA verifies against the first run's bundle
    const cert = second.value.issueWorkload(his);
    expect(opensslVerify(tmp.dir, cert.certChainPem, first.value.trustBundle()).status).toBe(0);
  });

  it('writes a root that is a self-signed CA for the trust domain', async () => {
    const dir = path.join(tmp.dir, 'shape');
    const ca = await CertificateAuthority.open({ dir, trustDomain: 'clinic.example' });
    if (!ca.ok) throw new Error('open failed');
    const root = new X509Certificate(readFileSync(path.join(dir, 'ca.crt'), 'utf8'));
    expect(root.ca).toBe(true);
    expect(root.verify(root.publicKey)).toBe(true);
    expect(root.subject).toMatch(/^O=clinic\.example\nCN=clinimesh root CA clinic\.example [0-9a-f]{8}$/);
    expect(root.subjectAltName).toBe('URI:spiffe://clinic.example');
    expect(ca.value.describe().root.fingerprint256).toBe(root.fingerprint256);
  });

  it('rejects an invalid trust domain and TTL with problems, not exceptions', async () => {
    const r = await CertificateAuthority.open({
      dir: path.join(tmp.dir, 'bad'),
      trustDomain: 'Clinic Example',
      workloadTtlMs: 5,
    });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors.map((e) => [e.code, e.field])).toEqual([
      ['CA', 'trustDomain'],
      ['CA', 'workloadTtlMs'],
    ]);
    expect(existsSync(path.join(tmp.dir, 'bad'))).toBe(false);
  });

  it('reports an unwritable directory as an IO problem', async () => {
    const file = path.join(tmp.dir, 'a-file');
    writeFileSync(file, ''); // a file where the directory should be: fails even for root
    const r = await CertificateAuthority.open({ dir: path.join(file, 'ca'), trustDomain: 'clinic.example' });
    expect(!r.ok && r.errors.map((e) => e.code)).toEqual(['IO']);
  });
});

describe('a CA the operator brings', () => {
  const tmp = tempDir();
  afterAll(tmp.cleanup);

  function broughtDir(name: string, opts: Parameters<typeof opensslRoot>[2] = {}): string {
    const dir = path.join(tmp.dir, name);
    mkdirSync(dir);
    opensslRoot(dir, 'ca', opts);
    return dir;
  }

  it('is used as it is: leaves chain to the operator root and only its trust domain is written', async () => {
    const dir = broughtDir('brought');
    const before = readdirSync(dir).sort();
    const ca = await CertificateAuthority.open({ dir, trustDomain: 'clinic.example' });
    if (!ca.ok) throw new Error(JSON.stringify(ca.errors));
    expect(ca.value.trustBundle()).toEqual([readFileSync(path.join(dir, 'ca.crt'), 'utf8')]);
    const cert = ca.value.issueWorkload(his);
    const verified = opensslVerify(tmp.dir, cert.certChainPem, ca.value.trustBundle());
    expect(verified.output).toContain('OK');
    expect(new X509Certificate(cert.certChainPem).issuer).toBe('O=Operator Clinic\nCN=Operator Root CA');
    expect(readdirSync(dir).sort()).toEqual([...before, 'trust-domain'].sort());
    expect(readFileSync(path.join(dir, 'trust-domain'), 'utf8')).toBe('clinic.example\n');
    expect(mode(path.join(dir, 'trust-domain'))).toBe(0o600);
  });

  it('may be RSA while workload keys stay ECDSA', async () => {
    const dir = broughtDir('brought-rsa', { key: 'rsa' });
    const ca = await CertificateAuthority.open({ dir, trustDomain: 'clinic.example' });
    if (!ca.ok) throw new Error(JSON.stringify(ca.errors));
    const cert = ca.value.issueWorkload(his);
    expect(new X509Certificate(cert.certChainPem).publicKey.asymmetricKeyType).toBe('ec');
    expect(opensslVerify(tmp.dir, cert.certChainPem, ca.value.trustBundle()).status).toBe(0);
  });

  it('is rejected with a problem when the key does not match the certificate', async () => {
    const dir = broughtDir('mismatch');
    const other = broughtDir('other');
    copyFileSync(path.join(other, 'ca.key'), path.join(dir, 'ca.key'));
    const r = await CertificateAuthority.open({ dir, trustDomain: 'clinic.example' });
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.errors).toEqual([expect.objectContaining({ code: 'CA', field: 'ca.key', resource: dir })]);
    expect(JSON.stringify(r.errors)).not.toContain('PRIVATE KEY');
  });

  it('is rejected when it is not a CA, or has expired', async () => {
    const leafDir = broughtDir('not-ca', { extensions: 'leaf' });
    const notCa = await CertificateAuthority.open({ dir: leafDir, trustDomain: 'clinic.example' });
    expect(!notCa.ok && notCa.errors.map((e) => e.field)).toContain('ca.crt');
    expect(!notCa.ok && notCa.errors.some((e) => e.message.includes('CA:TRUE'))).toBe(true);

    const dir = broughtDir('expiring', { days: 1 });
    const later = () => new Date(Date.now() + 2 * 86_400_000);
    const expired = await CertificateAuthority.open({ dir, trustDomain: 'clinic.example', now: later });
    expect(!expired.ok && expired.errors.map((e) => [e.code, e.field, e.message.split(' ')[0]])).toEqual([
      ['CA', 'ca.crt', 'expired'],
    ]);
  });

  it('reports every problem at once', async () => {
    const dir = broughtDir('garbage');
    const r = parseCaPem({ 'ca.crt': 'not a certificate', 'ca.key': 'not a key' }, new Date(), dir);
    expect(!r.ok && r.errors.map((e) => e.field)).toEqual(['ca.key', 'ca.crt']);
    const good = readFileSync(path.join(dir, 'ca.crt'), 'utf8');
    const r2 = parseCaPem({ 'ca.crt': good, 'ca.key': 'not a key' }, new Date(), dir);
    expect(!r2.ok && r2.errors.map((e) => e.field)).toEqual(['ca.key']);
  });

  it('may keep its root key offline and sign with a brought intermediate', async () => {
    const dir = broughtDir('offline-root');
    opensslIntermediate(dir);
    renameSync(path.join(dir, 'ca.key'), path.join(tmp.dir, 'offline-root.key'));
    const ca = await CertificateAuthority.open({ dir, trustDomain: 'clinic.example' });
    if (!ca.ok) throw new Error(JSON.stringify(ca.errors));
    const cert = ca.value.issueWorkload(his);
    expect(pemBlocks(cert.certChainPem)).toHaveLength(2);
    expect(opensslVerify(tmp.dir, cert.certChainPem, ca.value.trustBundle()).status).toBe(0);
  });

  it('is rejected when the intermediate was not issued by the root', async () => {
    const dir = broughtDir('foreign-intermediate');
    const foreign = broughtDir('foreign-root');
    opensslIntermediate(foreign);
    for (const f of ['intermediate.crt', 'intermediate.key'])
      copyFileSync(path.join(foreign, f), path.join(dir, f));
    const r = await CertificateAuthority.open({ dir, trustDomain: 'clinic.example' });
    expect(!r.ok && r.errors.map((e) => [e.field, e.message])).toEqual([
      ['intermediate.crt', 'not issued by ca.crt'],
    ]);
  });

  it('can come from PEM strings (a Kubernetes secret) and is kept in memory', async () => {
    const dir = broughtDir('secret');
    const read = (f: string) => readFileSync(path.join(dir, f), 'utf8');
    const ca = await CertificateAuthority.fromPem(
      { 'ca.crt': read('ca.crt'), 'ca.key': read('ca.key') },
      { trustDomain: 'clinic.example' },
    );
    if (!ca.ok) throw new Error(JSON.stringify(ca.errors));
    expect(ca.value.describe().location).toBe('memory');
    expect(opensslVerify(tmp.dir, ca.value.issueWorkload(his).certChainPem, [read('ca.crt')]).status).toBe(0);
  });

  it('keeps trusting a retiring root brought beside it (a secret mid-rotation)', async () => {
    const dir = broughtDir('secret-rotating');
    const old = broughtDir('secret-old');
    const read = (d: string, f: string) => readFileSync(path.join(d, f), 'utf8');
    const ca = await CertificateAuthority.fromPem(
      {
        'ca.crt': read(dir, 'ca.crt'),
        'ca.key': read(dir, 'ca.key'),
        'previous-ca.crt': read(old, 'ca.crt'),
      },
      { trustDomain: 'clinic.example' },
    );
    if (!ca.ok) throw new Error(JSON.stringify(ca.errors));
    expect(ca.value.rotating).toBe(true);
    expect(ca.value.trustBundle().map(fingerprint)).toEqual([
      fingerprint(read(dir, 'ca.crt')),
      fingerprint(read(old, 'ca.crt')),
    ]);
  });

  it('warns when its key file is readable by others', async () => {
    const dir = broughtDir('loose');
    chmodSync(path.join(dir, 'ca.key'), 0o644);
    const ca = await CertificateAuthority.open({ dir, trustDomain: 'clinic.example' });
    if (!ca.ok) throw new Error(JSON.stringify(ca.errors));
    expect(ca.value.warnings).toEqual([expect.objectContaining({ code: 'CA', field: 'ca.key' })]);
  });
});
