// The operator's CLI against a real control plane, run as a child process the way an operator runs
// it: credential from CLINIMESH_CREDENTIAL (or --credential), HTTPS trusting the credential's CA.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../../src/main.ts';
import { serviceYaml } from './fixtures.ts';

const CLI = resolve('bin/clinimesh.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with only the environment given (no CLINIMESH_* leaking in from the test run). */
function clinimesh(args: string[], env: Record<string, string>, cwd: string): Promise<Run> {
  const base = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' };
  return new Promise((done) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...base, ...env }, cwd, timeout: 30_000 },
      (error, stdout, stderr) => {
        done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

describe('clinimesh CLI over the authenticated admin API', () => {
  let cp: RunningControlPlane;
  let dataDir: string;
  let work: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'clinimesh-cli-data-'));
    work = await mkdtemp(join(tmpdir(), 'clinimesh-cli-cwd-'));
    cp = await startControlPlane({ xdsPort: 0, xdsRestPort: 0, adminPort: 0, dataDir });
    env = { CLINIMESH_CREDENTIAL: cp.adminCredentialPath! };
  });
  afterAll(async () => {
    await cp?.stop();
    await rm(dataDir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it('shows the status with the credential from CLINIMESH_CREDENTIAL', async () => {
    const run = await clinimesh(['status'], env, work);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({
      revision: expect.any(Number),
      sidecars: expect.anything(),
    });
  });

  it('applies manifests and shows who did it in the history', async () => {
    const file = join(work, 'his.yaml');
    await writeFile(file, serviceYaml('clinical', 'his'));
    const applied = await clinimesh(['apply', '-f', file], env, work);
    expect(applied.code).toBe(0);
    const history = await clinimesh(['history'], env, work);
    expect(history.code).toBe(0);
    const lines = history.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^TIME\s+AUTHOR\s+ACTION\s+REVISION\s+TOUCHED$/);
    expect(lines.at(-1)).toMatch(/bootstrap-admin \([0-9a-f]{16}\)\s+apply\s+\d+\s+Service clinical\/his$/);
  });

  it('applies, gets, describes, diffs and deletes an ExternalService and a Service calling it', async () => {
    const file = join(work, 'lab.yaml');
    const lab = (port: number) => `apiVersion: clinimesh.io/v1alpha1
kind: ExternalService
metadata: { name: reference-lab, namespace: egress }
spec:
  endpoints: [{ address: lab.example.org, port: ${port} }]
  protocol: http
  tls: { mode: ORIGINATE, caFile: /etc/clinimesh/partner-ca.pem }
`;
    const emr = serviceYaml('egress', 'emr').replace(
      'spec:\n',
      'spec:\n  upstreams: [{ external: reference-lab, localPort: 9101 }]\n',
    );
    await writeFile(file, `${lab(443)}---\n${emr}`);
    expect((await clinimesh(['apply', '-f', file], env, work)).code).toBe(0);
    const got = await clinimesh(['get', 'ext', '-n', 'egress'], env, work);
    expect(got.stdout).toMatch(
      /egress\s+reference-lab\s+http\s+lab\.example\.org:443\s+ORIGINATE lab\.example\.org/,
    );
    const described = await clinimesh(['describe', 'externalservice', 'egress/reference-lab'], env, work);
    expect(described.code).toBe(0);
    expect(described.stdout).toMatch(/Called by:\s+egress\/emr\//);
    await writeFile(file, `${lab(8443)}---\n${emr}`);
    const diff = await clinimesh(['diff', '-f', file], env, work);
    expect(diff.code).toBe(1);
    expect(diff.stdout).toContain('+      port: 8443');
    // A Service still calls it: deleting it alone is refused, naming the caller's field.
    const refused = await clinimesh(['delete', 'ext', 'egress/reference-lab'], env, work);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('spec.upstreams[0].external');
    expect((await clinimesh(['delete', '-f', file], env, work)).code).toBe(0);
    expect((await clinimesh(['get', 'ext', '-n', 'egress'], env, work)).stdout).not.toContain(
      'reference-lab',
    );
  });

  it('creates, lists and revokes tokens; a revoked token is refused in one line', async () => {
    const created = await clinimesh(
      ['token', 'create', '--name', 'ci', '--role', 'viewer', '--ttl', '1h'],
      env,
      work,
    );
    expect(created.code).toBe(0);
    const token = created.stdout.trim();
    expect(token).toMatch(/^cmt_/);
    const listed = await clinimesh(['token', 'list'], env, work);
    expect(listed.stdout).toMatch(/\bci\s+viewer\b/);
    expect(listed.stdout).not.toContain(token);
    const id = token.split('_')[1]!;
    expect((await clinimesh(['token', 'revoke', id], env, work)).code).toBe(0);
    const caFile = join(work, 'ca.pem');
    await writeFile(caFile, cp.adminCredential!.caPem);
    const refused = await clinimesh(
      ['status'],
      { CLINIMESH_TOKEN: token, CLINIMESH_ADMIN: cp.adminUrl, CLINIMESH_CA_FILE: caFile },
      work,
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('[UNAUTHENTICATED]');
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).not.toMatch(/\n\s+at /);
  });

  it('prints a join token and nothing else', async () => {
    const run = await clinimesh(
      [
        'join-token',
        'create',
        '--namespace',
        'clinical',
        '--service',
        'his',
        '--ttl',
        '15m',
        '--credential',
        cp.adminCredentialPath!,
      ],
      {},
      work,
    );
    expect(run.code).toBe(0);
    expect(run.stdout.trim().split('\n')).toHaveLength(1);
  });

  it('without a credential prints one line and exits 1', async () => {
    const run = await clinimesh(['status'], {}, work);
    expect(run.code).toBe(1);
    expect(run.stdout).toBe('');
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toMatch(/no admin credential/);
  });

  it('refuses a server whose certificate the credential CA did not sign, in one line', async () => {
    const other = await startControlPlane({ xdsPort: 0, xdsRestPort: 0, adminPort: 0 });
    try {
      const run = await clinimesh(['status', '--admin', other.adminUrl], env, work);
      expect(run.code).toBe(1);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      await other.stop();
    }
  });

  it('exits 2 on a command line it cannot run', async () => {
    expect((await clinimesh(['token', 'create', '--name', 'x'], env, work)).code).toBe(2);
    expect((await clinimesh(['status', '--no-such-flag'], env, work)).code).toBe(2);
    expect(
      (
        await clinimesh(
          ['join-token', 'create', '--namespace', 'a', '--service', 'b', '--ttl', 'soon'],
          env,
          work,
        )
      ).code,
    ).toBe(2);
  });
});
