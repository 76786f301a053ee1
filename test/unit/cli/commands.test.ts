// The kubectl-like commands against a real control plane: apply reports each file's own name and
// the line:col that validate reports; stdin and -R; get, describe, diff, delete, version and
// proxy-status as an operator reads them.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startControlPlane, type RunningControlPlane } from '../../../src/main.ts';
import { serviceYaml } from '../admin/fixtures.ts';
import { clinimesh } from './run-cli.ts';

describe('clinimesh commands against a running control plane', () => {
  let cp: RunningControlPlane;
  let dataDir: string;
  let work: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'clinimesh-commands-data-'));
    work = await mkdtemp(join(tmpdir(), 'clinimesh-commands-'));
    cp = await startControlPlane({
      xdsPort: 0,
      xdsRestPort: 0,
      adminPort: 0,
      dataDir,
      manifests: ['manifests/examples'],
    });
    env = { CLINIMESH_CREDENTIAL: cp.adminCredentialPath! };
  });
  afterAll(async () => {
    await cp?.stop();
    await rm(dataDir, { recursive: true, force: true });
    await rm(work, { recursive: true, force: true });
  });

  it('reports a problem in the second of two files with its name and the line:col validate reports', async () => {
    await writeFile(join(work, 'a.yaml'), serviceYaml('clinical', 'lab'));
    await writeFile(
      join(work, 'b.yaml'),
      `# pharmacy\n\n${serviceYaml('clinical', 'pharmacy').replace('protocol: http', 'protocol: htp')}`,
    );
    const validated = await clinimesh(['validate', 'a.yaml', 'b.yaml'], { cwd: work });
    const applied = await clinimesh(['apply', '-f', 'a.yaml', '-f', 'b.yaml'], { env, cwd: work });
    expect(validated.code).toBe(1);
    expect(applied.code).toBe(1);
    const where = /^b\.yaml:(\d+):(\d+): /.exec(validated.stderr);
    expect(where, validated.stderr).not.toBeNull();
    expect(where![1]).toBe('8');
    expect(applied.stderr.split('\n')[0]).toBe(validated.stderr.split('\n')[0]);
  });

  it('applies a directory (its own files only, -R for subdirectories) keeping each file as the origin', async () => {
    const dir = join(work, 'tree');
    await mkdir(join(dir, 'nested'), { recursive: true });
    await writeFile(join(dir, 'lab.yaml'), serviceYaml('clinical', 'lab'));
    await writeFile(join(dir, 'nested', 'pharmacy.yaml'), serviceYaml('clinical', 'pharmacy'));
    const flat = await clinimesh(['apply', '-f', 'tree', '--dry-run'], { env, cwd: work });
    expect(flat.stdout).toContain('Service clinical/lab would be applied');
    expect(flat.stdout).not.toContain('pharmacy');
    const recursive = await clinimesh(['apply', '-R', '-f', 'tree'], { env, cwd: work });
    expect(recursive.code, recursive.stderr).toBe(0);
    expect(recursive.stdout).toMatch(
      /Service clinical\/pharmacy applied[\s\S]*revision \d+\nnot waiting for sidecars to ACK \(use --wait\)/,
    );
    const described = await clinimesh(['describe', 'svc', 'clinical/pharmacy'], { env, cwd: work });
    expect(described.stdout).toContain(`Source:     ${join('tree', 'nested', 'pharmacy.yaml')}`);
  });

  it('applies from stdin, and says when nothing changed', async () => {
    const yaml = serviceYaml('radiology', 'pacs');
    const first = await clinimesh(['apply', '-f', '-'], { env, cwd: work, stdin: yaml });
    expect(first.code, first.stderr).toBe(0);
    const again = await clinimesh(['apply', '-f', '-'], {
      env,
      cwd: work,
      stdin: yaml.replace(/address: [\d.]+/g, (m) => m),
    });
    expect(again.code).toBe(0);
    const described = await clinimesh(['describe', 'service', 'pacs', '-n', 'radiology'], { env, cwd: work });
    expect(described.stdout).toContain('Source:     <stdin>');
  });

  it('gets services as a table, YAML and JSON, in any spelling of the kind', async () => {
    const table = await clinimesh(['get', 'Services', '-n', 'clinical'], { env, cwd: work });
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(
      /^NAMESPACE\s+NAME\s+PORTS\s+INSTANCES\s+DISCOVERY\s+UPSTREAMS$/,
    );
    expect(table.stdout).toMatch(/clinical\s+his\s+http:15001\/http\s+2\s+static/);
    const yaml = await clinimesh(['get', 'svc', 'clinical/his', '-o', 'yaml'], { env, cwd: work });
    expect(yaml.stdout).toMatch(
      /^apiVersion: clinimesh\.io\/v1alpha1\nkind: Service\nmetadata:\n {2}name: his\n {2}namespace: clinical/,
    );
    const json = await clinimesh(['get', 'SVC', 'his', '-n', 'clinical', '-o', 'json'], { env, cwd: work });
    expect(JSON.parse(json.stdout)).toMatchObject({
      kind: 'Service',
      metadata: { name: 'his', namespace: 'clinical' },
    });
    const mesh = await clinimesh(['get', 'mesh'], { env, cwd: work });
    expect(mesh.stdout).toMatch(/^NAME\s+TRUST DOMAIN/);
  });

  it('describes a service with its callers and the policies that target it', async () => {
    const run = await clinimesh(['describe', 'service', 'clinical/his'], { env, cwd: work });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/Instances:\n {2}his-1 {2}127\.0\.0\.11 {2}node clinical\/his\/his-1/);
    expect(run.stdout).toMatch(/Called by: {2}clinical\/emr\/emr-1/);
    expect(run.stdout).toMatch(/Policies: {3}\S+/);
    expect(run.stdout).toContain('Sidecars:\n  <none connected>');
  });

  it('diffs local files against the state: exit 0 when equal, 1 with a unified diff when not', async () => {
    const same = await clinimesh(['diff', '-f', 'manifests/examples'], { env, cwd: process.cwd() });
    expect(same.code, same.stdout + same.stderr).toBe(0);
    await writeFile(
      join(work, 'his.yaml'),
      (await import('node:fs'))
        .readFileSync('manifests/examples/his.yaml', 'utf8')
        .replace('weight: 2', 'weight: 3'),
    );
    const changed = await clinimesh(['diff', '-f', join(work, 'his.yaml')], { env, cwd: work });
    expect(changed.code).toBe(1);
    expect(changed.stdout).toMatch(/^--- live\/Service clinical\/his\n\+\+\+ local\/Service clinical\/his/);
    expect(changed.stdout).toMatch(/\n- {6}weight: 2\n\+ {6}weight: 3/);
    expect(changed.stderr).toMatch(/0 added, 1 changed, 0 unchanged/);
  });

  it('deletes by kind and name', async () => {
    await clinimesh(['apply', '-f', '-'], { env, cwd: work, stdin: serviceYaml('clinical', 'billing') });
    const run = await clinimesh(['delete', 'svc', 'clinical/billing'], { env, cwd: work });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain('Service clinical/billing deleted');
    expect((await clinimesh(['get', 'svc', 'clinical/billing'], { env, cwd: work })).code).toBe(1);
  });

  it('deletes what the files name, all or nothing', async () => {
    await writeFile(
      join(work, 'two.yaml'),
      `${serviceYaml('clinical', 'ward')}---\n${serviceYaml('clinical', 'theatre')}`,
    );
    expect((await clinimesh(['apply', '-f', 'two.yaml'], { env, cwd: work })).code).toBe(0);
    const run = await clinimesh(['delete', '-f', 'two.yaml'], { env, cwd: work });
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(
      /Service clinical\/(ward|theatre) deleted\nService clinical\/(ward|theatre) deleted/,
    );
    const again = await clinimesh(['delete', '-f', 'two.yaml'], { env, cwd: work });
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/no such manifest to delete \[NOT_FOUND\]/);
  });

  it('prints client and server versions, and proxy status', async () => {
    const version = await clinimesh(['version'], { env, cwd: work });
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(
      /^Client: clinimesh \d+\.\d+\.\d+.*Node\.js v\d+.*\nServer: clinimesh \d+\.\d+\.\d+.*revision \d+\n$/,
    );
    const status = await clinimesh(['proxy-status', '-o', 'json'], { env, cwd: work });
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toEqual([]);
  });
});
