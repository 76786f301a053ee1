// A scripted session of operator mistakes against a real control plane, each run through the real
// CLI: the right exit code (2: a command line that cannot run; 1: anything else; diff: 2, as
// kubectl diff), exactly one line on stderr saying what went wrong and never a stack frame. A usage
// error's line is followed by the command's usage, exactly as `--help` prints it, and nothing else.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../../src/main.ts';
import { freePort } from '../../helpers/ports.ts';
import { createToken } from '../../helpers/admin.ts';
import { serviceYaml } from '../admin/fixtures.ts';
import { clinimesh, stderrLines, type CliRun } from './run-cli.ts';

const HELP_COMMANDS = [
  'serve',
  'apply',
  'delete',
  'status',
  'config-dump',
  'agent',
  'validate',
  'get',
  'describe',
  'diff',
  'version',
  'proxy-status',
  'history',
  'token',
  'join-token',
];

const usageOf = new Map<string, string>();

function expectNoStack(run: CliRun): void {
  expect(run.stderr).not.toMatch(/^\s+at /m);
  expect(run.stdout).not.toMatch(/^\s+at /m);
}

/** Exit 2, one line, then the command's usage (as --help prints it) and nothing more. */
function expectUsageError(run: CliRun, command: string | undefined, line: RegExp): void {
  expectNoStack(run);
  expect(run.code, run.stderr).toBe(2);
  const [first, ...rest] = stderrLines(run);
  expect(first).toMatch(line);
  expect(rest.join('\n')).toBe(usageOf.get(command ?? 'help'));
}

/** Exit 1 (or `code`), exactly one line on stderr. */
function expectOneLine(run: CliRun, line: RegExp, code = 1): void {
  expectNoStack(run);
  expect(run.code, run.stderr).toBe(code);
  expect(stderrLines(run), run.stderr).toHaveLength(1);
  expect(stderrLines(run)[0]).toMatch(line);
}

