import { describe, expect, it } from 'vitest';
import { fieldAt } from '../../../src/manifest/field-positions.ts';
import { parseManifestText, type Service } from '../../../src/manifest/index.ts';
import { brief, errorsOf, lineOf, valueOf } from './helpers.ts';

const withMetadata = (metadata: string): string => `apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata:
  name: his
  namespace: clinical
${metadata}spec:
  ports: [{ name: http, port: 15001, protocol: http }]
  instances: [{ name: his-1, address: 127.0.0.11 }]
`;

describe('Service metadata.labels', () => {
  it('reads labels and remembers where each was written', () => {
    const text = withMetadata('  labels:\n    clinical.data: phi\n    app.kubernetes.io/part-of: hospital\n');
    const [his] = valueOf(parseManifestText(text, 'his.yaml')) as Service[];
    expect(his?.labels).toEqual({ 'clinical.data': 'phi', 'app.kubernetes.io/part-of': 'hospital' });
    expect(fieldAt(his?.origin.fieldPos, 'metadata.labels["clinical.data"]')).toEqual([
      lineOf(text, 'clinical.data'),
      20,
    ]);
  });

  it('leaves labels out when none are written', () => {
    const [his] = valueOf(parseManifestText(withMetadata(''), 'his.yaml')) as Service[];
    expect(his).not.toHaveProperty('labels');
  });

  it('refuses label keys and values Kubernetes would refuse, and values that are not strings', () => {
    const text = withMetadata('  labels:\n    "-bad": phi\n    ok: "has space"\n    audited: true\n');
    expect(errorsOf(parseManifestText(text, 'his.yaml')).map(brief)).toEqual([
      { code: 'SCHEMA', field: 'metadata.labels["-bad"]', line: lineOf(text, '-bad') },
      { code: 'SCHEMA', field: 'metadata.labels.ok', line: lineOf(text, 'has space') },
      { code: 'SCHEMA', field: 'metadata.labels.audited', line: lineOf(text, 'audited') },
    ]);
  });

  it('is not a field of other kinds', () => {
    const text = 'apiVersion: clinimesh.io/v1alpha1\nkind: Mesh\nmetadata: { name: m, labels: { a: b } }\n';
    expect(errorsOf(parseManifestText(text, 'm.yaml')).map(brief)).toEqual([
      { code: 'SCHEMA', field: 'metadata.labels', line: 3 },
    ]);
  });
});
