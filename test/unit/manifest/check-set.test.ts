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

describe('Consul service names across namespaces', () => {
  const inNs = (ns: string, name: string, discovery: string, address: string) =>
    service(
      name,
      `  ports: [{ name: http, port: 15031, targetPort: 8031, protocol: http }]
  discovery: ${discovery}
  instances: [{ name: ${name}-1, address: ${address}, appAddress: ${address} }]
`,
    ).replace('namespace: clinical', `namespace: ${ns}`);
  const hisConsul = service(
    'his',
    '  ports: [{ name: http, port: 15001, targetPort: 8080, protocol: http }]\n  discovery: { mode: consul }\n',
  );

  it("refuses a Service registering under another namespace's Consul name, at its consulName", () => {
    const lab = inNs('lab', 'labsvc', '{ mode: static, register: true, consulName: his }', '127.0.0.61');
    const problems = checkManifestSet(parse(hisConsul, lab));
    expect(problems.map(brief)).toEqual([
      { code: 'CONFLICT', field: 'spec.discovery.consulName', line: lineOf(lab, 'consulName') },
    ]);
    expect(problems[0]?.resource).toBe('Service lab/labsvc');
    expect(problems[0]?.pos?.file).toBe('f1.yaml');
    expect(problems[0]?.message).toContain('Service clinical/his');
  });

  it('refuses the default name too, and a name differing only in case (Consul compares names so)', () => {
    const his = inNs('lab', 'his', '{ mode: static, register: true }', '127.0.0.62');
    expect(checkManifestSet(parse(hisConsul, his)).map(brief)).toEqual([
      { code: 'CONFLICT', field: 'spec.discovery.register', line: lineOf(his, 'register') },
    ]);
    const upper = inNs('lab', 'labsvc', '{ mode: static, register: true, consulName: HIS }', '127.0.0.63');
    expect(checkManifestSet(parse(hisConsul, upper)).map((p) => p.code)).toEqual(['CONFLICT']);
  });

  it('refuses two namespaces registering one name, each blamed', () => {
    const a = inNs('lab', 'a', '{ mode: static, register: true, consulName: shared }', '127.0.0.64');
    const b = inNs('radiology', 'b', '{ mode: static, register: true, consulName: shared }', '127.0.0.65');
    expect(checkManifestSet(parse(a, b)).map((p) => [p.code, p.resource])).toEqual([
      ['CONFLICT', 'Service lab/a'],
      ['CONFLICT', 'Service radiology/b'],
    ]);
  });

  it('allows one namespace to register and discover a name, and two namespaces to discover one', () => {
    const reg = inNs(
      'clinical',
      'his-legacy',
      '{ mode: static, register: true, consulName: his }',
      '127.0.0.66',
    );
    const consulOnly = (ns: string, name: string, consulName: string) =>
      inNs(ns, name, `{ mode: consul, consulName: ${consulName} }`, '127.0.0.1').replace(
        / {2}instances:.*\n/,
        '',
      );
    const staticOnly = inNs('lab', 'labsvc', '{ mode: static, consulName: his }', '127.0.0.68');
    expect(
      checkManifestSet(
        parse(
          hisConsul,
          reg,
          consulOnly('lab', 'ext', 'pacs'),
          consulOnly('radiology', 'ext', 'pacs'),
          staticOnly,
        ),
      ),
    ).toEqual([]);
  });
});
