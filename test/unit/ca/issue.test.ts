import { X509Certificate, createPrivateKey } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../../src/ca/index.ts';
import { fixedClock, openssl, opensslVerify, pemBlocks, tempDir } from './helpers.ts';

const HOUR = 3_600_000;
const his = { namespace: 'clinical', service: 'his' };

async function openCa(dir: string, opts: Partial<Parameters<typeof CertificateAuthority.open>[0]> = {}) {
  const ca = await CertificateAuthority.open({ dir, trustDomain: 'clinic.example', ...opts });
  if (!ca.ok) throw new Error(JSON.stringify(ca.errors));
  return ca.value;
}

describe('workload certificates', () => {
  const tmp = tempDir();
  let ca: CertificateAuthority;
  beforeAll(async () => {
    ca = await openCa(`${tmp.dir}/ca`);
  });
  afterAll(tmp.cleanup);

  it('verify against the root with Node and with openssl', () => {
    const cert = ca.issueWorkload(his);
    const leaf = new X509Certificate(cert.certChainPem);
    const root = new X509Certificate(ca.trustBundle()[0]!);
    expect(leaf.checkIssued(root)).toBe(true);
    expect(leaf.verify(root.publicKey)).toBe(true);
    const verified = opensslVerify(tmp.dir, cert.certChainPem, ca.trustBundle());
    expect(verified.output).toContain('OK');
    expect(verified.status).toBe(0);
  });

  it('carry exactly the SPIFFE ID as URI SAN', () => {
    const cert = ca.issueWorkload(his);
    expect(cert.spiffeId).toBe('spiffe://clinic.example/ns/clinical/sa/his');
    expect(ca.spiffeId(his)).toBe(cert.spiffeId);
    expect(new X509Certificate(cert.certChainPem).subjectAltName).toBe(
      'URI:spiffe://clinic.example/ns/clinical/sa/his',
    );
  });

  it('add requested DNS names after the SPIFFE ID', () => {
    const cert = ca.issueWorkload(his, { dnsNames: ['his.clinical.svc'] });
    expect(new X509Certificate(cert.certChainPem).subjectAltName).toBe(
      'URI:spiffe://clinic.example/ns/clinical/sa/his, DNS:his.clinical.svc',
    );
  });

  it('are end-entity certificates for both ends of mTLS (serverAuth, clientAuth)', () => {
    const leaf = new X509Certificate(ca.issueWorkload(his).certChainPem);
    expect(leaf.ca).toBe(false);
    expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']); // Node's name for extKeyUsage
  });

  it('hand out a private key that belongs to the certificate', () => {
    const cert = ca.issueWorkload(his);
    const key = createPrivateKey(cert.privateKeyPem);
    expect(new X509Certificate(cert.certChainPem).checkPrivateKey(key)).toBe(true);
    expect(key.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
  });

  it('get a fresh key and serial each time', () => {
    const a = ca.issueWorkload(his);
    const b = ca.issueWorkload(his);
    expect(a.serial).not.toBe(b.serial);
    expect(a.privateKeyPem).not.toBe(b.privateKeyPem);
    expect(new X509Certificate(a.certChainPem).serialNumber).toBe(a.serial);
  });

  it('reject a name that cannot be a SPIFFE path segment', () => {
    expect(() => ca.issueWorkload({ namespace: 'clinical', service: 'h/s' })).toThrow(TypeError);
  });
});

describe('workload certificate lifetime', () => {
  const tmp = tempDir();
  afterAll(tmp.cleanup);

  it('defaults to 24 hours and honours a per-issue TTL', async () => {
    const clock = fixedClock('2030-03-01T08:00:00Z');
    const ca = await openCa(`${tmp.dir}/ttl`, { now: clock.now });
    const day = ca.issueWorkload(his);
    expect(day.notAfter.getTime() - clock.now().getTime()).toBe(24 * HOUR);
    const short = ca.issueWorkload(his, { ttlMs: 2 * HOUR });
    expect(short.notAfter.toISOString()).toBe('2030-03-01T10:00:00.000Z');
    const leaf = new X509Certificate(short.certChainPem);
    expect(new Date(leaf.validTo).getTime()).toBe(short.notAfter.getTime());
    expect(new Date(leaf.validFrom).getTime()).toBe(short.notBefore.getTime());
    expect(short.notBefore.getTime()).toBeLessThanOrEqual(clock.now().getTime()); // backdated for skew
    expect(opensslVerify(tmp.dir, short.certChainPem, ca.trustBundle(), clock.now()).status).toBe(0);
    const late = opensslVerify(
      tmp.dir,
      short.certChainPem,
      ca.trustBundle(),
      new Date('2030-03-01T10:00:01Z'),
    );
    expect(late.output).toContain('certificate has expired');
  });

  it('honours the CA-wide workload TTL', async () => {
    const clock = fixedClock('2030-03-01T08:00:00Z');
    const ca = await openCa(`${tmp.dir}/wide`, { now: clock.now, workloadTtlMs: HOUR });
    expect(ca.issueWorkload(his).notAfter.toISOString()).toBe('2030-03-01T09:00:00.000Z');
  });

  it('backdates a short-lived certificate by at most a tenth of its lifetime', async () => {
    const clock = fixedClock('2030-03-01T08:00:00Z');
    const ca = await openCa(`${tmp.dir}/short-leaf`, { now: clock.now, rootTtlMs: 2 * HOUR });
    clock.advance(5 * 60_000);
    const cert = ca.issueWorkload(his, { ttlMs: 10_000 });
    expect(clock.now().getTime() - cert.notBefore.getTime()).toBe(1000);
    expect(cert.notAfter.getTime() - clock.now().getTime()).toBe(10_000);
  });

  it('never outlives the CA', async () => {
    const clock = fixedClock('2030-03-01T08:00:00Z');
    const ca = await openCa(`${tmp.dir}/short-root`, { now: clock.now, rootTtlMs: 2 * HOUR });
    clock.advance(90 * 60_000);
    const cert = ca.issueWorkload(his);
    expect(cert.notAfter.toISOString()).toBe('2030-03-01T10:00:00.000Z');
    clock.advance(HOUR);
    expect(() => ca.issueWorkload(his)).toThrow(/expired/);
  });
});

describe('key types', () => {
  const tmp = tempDir();
  afterAll(tmp.cleanup);

  it('issues RSA-2048 from an RSA CA when asked', async () => {
    const ca = await openCa(`${tmp.dir}/rsa`, { keyType: 'rsa-2048' });
    const cert = ca.issueWorkload(his);
    const leaf = new X509Certificate(cert.certChainPem);
    expect(leaf.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(leaf.verify(new X509Certificate(ca.trustBundle()[0]!).publicKey)).toBe(true);
    expect(createPrivateKey(cert.privateKeyPem).asymmetricKeyType).toBe('rsa');
    const text = openssl([
      'x509',
      '-noout',
      '-text',
      '-in',
      writeTo(tmp.dir, 'rsa-leaf.pem', cert.certChainPem),
    ]);
    expect(text.output).toContain('Signature Algorithm: sha256WithRSAEncryption');
    expect(text.output).toMatch(/Key Usage: critical\s+Digital Signature, Key Encipherment/);
    expect(opensslVerify(tmp.dir, cert.certChainPem, ca.trustBundle()).status).toBe(0);
  });

  it('signs ECDSA P-256 with ecdsa-with-SHA256 by default', async () => {
    const ca = await openCa(`${tmp.dir}/ec`);
    const cert = ca.issueWorkload(his);
    const text = openssl([
      'x509',
      '-noout',
      '-text',
      '-in',
      writeTo(tmp.dir, 'ec-leaf.pem', cert.certChainPem),
    ]);
    expect(text.output).toContain('Signature Algorithm: ecdsa-with-SHA256');
    expect(text.output).toContain('NIST CURVE: P-256');
    expect(text.output).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(text.output).toMatch(
      /Extended Key Usage: \s*TLS Web Server Authentication, TLS Web Client Authentication/,
    );
    expect(text.output).toContain('Authority Key Identifier');
  });
});

describe('an intermediate', () => {
  const tmp = tempDir();
  afterAll(tmp.cleanup);

  it('signs leaves, travels in the chain, and the chain verifies to the root', async () => {
    const ca = await openCa(`${tmp.dir}/int`, { intermediate: true });
    const cert = ca.issueWorkload(his);
    const [leafPem, intermediatePem, ...more] = pemBlocks(cert.certChainPem);
    expect(more).toEqual([]);
    const leaf = new X509Certificate(leafPem!);
    const intermediate = new X509Certificate(intermediatePem!);
    const root = new X509Certificate(ca.trustBundle()[0]!);
    expect(leaf.checkIssued(intermediate) && leaf.verify(intermediate.publicKey)).toBe(true);
    expect(intermediate.checkIssued(root) && intermediate.verify(root.publicKey)).toBe(true);
    expect(ca.trustBundle()).toHaveLength(1);
    expect(opensslVerify(tmp.dir, cert.certChainPem, ca.trustBundle()).status).toBe(0);
  });
});

function writeTo(dir: string, name: string, contents: string): string {
  writeFileSync(`${dir}/${name}`, contents);
  return `${dir}/${name}`;
}
