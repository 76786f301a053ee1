// The Mesh's telemetry settings: sidecar metrics (spec.metrics), read, checked, and held against
// every socket the mesh's sidecars already bind.
import { describe, expect, it } from 'vitest';
import {
  checkManifestSet,
  parseManifestText,
  type Manifest,
  type Mesh,
} from '../../../src/manifest/index.ts';
import { brief, errorsOf, lineOf, service, valueOf } from './helpers.ts';

const mesh = (spec: string): string => `apiVersion: clinimesh.io/v1alpha1
kind: Mesh
metadata: { name: hospital }
spec:
${spec}`;

const his = service(
  'his',
  `  ports: [{ name: http, port: 15001, targetPort: 8080, protocol: http }]
  instances:
    - { name: his-1, address: 127.0.0.11, appAddress: 127.0.0.11 }
`,
);

const emr = service(
  'emr',
  `  ports: [{ name: http, port: 15011, targetPort: 8080, protocol: http }]
  instances:
    - { name: emr-1, address: 127.0.0.21, appAddress: 127.0.0.21 }
  upstreams: [{ service: his, port: http, localPort: 9001 }]
`,
);

function parse(...texts: string[]): Manifest[] {
  return texts.flatMap((t, i) => valueOf(parseManifestText(t, `f${i}.yaml`)));
}

describe('Mesh metrics', () => {
  it('reads the metrics port, and leaves metrics off when absent', () => {
    const [on] = parse(mesh('  metrics: { port: 15090 }\n')) as Mesh[];
    expect(on?.metrics).toEqual({ port: 15090 });
    const [off] = parse(mesh('  trustDomain: hospital.local\n')) as Mesh[];
    expect(off).not.toHaveProperty('metrics');
  });

  it('requires a port from 1 to 65535 and nothing else', () => {
    const text = mesh('  metrics: { port: 0, path: /metrics }\n');
    expect(errorsOf(parseManifestText(text, 'm.yaml')).map(brief)).toEqual([
      { code: 'SCHEMA', field: 'spec.metrics.port', line: 5 },
      { code: 'SCHEMA', field: 'spec.metrics.path', line: 5 },
    ]);
    const missing = mesh('  metrics: {}\n');
    expect(errorsOf(parseManifestText(missing, 'm.yaml')).map((p) => p.field)).toEqual(['spec.metrics.port']);
  });

  it('rejects a metrics port a sidecar already listens on, blaming the Mesh', () => {
    const text = mesh('  metrics: { port: 15001 }\n');
    const problems = checkManifestSet(parse(text, his, emr));
    expect(problems.map(brief)).toEqual([
      { code: 'CONFLICT', field: 'spec.metrics.port', line: lineOf(text, 'metrics') },
    ]);
    expect(problems[0]?.resource).toBe('Mesh hospital');
    expect(checkManifestSet(parse(mesh('  metrics: { port: 9001 }\n'), his, emr)).map(brief)).toEqual([
      { code: 'CONFLICT', field: 'spec.metrics.port', line: 5 },
    ]);
    expect(checkManifestSet(parse(mesh('  metrics: { port: 15090 }\n'), his, emr))).toEqual([]);
  });
});
