import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { createCsr, parseCsr } from '../../../src/ca/index.ts';
import { opensslCsr, openssl, tempDir } from './helpers.ts';

const SPIFFE_ID = 'spiffe://clinic.example/ns/clinical/sa/his';
const ec = (namedCurve: string): KeyObject => generateKeyPairSync('ec', { namedCurve }).privateKey;
const rsa = (modulusLength: number): KeyObject => generateKeyPairSync('rsa', { modulusLength }).privateKey;
const fields = (r: ReturnType<typeof parseCsr>) => (r.ok ? [] : r.errors.map((e) => [e.code, e.field]));

/** The CSR's DER with `edit` applied, as PEM again. */
function tamper(pem: string, edit: (der: Buffer) => void): string {
  const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
  edit(der);
  const b64 = der
    .toString('base64')
    .match(/.{1,64}/g)!
    .join('\n');
  return `-----BEGIN CERTIFICATE REQUEST-----\n${b64}\n-----END CERTIFICATE REQUEST-----\n`;
}

describe('a CSR made by createCsr', () => {
  const tmp = tempDir();
  afterAll(tmp.cleanup);

  it('is a PKCS#10 request openssl verifies, with the SPIFFE ID asked for', () => {
    const pem = createCsr(ec('P-256'), { commonName: 'his.clinical', uriSans: [SPIFFE_ID] });
    expect(pem).toMatch(/^-----BEGIN CERTIFICATE REQUEST-----\n/);
    const file = `${tmp.dir}/his.csr`;
    writeFileSync(file, pem);
    expect(openssl(['req', '-in', file, '-noout', '-verify']).output).toContain('verify OK');
    const text = openssl(['req', '-in', file, '-noout', '-text']);
    expect(text.output).toContain(`URI:${SPIFFE_ID}`);
    expect(text.output).toContain('ecdsa-with-SHA256');
  });

  it('signs with the hash that fits the key', () => {
    const cases = [
      [ec('P-384'), 'ecdsa-with-SHA384'],
      [rsa(2048), 'sha256WithRSAEncryption'],
    ] as const;
    for (const [key, algorithm] of cases) {
      const file = `${tmp.dir}/${algorithm}.csr`;
      writeFileSync(file, createCsr(key));
      expect(openssl(['req', '-in', file, '-noout', '-text']).output).toContain(algorithm);
    }
  });

  it('refuses a key the CA would refuse to certify', () => {
    expect(() => createCsr(generateKeyPairSync('ed25519').privateKey)).toThrow(TypeError);
  });
});

describe('parseCsr', () => {
  const tmp = tempDir();
  afterAll(tmp.cleanup);

  it('reads the key and the names asked for from an EC P-256 CSR', () => {
    const key = ec('P-256');
    const r = parseCsr(createCsr(key, { uriSans: [SPIFFE_ID] }));
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    expect(r.value.keyDescription).toBe('ECDSA P-256');
    expect(r.value.uriSans).toEqual([SPIFFE_ID]);
    expect(r.value.dnsSans).toEqual([]);
    expect(r.value.spkiDer.equals(createPublicKey(key).export({ type: 'spki', format: 'der' }))).toBe(true);
  });

  it('accepts EC P-384 and RSA-2048, and a CSR the openssl CLI made', () => {
    expect(parseCsr(createCsr(ec('P-384'))).ok).toBe(true);
    expect(parseCsr(createCsr(rsa(2048))).ok).toBe(true);
    const cli = parseCsr(
      opensslCsr(tmp.dir, 'p256', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], SPIFFE_ID),
    );
    expect(cli.ok && cli.value.uriSans).toEqual([SPIFFE_ID]);
  });

  it('refuses RSA-512', () => {
    expect(fields(parseCsr(createCsr(rsa(512))))).toEqual([['CA', 'csr.publicKey']]);
  });

  it('refuses RSA-1024', () => {
    expect(fields(parseCsr(createCsr(rsa(1024))))).toEqual([['CA', 'csr.publicKey']]);
  });

  it('refuses an RSA key whose public exponent is not 65537, before any signature check', () => {
    // A huge exponent makes each verify cost milliseconds of the event loop: an unauthenticated
    // attest could stall the control plane with it (a review reproduced ~20 ms per CSR).
    const huge = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 0x7fffffff }).privateKey;
    for (const key of [
      huge,
      generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 }).privateKey,
    ]) {
      const parsed = parseCsr(createCsr(key));
      expect(fields(parsed)).toEqual([['CA', 'csr.publicKey']]);
      expect(parsed.ok ? '' : parsed.errors[0]!.message).toContain('exponent');
    }
  });

  it('refuses Ed25519', () => {
    const pem = opensslCsr(tmp.dir, 'ed25519', ['-algorithm', 'ed25519']);
    expect(fields(parseCsr(pem))).toEqual([['CA', 'csr.publicKey']]);
  });

  it('refuses other curves', () => {
    const pem = opensslCsr(tmp.dir, 'k1', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:secp256k1']);
    expect(fields(parseCsr(pem))).toEqual([['CA', 'csr.publicKey']]);
  });

  it('refuses an EC point that is not on its curve', () => {
    const key = ec('P-256');
    const point = createPublicKey(key).export({ type: 'spki', format: 'der' }).subarray(-65);
    const offCurve = tamper(createCsr(key), (der) => void (der[der.indexOf(point) + 10]! ^= 0x01));
    expect(fields(parseCsr(offCurve))).toEqual([['CA', 'csr.publicKey']]);
  });

  it('refuses a signature that does not verify (no proof of possession)', () => {
    const pem = createCsr(ec('P-256'), { uriSans: [SPIFFE_ID] });
    const lastByteFlipped = tamper(pem, (der) => void (der[der.length - 1]! ^= 0x01));
    expect(fields(parseCsr(lastByteFlipped))).toEqual([['CA', 'csr.signature']]);
  });

  it('refuses a request changed after it was signed', () => {
    const pem = createCsr(ec('P-256'), { uriSans: [SPIFFE_ID] });
    const renamed = tamper(pem, (der) => {
      const at = der.indexOf(Buffer.from('/sa/his'));
      der.write('/sa/emr', at, 'latin1');
    });
    expect(fields(parseCsr(renamed))).toEqual([['CA', 'csr.signature']]);
  });

  it('refuses a key signed for with another key', () => {
    const theirs = createCsr(ec('P-256'));
    const ours = createCsr(ec('P-256'));
    // our signature over their request: same length fields, different key
    const spliced = tamper(theirs, (der) => {
      const sig = Buffer.from(ours.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64');
      sig.subarray(sig.length - 20).copy(der, der.length - 20);
    });
    expect(fields(parseCsr(spliced))).toEqual([['CA', 'csr.signature']]);
  });

  it('refuses what is not a CSR: a bare public key, a certificate, garbage, a truncated request', () => {
    const key = ec('P-256');
    const spki = createPublicKey(key).export({ type: 'spki', format: 'pem' }).toString();
    const truncated = tamper(createCsr(key), () => undefined).replace(/\n[^\n]+\n(-----END)/, '\n$1');
    for (const pem of [spki, 'not a csr', '', truncated, tamper(createCsr(key), (d) => void (d[0] = 0x31))]) {
      expect(fields(parseCsr(pem))).toEqual([['CA', 'csr']]);
    }
  });
});
