import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../../src/main.ts';
import { adminRequest, createToken } from '../../helpers/admin.ts';
import { serviceYaml } from './fixtures.ts';

const start = (dataDir: string) => startControlPlane({ xdsPort: 0, xdsRestPort: 0, adminPort: 0, dataDir });
const mode = async (path: string) => (await stat(path)).mode & 0o777;

describe('admin tokens, credential and history in the data dir', () => {
  let dataDir: string;
  let cp: RunningControlPlane | undefined;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'clinimesh-admin-'));
  });
  afterAll(async () => {
    await cp?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('writes a working bootstrap admin credential, mode 0600', async () => {
    cp = await start(dataDir);
    const path = join(dataDir, 'admin-credential.json');
    expect(cp.adminCredentialPath).toBe(path);
    expect(await mode(path)).toBe(0o600);
    const written = JSON.parse(await readFile(path, 'utf8')) as {
      server: string;
      token: string;
      caPem: string;
    };
    expect(written).toEqual({
      server: cp.adminUrl,
      token: cp.adminCredential!.token,
      caPem: cp.ca.trustBundle().join('\n'),
    });
    expect((await adminRequest(cp, 'GET', '/v1/tokens', { token: written.token })).status).toBe(200);
  });

  it('keeps only hashes of tokens in tokens.json (0600)', async () => {
    const editor = await createToken(cp!, 'editor', { name: 'team-a', namespaces: ['clinical'] });
    const path = join(dataDir, 'tokens.json');
    expect(await mode(path)).toBe(0o600);
    const text = await readFile(path, 'utf8');
    for (const token of [editor.token, cp!.adminCredential!.token]) {
      expect(text).not.toContain(token);
      // The secret is base64url and may itself hold '_': it is the 43 characters after `cmt_<id>_`.
      expect(text).not.toContain(token.slice(-43));
    }
    expect(text).toContain(editor.id);
  });

  it('rewrites the credential CA when the root rotates', async () => {
    const begin = await adminRequest(cp!, 'POST', '/v1/ca/rotate-root?phase=begin');
    expect(begin.status).toBe(200);
    const read = async () =>
      (JSON.parse(await readFile(join(dataDir, 'admin-credential.json'), 'utf8')) as { caPem: string }).caPem;
    await expect.poll(read).toBe(cp!.ca.trustBundle().join('\n'));
    expect(cp!.ca.trustBundle()).toHaveLength(2);
    // The admin API still answers with the new bundle trusted.
    expect((await adminRequest(cp!, 'GET', '/v1/status')).status).toBe(200);
    expect((await adminRequest(cp!, 'POST', '/v1/ca/rotate-root?phase=complete')).status).toBe(200);
    await expect.poll(read).toBe(cp!.ca.trustBundle().join('\n'));
  });

  it('records author and revision, and keeps history and tokens across a restart', async () => {
    const applied = await adminRequest(cp!, 'POST', '/v1/apply', { body: serviceYaml('clinical', 'his') });
    expect(applied.status).toBe(200);
    const revision = (applied.json as { revision: number }).revision;
    const stored = JSON.parse(await readFile(join(dataDir, 'tokens.json'), 'utf8')) as {
      tokens: Array<{ id: string; name: string }>;
    };
    const adminId = stored.tokens.find((t) => t.name === 'bootstrap-admin')!.id;
    await cp!.stop();
    cp = await start(dataDir);
    expect(await mode(join(dataDir, 'history.jsonl'))).toBe(0o600);
    const res = await adminRequest(cp, 'GET', '/v1/history');
    expect(res.status).toBe(200);
    const entries = (
      res.json as {
        entries: Array<{
          author: { name: string; tokenId: string };
          action: string;
          revision: number;
          touched: string[];
        }>;
      }
    ).entries;
    expect(entries.map((e) => e.action)).toEqual([
      'token-create',
      'token-create',
      'rotate-root',
      'rotate-root',
      'apply',
    ]);
    expect(entries.at(-1)).toMatchObject({
      author: { name: 'bootstrap-admin', tokenId: adminId },
      role: 'admin',
      revision,
      touched: ['Service clinical/his'],
    });
    expect(res.text).not.toContain(cp.adminCredential!.token);
  });
});
