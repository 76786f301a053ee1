import { X509Certificate } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../../src/ca/index.ts';
import { opensslRoot, opensslVerify, tempDir } from './helpers.ts';

const emr = { namespace: 'clinical', service: 'emr' };
const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;

async function openCa(dir: string, intermediate = false): Promise<CertificateAuthority> {
  const ca = await CertificateAuthority.open({ dir, trustDomain: 'clinic.example', intermediate });
  if (!ca.ok) throw new Error(JSON.stringify(ca.errors));
  return ca.value;
}

describe('root rotation', () => {
  const tmp = tempDir();
  afterAll(tmp.cleanup);

  for (const intermediate of [false, true]) {
    it(`trusts both roots during the overlap and only the new one after${intermediate ? ' (with intermediates)' : ''}`, async () => {
      const ca = await openCa(path.join(tmp.dir, `rotate-${intermediate}`), intermediate);
      const oldRoot = ca.trustBundle()[0]!;
      const oldLeaf = ca.issueWorkload(emr);

      expect((await ca.beginRootRotation()).ok).toBe(true);
      expect(ca.rotating).toBe(true);
      const bundle = ca.trustBundle();
      expect(bundle).toHaveLength(2);
      expect(bundle[1]).toBe(oldRoot);
      const newRoot = bundle[0]!;
      expect(fingerprint(newRoot)).not.toBe(fingerprint(oldRoot));

      const newLeaf = ca.issueWorkload(emr);
      const issuedBy = (leaf: string, root: string) =>
        new X509Certificate(leaf).verify(new X509Certificate(root).publicKey);
      if (!intermediate) {
        expect(issuedBy(newLeaf.certChainPem, newRoot)).toBe(true);
        expect(issuedBy(newLeaf.certChainPem, oldRoot)).toBe(false);
      }
      // an old and a new workload each accept the other's certificate
      expect(opensslVerify(tmp.dir, oldLeaf.certChainPem, bundle).status).toBe(0);
      expect(opensslVerify(tmp.dir, newLeaf.certChainPem, bundle).status).toBe(0);
      expect(opensslVerify(tmp.dir, newLeaf.certChainPem, [oldRoot]).status).not.toBe(0);

      expect((await ca.completeRootRotation()).ok).toBe(true);
      expect(ca.rotating).toBe(false);
      expect(ca.trustBundle()).toEqual([newRoot]);
      expect(opensslVerify(tmp.dir, newLeaf.certChainPem, ca.trustBundle()).status).toBe(0);
      expect(opensslVerify(tmp.dir, oldLeaf.certChainPem, ca.trustBundle()).status).not.toBe(0);
    });
  }

  it('persists each step: a restart mid-rotation keeps both roots, after completion only the new', async () => {
    const dir = path.join(tmp.dir, 'persisted');
    const ca = await openCa(dir, true);
    const oldRoot = ca.trustBundle()[0]!;
    await ca.beginRootRotation();
    expect(readdirSync(dir).sort()).toEqual([
      'ca.crt',
      'ca.key',
      'intermediate.crt',
      'intermediate.key',
      'previous-ca.crt',
    ]);
    for (const f of readdirSync(dir)) expect(statSync(path.join(dir, f)).mode & 0o777).toBe(0o600);
    expect(readFileSync(path.join(dir, 'previous-ca.crt'), 'utf8')).toBe(oldRoot);

    const restarted = await openCa(dir, true);
    expect(restarted.rotating).toBe(true);
    expect(restarted.trustBundle()).toEqual(ca.trustBundle());
    const leaf = restarted.issueWorkload(emr);
    expect(opensslVerify(tmp.dir, leaf.certChainPem, [ca.trustBundle()[0]!]).status).toBe(0);

    expect((await restarted.completeRootRotation()).ok).toBe(true);
    expect(readdirSync(dir)).not.toContain('previous-ca.crt');
    expect((await openCa(dir, true)).trustBundle()).toEqual([ca.trustBundle()[0]!]);
  });

  it('can rotate to a root the operator brings', async () => {
    const ca = await openCa(path.join(tmp.dir, 'to-brought'));
    const oldRoot = ca.trustBundle()[0]!;
    opensslRoot(tmp.dir, 'next');
    const read = (f: string) => readFileSync(path.join(tmp.dir, f), 'utf8');
    expect((await ca.beginRootRotation({ 'ca.crt': read('next.crt'), 'ca.key': read('next.key') })).ok).toBe(
      true,
    );
    expect(ca.trustBundle().map(fingerprint)).toEqual([fingerprint(read('next.crt')), fingerprint(oldRoot)]);
    expect(opensslVerify(tmp.dir, ca.issueWorkload(emr).certChainPem, [read('next.crt')]).status).toBe(0);
  });

  it('refuses to start twice, to complete what never started, or to rotate to the same root', async () => {
    const ca = await openCa(path.join(tmp.dir, 'misuse'));
    const complete = await ca.completeRootRotation();
    expect(!complete.ok && complete.errors[0]!.code).toBe('CA');
    const sameRoot = await ca.beginRootRotation({
      'ca.crt': ca.trustBundle()[0]!,
      'ca.key': readFileSync(path.join(tmp.dir, 'misuse', 'ca.key'), 'utf8'),
    });
    expect(!sameRoot.ok && sameRoot.errors[0]!.message).toBe('the next root is the current root');
    expect((await ca.beginRootRotation()).ok).toBe(true);
    const again = await ca.beginRootRotation();
    expect(!again.ok && again.errors[0]!.code).toBe('CA');
  });
});
