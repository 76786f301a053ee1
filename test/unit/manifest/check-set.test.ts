import { describe, expect, it } from 'vitest';
import {
  checkManifestSet,
  parseManifestText,
  type Manifest,
  type Service,
} from '../../../src/manifest/index.ts';
import { brief, lineOf, service, valueOf } from './helpers.ts';

const his = service(
  'his',
  `  ports: [{ name: http, port: 15001, targetPort: 8080, protocol: http }]
  instances:
    - { name: his-1, address: 127.0.0.11, appAddress: 127.0.0.11 }
`,
);

function parse(...texts: string[]): Manifest[] {
  return texts.flatMap((t, i) => valueOf(parseManifestText(t, `f${i}.yaml`)));
}

describe('upstream references', () => {
  it('reports an upstream to a service that does not exist, at the service field', () => {
    const emr = service(
      'emr',
      `  ports: [{ name: http, port: 15011, protocol: http }]
  instances: [{ name: emr-1, address: 127.0.0.21 }]
  upstreams:
    - { service: his, port: http, localPort: 9001 }
    - { service: hiss, port: http, localPort: 9002 }
    - { service: his, namespace: admin, port: http, localPort: 9003 }
`,
    );
    const problems = checkManifestSet(parse(his, emr));
    expect(problems.map(brief)).toEqual([
      { code: 'REFERENCE', field: 'spec.upstreams[1].service', line: lineOf(emr, 'hiss') },
      { code: 'REFERENCE', field: 'spec.upstreams[2].service', line: lineOf(emr, 'namespace: admin') },
    ]);
    expect(problems[0]?.message).toContain('"his"');
    expect(problems[0]?.pos?.file).toBe('f1.yaml');
  });

  it('reports an upstream port the service does not have', () => {
    const emr = service(
      'emr',
      '  ports: [{ name: http, port: 15011, protocol: http }]\n  instances: [{ name: emr-1, address: 127.0.0.21 }]\n  upstreams: [{ service: his, port: grpc, localPort: 9001 }]\n',
    );
    expect(checkManifestSet(parse(his, emr)).map(brief)).toEqual([
      { code: 'REFERENCE', field: 'spec.upstreams[0].port', line: 7 },
    ]);
  });
});

describe('bindings', () => {
  it('rejects two instances binding the same localPort on the same appAddress', () => {
    const a = service(
      'a',
      '  ports: [{ name: http, port: 15001, protocol: http }]\n  instances: [{ name: a-1, address: 127.0.0.41 }]\n  upstreams: [{ service: his, port: http, localPort: 9001 }]\n',
    );
    const b = service(
      'b',
      '  ports: [{ name: http, port: 15001, protocol: http }]\n  instances: [{ name: b-1, address: 127.0.0.42 }]\n  upstreams: [{ service: his, port: http, localPort: 9001 }]\n',
    );
    const problems = checkManifestSet(parse(his, a, b));
    expect(problems.map(brief)).toEqual([
      { code: 'CONFLICT', field: 'spec.upstreams[0].localPort', line: 7 },
    ]);
    expect(problems[0]?.resource).toBe('Service clinical/b');
  });

  it('rejects two instances whose sidecars would listen on the same address and port', () => {
    const his2 = his.replace(
      'his-1, address: 127.0.0.11, appAddress: 127.0.0.11',
      'his-1, address: 127.0.0.11, appAddress: 127.0.0.11 }\n    - { name: his-2, address: 127.0.0.11, appAddress: 127.0.0.12',
    );
    expect(checkManifestSet(parse(his2)).map(brief)).toEqual([
      { code: 'CONFLICT', field: 'spec.instances[1].address', line: lineOf(his2, 'his-2') },
    ]);
  });

  it('rejects a sidecar port that is also its own application port', () => {
    const same = his.replace('targetPort: 8080', 'targetPort: 15001');
    expect(checkManifestSet(parse(same)).map((p) => [p.code, p.field])).toEqual([
      ['CONFLICT', 'spec.ports[0].targetPort'],
    ]);
  });

  it('lets applications of different instances share a port on the default appAddress', () => {
    const a = service(
      'a',
      '  ports: [{ name: http, port: 15001, targetPort: 8080, protocol: http }]\n  instances: [{ name: a-1, address: 127.0.0.41 }]\n',
    );
    const b = service(
      'b',
      '  ports: [{ name: http, port: 15001, targetPort: 8080, protocol: http }]\n  instances: [{ name: b-1, address: 127.0.0.42 }]\n',
    );
    expect(checkManifestSet(parse(a, b))).toEqual([]);
  });
});

describe('manifests built in code', () => {
  it('get the same per-service rules as parsed ones, placed at the document when no field position is known', () => {
    const [parsed] = parse(his) as Service[];
    const built: Service = {
      ...parsed!,
      instances: [
        parsed!.instances[0]!,
        { ...parsed!.instances[0]!, address: '127.0.0.12', appAddress: '127.0.0.12' },
      ],
      origin: { file: 'api' },
    };
    expect(checkManifestSet([built]).map((p) => [p.code, p.field])).toEqual([
      ['DUPLICATE', 'spec.instances[1].name'],
    ]);
  });

  it('report a duplicated service once, without a cascade of conflicts', () => {
    expect(checkManifestSet(parse(his, his)).map((p) => p.code)).toEqual(['DUPLICATE']);
  });
});
