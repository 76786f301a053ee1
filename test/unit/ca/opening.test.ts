import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CertificateAuthority } from '../../../src/ca/index.ts';
import { tempDir } from './helpers.ts';

type Opened = Awaited<ReturnType<typeof CertificateAuthority.open>>;
const refusal = (r: Opened) => (r.ok ? 'accepted' : r.errors.map((e) => [e.code, e.field]));
const open = (dir: string, create?: boolean) =>
  CertificateAuthority.open({ dir, trustDomain: 'clinic.example', ...(create !== undefined && { create }) });

describe('opening a CA directory', () => {
  const tmp = tempDir();
  afterAll(tmp.cleanup);

  it('refuses to create a new root when told the mesh already has state', async () => {
    const dir = path.join(tmp.dir, 'lost');
    const r = await open(dir, false);
    expect(refusal(r)).toEqual([['CA', 'ca.crt']]);
    expect(!r.ok && r.errors[0]!.message).toContain('--new-ca');
    expect(existsSync(dir)).toBe(false);
  });

  it('loads an existing CA even when told not to create one', async () => {
    const dir = path.join(tmp.dir, 'kept');
    expect((await open(dir)).ok).toBe(true);
    expect((await open(dir, false)).ok).toBe(true);
  });

  it('refuses a damaged CA: an unparseable root', async () => {
    const dir = path.join(tmp.dir, 'damaged-root');
    await open(dir);
    const crt = path.join(dir, 'ca.crt');
    writeFileSync(crt, readFileSync(crt, 'utf8').slice(0, 200));
    expect(refusal(await open(dir))).toEqual([['CA', 'ca.crt']]);
  });

  it('refuses a damaged CA: a key that does not match its root', async () => {
    const dir = path.join(tmp.dir, 'swapped-key');
    const other = path.join(tmp.dir, 'swapped-key-other');
    await open(dir);
    await open(other);
    writeFileSync(path.join(dir, 'ca.key'), readFileSync(path.join(other, 'ca.key')));
    expect(refusal(await open(dir))).toEqual([['CA', 'ca.key']]);
  });

  it('refuses a truncated previous root mid-rotation instead of dropping it', async () => {
    const dir = path.join(tmp.dir, 'truncated-previous');
    const ca = await open(dir);
    if (!ca.ok) throw new Error(JSON.stringify(ca.errors));
    expect((await ca.value.beginRootRotation()).ok).toBe(true);
    const file = path.join(dir, 'previous-ca.crt');
    const whole = readFileSync(file, 'utf8');
    writeFileSync(file, whole.slice(0, whole.length - 40)); // the END line lost
    expect(refusal(await open(dir))).toEqual([['CA', 'previous-ca.crt']]);
    writeFileSync(file, whole + whole.slice(0, 100)); // a second block cut short
    expect(refusal(await open(dir))).toEqual([['CA', 'previous-ca.crt']]);
    writeFileSync(file, `${whole}garbage\n`);
    expect(refusal(await open(dir))).toEqual([['CA', 'previous-ca.crt']]);
    writeFileSync(file, whole);
    expect((await open(dir)).ok).toBe(true);
  });
});
