import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadManifests, parseManifestText } from '../../../src/manifest/index.ts';
import { brief, errorsOf, lineOf, service, valueOf } from './helpers.ts';

const his = service(
  'his',
  '  ports: [{ name: http, port: 15001, protocol: http }]\n  instances: [{ name: his-1, address: 127.0.0.11 }]\n',
);
const emr = service(
  'emr',
  '  ports: [{ name: http, port: 15011, protocol: http }]\n  instances: [{ name: emr-1, address: 127.0.0.21 }]\n',
);
const mesh = (name: string): string =>
  `apiVersion: clinimesh.io/v1alpha1\nkind: Mesh\nmetadata: { name: ${name} }\n`;

describe('YAML syntax errors', () => {
  it('are reported at their line and column', () => {
    const text =
      'apiVersion: clinimesh.io/v1alpha1\nkind: Mesh\nmetadata: { name: hospital }\nspec:\n  trustDomain: a: b\n';
    expect(errorsOf(parseManifestText(text, 'mesh.yaml'))).toMatchObject([
      { code: 'YAML_SYNTAX', pos: { file: 'mesh.yaml', line: 5, col: 16 } },
    ]);
  });

  it('include tabs used as indentation', () => {
    const text = 'apiVersion: clinimesh.io/v1alpha1\nkind: Mesh\nmetadata:\n\tname: hospital\n';
    expect(errorsOf(parseManifestText(text, 'mesh.yaml'))).toMatchObject([
      { code: 'YAML_SYNTAX', pos: { line: 4, col: 1 } },
    ]);
  });

  it('spoil only their own document: the others are still validated', () => {
    const text = `${mesh('hospital')}---\nkey: [unclosed\n---\n${his.replace('port: 15001', 'port: 0')}`;
    const problems = errorsOf(parseManifestText(text, 'all.yaml'));
    expect(problems.map((p) => p.code)).toEqual(['YAML_SYNTAX', 'SCHEMA']);
    expect(brief(problems[1]!)).toEqual({
      code: 'SCHEMA',
      field: 'spec.ports[0].port',
      line: lineOf(text, 'port: 0'),
    });
  });

  it('ignore empty documents and comment-only files', () => {
    expect(valueOf(parseManifestText('# nothing here yet\n---\n---\n', 'empty.yaml'))).toEqual([]);
    expect(valueOf(parseManifestText('', 'empty.yaml'))).toEqual([]);
  });
});

describe('loading files and directories', () => {
  let dir = '';
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'clinimesh-manifests-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads *.yaml and *.yml recursively in sorted order, skipping other files', async () => {
    await mkdir(join(dir, 'b-services'));
    await writeFile(join(dir, 'b-services', 'his.yml'), his);
    await writeFile(join(dir, 'b-services', 'emr.yaml'), emr);
    await writeFile(join(dir, 'a-mesh.yaml'), mesh('hospital'));
    await writeFile(join(dir, 'README.md'), '# not a manifest\n');
    const manifests = valueOf(await loadManifests([dir]));
    expect(manifests.map((m) => m.name)).toEqual(['hospital', 'emr', 'his']);
  });

  it('reads a file named twice (directly and through its directory) once', async () => {
    await writeFile(join(dir, 'his.yaml'), his);
    expect(valueOf(await loadManifests([join(dir, 'his.yaml'), dir]))).toHaveLength(1);
  });

  it('reports a duplicate document across two files at the second, naming the first', async () => {
    await writeFile(join(dir, 'a.yaml'), his);
    await writeFile(join(dir, 'b.yaml'), `${emr}---\n${his}`);
    const problems = errorsOf(await loadManifests([dir]));
    expect(problems.map(brief)).toEqual([
      { code: 'DUPLICATE', field: 'metadata.name', line: lineOf(`${emr}---\n${his}`, 'metadata', 2) },
    ]);
    expect(problems[0]?.pos?.file).toBe(join(dir, 'b.yaml'));
    expect(problems[0]?.resource).toBe('Service clinical/his');
    expect(problems[0]?.message).toContain(`${join(dir, 'a.yaml')}:1:1`);
  });

  it('allows at most one Mesh', async () => {
    await writeFile(join(dir, 'a.yaml'), mesh('hospital'));
    await writeFile(join(dir, 'b.yaml'), mesh('clinic'));
    expect(errorsOf(await loadManifests([dir])).map(brief)).toEqual([
      { code: 'CONFLICT', field: 'metadata.name', line: 3 },
    ]);
  });

  it('reports the problems of every file together, and unreadable paths as IO', async () => {
    await writeFile(join(dir, 'a.yaml'), his.replace('protocol: http', 'protocol: htp'));
    await writeFile(join(dir, 'b.yaml'), 'kind: [\n');
    const problems = errorsOf(await loadManifests([dir, join(dir, 'missing.yaml')]));
    expect(problems.map((p) => [p.code, p.pos?.file])).toEqual([
      ['IO', undefined],
      ['SCHEMA', join(dir, 'a.yaml')],
      ['YAML_SYNTAX', join(dir, 'b.yaml')],
    ]);
  });
});
