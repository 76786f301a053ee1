import { inspect } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority, PrivateKeyHandle, type WorkloadCert } from '../../../src/ca/index.ts';
import { tempDir } from './helpers.ts';

const everyWayOfShowing = (x: unknown): string[] => [
  JSON.stringify(x),
  JSON.stringify({ nested: [x] }),
  inspect(x, { depth: 10, showHidden: true, getters: true }),
  inspect({ nested: x }, { depth: 10 }),
  `${String(x)}`,
  JSON.stringify({ ...(x as object) }),
];

describe('private keys never show by accident', () => {
  const tmp = tempDir();
  let ca: CertificateAuthority;
  let cert: WorkloadCert;
  beforeAll(async () => {
    const opened = await CertificateAuthority.open({
      dir: `${tmp.dir}/ca`,
      trustDomain: 'clinic.example',
      intermediate: true,
    });
    if (!opened.ok) throw new Error('open failed');
    ca = opened.value;
    cert = ca.issueWorkload({ namespace: 'clinical', service: 'his' });
  });
  afterAll(tmp.cleanup);

  it('not from the CA', () => {
    for (const shown of everyWayOfShowing(ca)) expect(shown).not.toContain('PRIVATE KEY');
    expect(JSON.parse(JSON.stringify(ca))).toMatchObject({
      trustDomain: 'clinic.example',
      signingKey: 'ECDSA P-256',
    });
  });

  it('not from a workload certificate, though its key is there to be asked for', () => {
    for (const shown of everyWayOfShowing(cert)) expect(shown).not.toContain('PRIVATE KEY');
    expect(JSON.parse(JSON.stringify(cert))).toMatchObject({
      spiffeId: cert.spiffeId,
      privateKey: '[redacted]',
    });
    expect(Object.keys(cert)).not.toContain('privateKeyPem');
    expect(structuredClone({ ...cert })).not.toHaveProperty('privateKeyPem');
    // Spelled in two parts so no committed file looks like it holds a key.
    expect(cert.privateKeyPem).toContain(`-----BEGIN EC ${'PRIVATE'} KEY-----`);
  });

  it('not from a key handle', () => {
    for (const type of ['ecdsa-p256', 'rsa-2048'] as const) {
      const key = PrivateKeyHandle.generate(type);
      for (const shown of everyWayOfShowing(key)) expect(shown).not.toContain('PRIVATE KEY');
      expect(key.exportPem()).toContain('PRIVATE KEY-----');
    }
  });

  it('not from a problem about a bad key', () => {
    const key = PrivateKeyHandle.generate('ecdsa-p256').exportPem();
    const truncated = key.slice(0, key.length - 40);
    const r = PrivateKeyHandle.fromPem(truncated, 'ca.key');
    expect(r.ok).toBe(false);
    expect(JSON.stringify(r)).not.toContain(truncated.split('\n')[1]!);
    expect(JSON.stringify(r)).not.toContain('PRIVATE KEY');
  });
});
