// The Mesh's telemetry settings: sidecar metrics (spec.metrics), read, checked, and held against
// every socket the mesh's sidecars already bind.
import { describe, expect, it } from 'vitest';
import {
  checkManifestSet,
  parseManifestText,
  type Manifest,
  type Mesh,
} from '../../../src/manifest/index.ts';
import { toYaml } from '../../../src/cli/manifest-document.ts';
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

describe('Mesh tracing', () => {
  it('reads a Zipkin collector and the sampling percentage, with defaults for path and sampling', () => {
    const [full] = parse(
      mesh(
        '  tracing:\n    zipkin: { collector: "zipkin.observability:9411", path: /zipkin/spans }\n    sampling: 0.5\n',
      ),
    ) as Mesh[];
    expect(full?.tracing).toEqual({
      zipkin: { host: 'zipkin.observability', port: 9411, path: '/zipkin/spans' },
      samplingPercent: 0.5,
    });
    const [v6] = parse(mesh('  tracing: { zipkin: { collector: "[::1]:9411" } }\n')) as Mesh[];
    expect(v6?.tracing).toEqual({
      zipkin: { host: '::1', port: 9411, path: '/api/v2/spans' },
      samplingPercent: 1,
    });
    const [off] = parse(mesh('  trustDomain: hospital.local\n')) as Mesh[];
    expect(off).not.toHaveProperty('tracing');
  });

  it('refuses a collector without a port, a sampling above 100 and a path with a query', () => {
    const text = mesh(
      '  tracing:\n    zipkin: { collector: zipkin.observability, path: "/spans?x=1" }\n    sampling: 150\n',
    );
    expect(errorsOf(parseManifestText(text, 'm.yaml')).map(brief)).toEqual([
      { code: 'SCHEMA', field: 'spec.tracing.zipkin.collector', line: 6 },
      { code: 'SCHEMA', field: 'spec.tracing.zipkin.path', line: 6 },
      { code: 'SCHEMA', field: 'spec.tracing.sampling', line: 7 },
    ]);
    for (const collector of [
      '"[zipkin]:9411"',
      '"zipkin:0"',
      '"zipkin:99999"',
      '"bad_host:9411"',
      '"127.0.0.300:9411"',
    ])
      expect(
        errorsOf(
          parseManifestText(mesh(`  tracing: { zipkin: { collector: ${collector} } }\n`), 'm.yaml'),
        ).map((p) => p.field),
        collector,
      ).toEqual(['spec.tracing.zipkin.collector']);
    expect(
      errorsOf(parseManifestText(mesh('  tracing: { sampling: 5 }\n'), 'm.yaml')).map((p) => p.field),
    ).toEqual(['spec.tracing.zipkin']);
  });
});

describe('Mesh telemetry written back', () => {
  it('reads back as it was from `get -o yaml`, IPv6 collectors included', () => {
    for (const collector of ['"zipkin.observability:9411"', '"[::1]:9411"']) {
      const [before] = parse(
        mesh(
          `  metrics: { port: 15090 }\n  tracing: { zipkin: { collector: ${collector} }, sampling: 0.5 }\n`,
        ),
      ) as Mesh[];
      const [after] = parse(toYaml(before!)) as Mesh[];
      expect(after?.metrics).toEqual(before?.metrics);
      expect(after?.tracing).toEqual(before?.tracing);
    }
  });
});