describe('operator mistakes, through the real CLI', () => {
  let cp: RunningControlPlane;
  let dataDir: string;
  let work: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'clinimesh-mistakes-data-'));
    work = await mkdtemp(join(tmpdir(), 'clinimesh-mistakes-'));
    cp = await startControlPlane({
      xdsPort: 0,
      xdsRestPort: 0,
      adminPort: 0,
      dataDir,
      manifests: ['manifests/examples'],
    });
    env = { CLINIMESH_CREDENTIAL: cp.adminCredentialPath! };
    await writeFile(join(work, 'empty.yaml'), '# nothing here yet\n');
    await mkdir(join(work, 'no-yaml'));
    await writeFile(join(work, 'no-yaml', 'README.md'), 'not a manifest\n');
    await writeFile(
      join(work, 'syntax.yaml'),
      'apiVersion: clinimesh.io/v1alpha1\nkind: Service\nmetadata: { name: lab, namespace: clinical\n',
    );
    await writeFile(
      join(work, 'unknown-field.yaml'),
      serviceYaml('clinical', 'lab').replace('targetPort: 8080', 'targetPrt: 8080'),
    );
    await writeFile(
      join(work, 'foreign-mesh.yaml'),
      'apiVersion: clinimesh.io/v1alpha1\nkind: Mesh\nmetadata: { name: hospital }\nspec:\n  trustDomain: other-hospital.example\n',
    );
    await writeFile(join(work, 'not-json.json'), 'server: nope\n');
    await writeFile(join(work, 'ca.pem'), cp.adminCredential!.caPem);
    for (const c of [...HELP_COMMANDS, 'help']) {
      const run = await clinimesh(c === 'help' ? ['help'] : [c, '--help'], { env, cwd: work });
      usageOf.set(c, run.stdout.replace(/\n$/, ''));
    }
  });
  afterAll(async () => {
    await cp?.stop();
    await rm(dataDir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it.each(HELP_COMMANDS)('%s --help prints its usage and exits 0', (command) => {
    const help = usageOf.get(command)!;
    expect(help).toMatch(new RegExp(`^Usage: clinimesh ${command}\\b`));
  });

  it('-h is --help, and validate --help opens no file named --help', async () => {
    const short = await clinimesh(['apply', '-h'], { env, cwd: work });
    expect(short.code).toBe(0);
    expect(short.stdout.replace(/\n$/, '')).toBe(usageOf.get('apply'));
    const validate = await clinimesh(['validate', '--help'], { cwd: work });
    expect(validate.code).toBe(0);
    expect(validate.stderr).toBe('');
    expect(validate.stdout).toMatch(/^Usage: clinimesh validate/);
  });

  it('states the admin body limit in apply --help', () => {
    expect(usageOf.get('apply')).toContain('4 MiB');
  });

  describe.concurrent('usage errors exit 2 with one line and the usage', () => {
    it('an unknown flag', async () => {
      expectUsageError(
        await clinimesh(['status', '--no-such-flag'], { env, cwd: work }),
        'status',
        /^clinimesh status: unknown option '--no-such-flag'$/,
      );
    });
    it('an unknown command', async () => {
      expectUsageError(
        await clinimesh(['aply', '-f', 'x.yaml'], { env, cwd: work }),
        undefined,
        /^clinimesh: unknown command "aply"$/,
      );
    });
    it('a bad port for serve', async () => {
      expectUsageError(
        await clinimesh(['serve', '--admin-port', '70000'], { cwd: work }),
        'serve',
        /--admin-port 70000: a port is a number from 0 to 65535/,
      );
    });
    it('get an unknown kind', async () => {
      expectUsageError(await clinimesh(['get', 'pods'], { env, cwd: work }), 'get', /unknown kind "pods"/);
    });
    it('describe without a name', async () => {
      expectUsageError(
        await clinimesh(['describe', 'service'], { env, cwd: work }),
        'describe',
        /needs a name/,
      );
    });
    it('apply without -f', async () => {
      expectUsageError(
        await clinimesh(['apply', 'his.yaml'], { env, cwd: work }),
        'apply',
        /name files with -f/,
      );
    });
    it('an unknown output format', async () => {
      expectUsageError(
        await clinimesh(['get', 'svc', '-o', 'xml'], { env, cwd: work }),
        'get',
        /-o xml: one of table, yaml, json/,
      );
    });
    it('a name that is not NS/NAME', async () => {
      expectUsageError(
        await clinimesh(['delete', 'svc', 'Clinical/EMR'], { env, cwd: work }),
        'delete',
        /is not NAME or NAMESPACE\/NAME/,
      );
    });
    it('delete of a service without its namespace', async () => {
      expectUsageError(
        await clinimesh(['delete', 'Service', 'emr'], { env, cwd: work }),
        'delete',
        /name the namespace/,
      );
    });
    it('--timeout without --wait', async () => {
      expectUsageError(
        await clinimesh(['apply', '-f', 'empty.yaml', '--timeout', '5s'], { env, cwd: work }),
        'apply',
        /--timeout goes with --wait/,
      );
    });
    it('a malformed token id to revoke', async () => {
      expectUsageError(
        await clinimesh(['token', 'revoke', 'not-an-id'], { env, cwd: work }),
        'token',
        /16 hex digits/,
      );
    });
    it('a history limit of zero', async () => {
      expectUsageError(
        await clinimesh(['history', '--limit', '0'], { env, cwd: work }),
        'history',
        /--limit 0/,
      );
    });
    it('an agent without --out-dir', async () => {
      expectUsageError(
        await clinimesh(['agent', '--control-plane', '127.0.0.1:1', '--join-token', 't'], { cwd: work }),
        'agent',
        /--out-dir DIR is required/,
      );
    });
  });

  describe.concurrent('other errors exit 1 with one line', () => {
    it('an admin API that is not listening', async () => {
      const port = await freePort();
      expectOneLine(
        await clinimesh(['status', '--admin', `https://127.0.0.1:${port}`], { env, cwd: work }),
        /cannot reach the admin API at https:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/,
      );
    });
    it('serve on a port already in use', async () => {
      const data = join(work, 'serve-data');
      const run = await clinimesh(
        [
          'serve',
          '--data-dir',
          data,
          '--xds-port',
          '0',
          '--xds-rest-port',
          '0',
          '--admin-port',
          String(cp.adminPort),
        ],
        { cwd: work },
      );
      expectOneLine(run, /already in use \(EADDRINUSE\)/);
    });
    it('delete Service clinical/emr that does not exist', async () => {
      expectOneLine(
        await clinimesh(['delete', 'Service', 'clinical/lab'], { env, cwd: work }),
        /^Service clinical\/lab: no such manifest to delete \[NOT_FOUND\]$/,
      );
    });
    it('get a service that does not exist', async () => {
      expectOneLine(
        await clinimesh(['get', 'svc', 'clinical/ghost'], { env, cwd: work }),
        /Service clinical\/ghost not found/,
      );
    });
    it('describe a service that does not exist', async () => {
      expectOneLine(
        await clinimesh(['describe', 'svc', 'clinical/ghost'], { env, cwd: work }),
        /Service clinical\/ghost: not found \[NOT_FOUND\]/,
      );
    });
    it('an empty manifest file', async () => {
      expectOneLine(
        await clinimesh(['apply', '-f', 'empty.yaml'], { env, cwd: work }),
        /^clinimesh apply: no manifests in empty\.yaml$/,
      );
    });
    it('an empty manifest file to validate', async () => {
      expectOneLine(
        await clinimesh(['validate', 'empty.yaml'], { cwd: work }),
        /no manifests in empty\.yaml/,
      );
    });
    it('a directory without manifests', async () => {
      expectOneLine(
        await clinimesh(['apply', '-f', 'no-yaml'], { env, cwd: work }),
        /no manifests in no-yaml/,
      );
    });
    it('a missing file', async () => {
      expectOneLine(
        await clinimesh(['apply', '-f', 'missing.yaml'], { env, cwd: work }),
        /cannot read missing\.yaml: no such file or directory/,
      );
    });
    it('a missing file to validate', async () => {
      expectOneLine(await clinimesh(['validate', 'missing.yaml'], { cwd: work }), /missing\.yaml.*\[IO\]/);
    });
    it('a YAML syntax error', async () => {
      expectOneLine(
        await clinimesh(['apply', '-f', 'syntax.yaml'], { env, cwd: work }),
        /^syntax\.yaml:\d+:\d+: .*\[YAML_SYNTAX\]$/,
      );
    });
    it('an unknown field', async () => {
      expectOneLine(
        await clinimesh(['apply', '-f', 'unknown-field.yaml'], { env, cwd: work }),
        /^unknown-field\.yaml:6:\d+: .*targetPrt.*\[SCHEMA\]$/,
      );
    });
    it('a credential file that does not exist', async () => {
      expectOneLine(
        await clinimesh(['status', '--credential', 'nowhere.json'], { cwd: work }),
        /cannot read the admin credential/,
      );
    });
    it('a credential file that is not a credential', async () => {
      expectOneLine(await clinimesh(['status', '--credential', 'not-json.json'], { cwd: work }), /not JSON/);
    });
    it('a revoked token', async () => {
      const { id, token } = await createToken(cp, 'viewer');
      expect((await clinimesh(['token', 'revoke', id], { env, cwd: work })).code).toBe(0);
      const run = await clinimesh(['get', 'svc'], {
        env: { CLINIMESH_TOKEN: token, CLINIMESH_ADMIN: cp.adminUrl, CLINIMESH_CA_FILE: 'ca.pem' },
        cwd: work,
      });
      expectOneLine(
        run,
        /invalid, revoked or expired \[UNAUTHENTICATED\] \(credential from \$CLINIMESH_TOKEN\)/,
      );
    });
    it('an editor changing a namespace it does not hold', async () => {
      const { token } = await createToken(cp, 'editor', { namespaces: ['radiology'] });
      const run = await clinimesh(['delete', 'svc', 'clinical/his', '--dry-run'], {
        env: { CLINIMESH_TOKEN: token, CLINIMESH_ADMIN: cp.adminUrl, CLINIMESH_CA_FILE: 'ca.pem' },
        cwd: work,
      });
      expectOneLine(run, /may not change namespace clinical \[PERMISSION_DENIED\]/);
    });
    it('a Mesh in a foreign trust domain', async () => {
      expectOneLine(
        await clinimesh(['apply', '-f', 'foreign-mesh.yaml'], { env, cwd: work }),
        /foreign-mesh\.yaml:5:\d+: Mesh hospital: spec\.trustDomain: .*\[CONFLICT\]$/,
      );
    });
    it('version against an admin API that is not listening still prints the client', async () => {
      const port = await freePort();
      const run = await clinimesh(['version', '--admin', `https://127.0.0.1:${port}`], { env, cwd: work });
      expectOneLine(run, /cannot reach the admin API/);
      expect(run.stdout).toMatch(/^Client: clinimesh \d+\.\d+\.\d+/);
    });
    it('diff of a missing file exits 2, as kubectl diff does on errors', async () => {
      expectOneLine(
        await clinimesh(['diff', '-f', 'missing.yaml'], { env, cwd: work }),
        /cannot read missing\.yaml/,
        2,
      );
    });
  });
});
