// `clinimesh analyze` as an operator (or a CI job) runs it: offline on files, and against a running
// control plane, where it must find what it finds offline on the same files.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { analyzeCommand } from '../../../src/cli/analyze.ts';
import { startControlPlane, type RunningControlPlane } from '../../../src/main.ts';
import { fixture, positionIn } from './helpers.ts';

const CLI = resolve('bin/clinimesh.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The CLI as a child process, from the repository root, with only the environment given. */
function clinimesh(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const base = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' };
  return new Promise((done) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...base, ...env }, timeout: 30_000 },
      (error, stdout, stderr) => {
        done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

/** analyzeCommand in this process, its console output captured. */
async function analyzeInProcess(args: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  const error = vi
    .spyOn(console, 'error')
    .mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  try {
    const code = await analyzeCommand(args);
    return { code, stdout: out.join('\n'), stderr: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

interface JsonReport {
  source: string;
  findings: Array<{
    code: string;
    severity: string;
    file: string;
    line: number;
    col: number;
    resource: string;
    message: string;
    fix: string;
  }>;
  summary: { error: number; warning: number; info: number };
}

describe('clinimesh analyze on files', () => {
  it('exits 0 with no findings on a clean mesh', async () => {
    const run = await clinimesh(['analyze', '-f', fixture('clean')]);
    expect(run).toMatchObject({ code: 0, stdout: '' });
    expect(run.stderr).toContain('no findings');
  });

  it('prints one line per finding and exits 1 on errors, gating a pipeline', async () => {
    const run = await clinimesh(['analyze', '-f', fixture('state')]);
    expect(run.code).toBe(1);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(lines[1]).toMatch(
      new RegExp(
        `^${positionIn('state/mesh.yaml', 'PERMISSIVE')}: error CM0003 Mesh hospital: .+ \\(fix: set spec\\.mtls\\.mode: STRICT\\)$`,
      ),
    );
    expect(lines[0]).toMatch(
      new RegExp(`^${positionIn('state/emr.yaml', 'his, port')}: warning CM0007 Service clinical/emr: `),
    );
    expect(run.stderr).toContain('2 errors, 2 warnings');
  });

  it('gives JSON with -o json', async () => {
    const run = await clinimesh(['analyze', '-f', fixture('phi-without-policy/fail.yaml'), '-o', 'json']);
    expect(run.code).toBe(1);
    const report = JSON.parse(run.stdout) as JsonReport;
    const [line, col] = positionIn('phi-without-policy/fail.yaml', 'phi }').split(':').slice(-2).map(Number);
    expect(report).toEqual({
      source: 'files',
      findings: [
        {
          code: 'CM0002',
          severity: 'error',
          file: fixture('phi-without-policy/fail.yaml'),
          line,
          col,
          resource: 'Service clinical/his',
          message: expect.stringContaining('patient data'),
          fix: expect.stringContaining('AccessPolicy'),
        },
      ],
      summary: { error: 1, warning: 0, info: 0 },
    });
  });

  it('exits 0 on warnings alone, and 1 with --fail-on warning', async () => {
    const file = fixture('upstream-denied/fail.yaml');
    expect((await analyzeInProcess(['-f', file])).code).toBe(0);
    expect((await analyzeInProcess(['-f', file, '--fail-on', 'warning'])).code).toBe(1);
    expect((await analyzeInProcess(['-f', file, '--fail-on', 'error'])).code).toBe(0);
  });

  it('reads subdirectories only with -R', async () => {
    expect((await analyzeInProcess(['-f', fixture('recursive')])).code).toBe(0);
    const recursive = await analyzeInProcess(['-f', fixture('recursive'), '-R']);
    expect(recursive.code).toBe(1);
    expect(recursive.stdout).toMatch(
      /^test\/fixtures\/analyze\/recursive\/services\/his\.yaml:\d+:\d+: error CM0002 /,
    );
  });

  it('reports validation problems as CM0001 errors', async () => {
    const run = await analyzeInProcess(['-f', fixture('invalid/fail.yaml')]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(
      new RegExp(
        `^${positionIn('invalid/fail.yaml', '150010')}: error CM0001 Service clinical/his: .*\\[SCHEMA\\]`,
      ),
    );
  });

  it('takes several paths after one -f', async () => {
    const run = await analyzeInProcess([
      '-f',
      fixture('clean/mesh.yaml'),
      fixture('phi-without-policy/fail.yaml'),
    ]);
    // Two Meshes named hospital: a validation problem, found across the files.
    expect(run.stdout).toContain('CM0001');
  });

  it('says in one line, exit 1, when a file cannot be read', async () => {
    const run = await analyzeInProcess(['-f', fixture('no-such-file.yaml')]);
    expect(run.code).toBe(1);
    expect(run.stderr.split('\n')).toHaveLength(1);
    expect(run.stderr).toContain('no-such-file.yaml');
  });

  it.each([
    [['--bogus']],
    [['-o', 'xml', '-f', 'x.yaml']],
    [['--fail-on', 'fatal', '-f', 'x.yaml']],
    [['x.yaml']],
  ])('exits 2 on the usage error %j', async (args) => {
    const run = await analyzeInProcess(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('Usage: clinimesh analyze');
  });

  it('prints its usage with --help, exit 0', async () => {
    const run = await clinimesh(['analyze', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('Usage: clinimesh analyze');
  });
});

describe('clinimesh analyze against a running control plane', () => {
  let cp: RunningControlPlane;
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'clinimesh-analyze-'));
    cp = await startControlPlane({
      xdsPort: 0,
      xdsRestPort: 0,
      adminPort: 0,
      dataDir,
      manifests: [fixture('state')],
    });
  });
  afterAll(async () => {
    await cp?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('finds what it finds offline on the same files, at the same file:line:col', async () => {
    const offline = await clinimesh(['analyze', '-f', fixture('state'), '-o', 'json']);
    const online = await clinimesh(['analyze', '-o', 'json'], {
      CLINIMESH_CREDENTIAL: cp.adminCredentialPath!,
    });
    expect(online.stderr).toBe('');
    expect(online.code).toBe(1);
    const fromServer = JSON.parse(online.stdout) as JsonReport;
    const fromFiles = JSON.parse(offline.stdout) as JsonReport;
    expect(fromServer.source).toBe('server');
    expect(fromServer.findings).toEqual(fromFiles.findings);
    expect(fromServer.findings.map((f) => f.code)).toEqual(['CM0007', 'CM0003', 'CM0005', 'CM0004']);
  });

  it('says in one line, exit 1, when the admin API cannot be reached', async () => {
    const run = await analyzeInProcess([
      '--credential',
      cp.adminCredentialPath!,
      '--admin',
      'https://127.0.0.1:1',
    ]);
    expect(run.code).toBe(1);
    expect(run.stderr.split('\n')).toHaveLength(1);
    expect(run.stderr).toContain('cannot reach the admin API');
  });
});
