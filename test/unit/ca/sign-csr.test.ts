import {
  X509Certificate,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority, createCsr } from '../../../src/ca/index.ts';
import { opensslVerify, pemBlocks, tempDir } from './helpers.ts';

const his = { namespace: 'clinical', service: 'his' };
const HIS_ID = 'spiffe://clinic.example/ns/clinical/sa/his';
const ec = (namedCurve = 'P-256'): KeyObject => generateKeyPairSync('ec', { namedCurve }).privateKey;
const spki = (key: KeyObject): Buffer => createPublicKey(key).export({ type: 'spki', format: 'der' });

async function openCa(dir: string, intermediate = false): Promise<CertificateAuthority> {
  const ca = await CertificateAuthority.open({ dir, trustDomain: 'clinic.example', intermediate });
  if (!ca.ok) throw new Error(JSON.stringify(ca.errors));
  return ca.value;
}

const refusal = (r: { ok: boolean; errors?: readonly { code: string; field?: string }[] }) =>
  r.ok ? 'accepted' : r.errors!.map((e) => [e.code, e.field]);

/** A CA key as the test reads it from the CA directory: the CA never hands its keys out. */
const caKey = (dir: string, file: string): KeyObject =>
  createPrivateKey(readFileSync(path.join(dir, file), 'utf8'));

describe('signing a CSR', () => {
  const tmp = tempDir();
  let ca: CertificateAuthority;
  beforeAll(async () => {
    ca = await openCa(path.join(tmp.dir, 'ca'));
  });
  afterAll(tmp.cleanup);

  for (const [name, makeKey] of [
    ['EC P-384', () => ec('P-384')],
    ['RSA-2048', () => generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey],
    ['EC P-256', () => ec()],
  ] as const) {
    it(`certifies the CSR's own ${name} key for the attested identity`, () => {
      const key = makeKey();
      const r = ca.signCsr(his, createCsr(key, { uriSans: [HIS_ID] }));
      if (!r.ok) throw new Error(JSON.stringify(r.errors));
      const leaf = new X509Certificate(r.value.certChainPem);
      const root = new X509Certificate(ca.trustBundle()[0]!);
      expect(leaf.checkIssued(root) && leaf.verify(root.publicKey)).toBe(true);
      expect(r.value.spiffeId).toBe(HIS_ID);
      expect(leaf.subjectAltName).toBe(`URI:${HIS_ID}`);
      expect(leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(spki(key))).toBe(true);
      expect(leaf.checkPrivateKey(key)).toBe(true);
      expect(leaf.serialNumber).toBe(r.value.serial);
      expect(opensslVerify(tmp.dir, r.value.certChainPem, ca.trustBundle()).status).toBe(0);
    });
  }

  it('takes the identity from the caller, not the CSR: a CSR naming no SAN or another CN gets the attested ID', () => {
    const r = ca.signCsr(his, createCsr(ec(), { commonName: 'emr.clinical' }));
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(new X509Certificate(r.value.certChainPem).subject).toBe('O=clinic.example\nCN=his.clinical');
    expect(r.value.spiffeId).toBe(HIS_ID);
  });

  it('honours a per-request lifetime', () => {
    const r = ca.signCsr(his, createCsr(ec()), { ttlMs: 3_600_000 });
    expect(r.ok && r.value.notAfter.getTime() - Date.now()).toBeLessThanOrEqual(3_600_000);
    expect(r.ok && r.value.notAfter.getTime() - Date.now()).toBeGreaterThan(3_500_000);
  });

  it('refuses a URI SAN in a foreign trust domain', () => {
    const csr = createCsr(ec(), { uriSans: ['spiffe://evil.example/ns/clinical/sa/his'] });
    expect(refusal(ca.signCsr(his, csr))).toEqual([['CA', 'csr.uriSans']]);
  });

  it('refuses a URI SAN for another workload, or one beside the right ID', () => {
    const other = createCsr(ec(), { uriSans: ['spiffe://clinic.example/ns/clinical/sa/emr'] });
    expect(refusal(ca.signCsr(his, other))).toEqual([['CA', 'csr.uriSans']]);
    const extra = createCsr(ec(), { uriSans: [HIS_ID, 'https://his.example'] });
    expect(refusal(ca.signCsr(his, extra))).toEqual([['CA', 'csr.uriSans']]);
  });

  it('refuses the namespace reserved for the control plane', () => {
    const csr = createCsr(ec(), {
      uriSans: ['spiffe://clinic.example/ns/clinimesh-system/sa/control-plane'],
    });
    const r = ca.signCsr({ namespace: 'clinimesh-system', service: 'control-plane' }, csr);
    expect(refusal(r)).toEqual([['CA', 'namespace']]);
  });

  it('refuses a bare public key: there is no proof of possession', () => {
    const bare = createPublicKey(ec()).export({ type: 'spki', format: 'pem' }).toString();
    expect(refusal(ca.signCsr(his, bare))).toEqual([['CA', 'csr']]);
  });

  it('refuses a CSR whose signature was tampered with', () => {
    const pem = createCsr(ec(), { uriSans: [HIS_ID] });
    const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
    der[der.length - 1]! ^= 0x01;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    expect(refusal(ca.signCsr(his, tampered))).toEqual([['CA', 'csr.signature']]);
  });

  it('refuses a weak key', () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    expect(refusal(ca.signCsr(his, createCsr(weak)))).toEqual([['CA', 'csr.publicKey']]);
  });
});

describe('a CSR carrying a CA key', () => {
  const tmp = tempDir();
  afterAll(tmp.cleanup);

  it('is refused for the root key', async () => {
    const dir = path.join(tmp.dir, 'root');
    const ca = await openCa(dir);
    const csr = createCsr(caKey(dir, 'ca.key'), { uriSans: [HIS_ID] });
    expect(refusal(ca.signCsr(his, csr))).toEqual([['CA', 'csr.publicKey']]);
  });

  it('is refused for the intermediate key', async () => {
    const dir = path.join(tmp.dir, 'intermediate');
    const ca = await openCa(dir, true);
    for (const file of ['ca.key', 'intermediate.key']) {
      expect(refusal(ca.signCsr(his, createCsr(caKey(dir, file))))).toEqual([['CA', 'csr.publicKey']]);
    }
  });

  it('is refused for a root a rotation is retiring', async () => {
    const dir = path.join(tmp.dir, 'retiring');
    const ca = await openCa(dir);
    const oldRoot = caKey(dir, 'ca.key');
    expect((await ca.beginRootRotation()).ok).toBe(true);
    expect(refusal(ca.signCsr(his, createCsr(oldRoot)))).toEqual([['CA', 'csr.publicKey']]);
    expect(refusal(ca.signCsr(his, createCsr(caKey(dir, 'ca.key'))))).toEqual([['CA', 'csr.publicKey']]);
    // and after a restart mid-rotation, where the retiring root comes back from previous-ca.crt
    const reopened = await openCa(dir);
    expect(refusal(reopened.signCsr(his, createCsr(oldRoot)))).toEqual([['CA', 'csr.publicKey']]);
    const chain = reopened.signCsr(his, createCsr(ec()));
    expect(chain.ok && pemBlocks(chain.value.certChainPem)).toHaveLength(1);
  });
});
