// Field positions are packed into one string per manifest; every lookup must find what the reader
// recorded, never a longer path that begins the same way, and maps stored by earlier versions
// must still be read.
import { describe, expect, it } from 'vitest';
import { fieldAt, packFieldPositions } from '../../../src/manifest/field-positions.ts';
import { parseManifestText, type Service } from '../../../src/manifest/index.ts';
import { lineOf, valueOf } from './helpers.ts';

const recorded = {
  'spec.ports': [4, 3],
  'spec.ports[1]': [5, 5],
  'spec.ports[10]': [14, 5],
  'spec.destination': [20, 3],
  'spec.destination.service': [21, 14],
  'metadata.labels["app.io/part-of"]': [7, 5],
  'metadata.labels["a\\tb"]': [8, 5],
} as const;

describe('packed field positions', () => {
  const packed = packFieldPositions(recorded);

  it('gives back every recorded position', () => {
    for (const [path, at] of Object.entries(recorded)) expect(fieldAt(packed, path), path).toEqual(at);
  });

  it('never answers for a path that only begins like a recorded one', () => {
    expect(fieldAt(packFieldPositions({ 'spec.ports[10]': [14, 5] }), 'spec.ports[1]')).toBeUndefined();
    expect(
      fieldAt(packFieldPositions({ 'spec.destination.service': [21, 14] }), 'spec.destination'),
    ).toBeUndefined();
    expect(fieldAt(packed, 'spec')).toBeUndefined();
    expect(fieldAt(packed, '')).toBeUndefined();
    expect(fieldAt(undefined, 'spec.ports')).toBeUndefined();
  });

  it('reads the map of pairs that manifests stored by an earlier version carry', () => {
    expect(fieldAt(recorded, 'spec.ports[10]')).toEqual([14, 5]);
    expect(fieldAt(recorded, 'spec.upstreams')).toBeUndefined();
    expect(fieldAt(recorded, 'constructor')).toBeUndefined();
  });

  it('survives JSON, as manifests do in a state file, Consul KV and the admin API', () => {
    expect(fieldAt(JSON.parse(JSON.stringify(packed)) as string, 'spec.destination.service')).toEqual([
      21, 14,
    ]);
  });

  it('holds where a parsed manifest wrote each field', () => {
    const text = [
      'apiVersion: clinimesh.io/v1alpha1',
      'kind: Service',
      'metadata: { name: his, namespace: clinical }',
      'spec:',
      '  ports: [{ name: http, port: 15001, protocol: http }]',
      '  instances:',
      '    - name: his-1',
      '      address: 127.0.0.11',
      '',
    ].join('\n');
    const [his] = valueOf(parseManifestText(text, 'his.yaml')) as Service[];
    expect(typeof his?.origin.fieldPos).toBe('string');
    const at = (needle: string): [number, number] => {
      const line = lineOf(text, needle);
      return [line, text.split('\n')[line - 1]!.indexOf(needle) + 1];
    };
    expect(fieldAt(his?.origin.fieldPos, 'spec.instances[0].address')).toEqual(at('127.0.0.11'));
    expect(fieldAt(his?.origin.fieldPos, 'spec.ports[0].port')).toEqual(at('15001'));
  });
});
