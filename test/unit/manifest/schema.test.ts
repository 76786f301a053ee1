import { describe, expect, it } from 'vitest';
import { DEFAULT_MESH, parseManifestText, type Mesh, type Service } from '../../../src/manifest/index.ts';
import { brief, errorsOf, lineOf, service, valueOf } from './helpers.ts';

const MINIMAL_SERVICE = service(
  'his',
  `  ports:
    - { name: http, port: 15001, protocol: http }
  instances:
    - { name: his-1, address: 127.0.0.11 }
`,
);

describe('defaults', () => {
  it('fills in a Mesh given only its name', () => {
    const [mesh] = valueOf(
      parseManifestText('apiVersion: clinimesh.io/v1alpha1\nkind: Mesh\nmetadata: { name: m }\n', 'm.yaml'),
    ) as Mesh[];
    expect(mesh).toMatchObject({
      name: 'm',
      trustDomain: 'clinimesh.local',
      mtls: { mode: 'STRICT' },
      defaults: { connectTimeoutMs: 2000, requestTimeoutMs: 15000 },
      authorization: { defaultAction: 'ALLOW' },
      audit: { enabled: true, path: '/dev/stdout' },
      origin: { file: 'm.yaml', pos: { line: 1, col: 1 } },
    });
  });

  it('uses the same defaults for the built-in mesh in force when no Mesh manifest exists', () => {
    const text = 'apiVersion: clinimesh.io/v1alpha1\nkind: Mesh\nmetadata: { name: default }\n';
    const [mesh] = valueOf(parseManifestText(text, 'm.yaml')) as Mesh[];
    expect({ ...DEFAULT_MESH, origin: undefined }).toEqual({ ...mesh, origin: undefined });
    expect(DEFAULT_MESH.origin).toEqual({ file: '<built-in>' });
  });

  it('reads deny-all authorization and a custom audit log', () => {
    const text = `apiVersion: clinimesh.io/v1alpha1
kind: Mesh
metadata: { name: m }
spec:
  authorization: { defaultAction: DENY }
  audit: { enabled: false, path: /var/log/clinimesh/audit.log }
`;
    const [mesh] = valueOf(parseManifestText(text, 'm.yaml')) as Mesh[];
    expect(mesh?.authorization).toEqual({ defaultAction: 'DENY' });
    expect(mesh?.audit).toEqual({ enabled: false, path: '/var/log/clinimesh/audit.log' });
  });

  it('turns durations into milliseconds, 0s disabling the request timeout', () => {
    const text = `apiVersion: clinimesh.io/v1alpha1
kind: Mesh
metadata: { name: m }
spec: { defaults: { connectTimeout: 250ms, requestTimeout: 0s } }
`;
    const [mesh] = valueOf(parseManifestText(text, 'm.yaml')) as Mesh[];
    expect(mesh?.defaults).toEqual({ connectTimeoutMs: 250, requestTimeoutMs: 0 });
  });

  it('fills in a Service: namespace, targetPort, discovery, appAddress, weight, upstream namespace', () => {
    const text = `apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: emr }
spec:
  ports: [{ name: http, port: 15011, protocol: http }]
  instances: [{ name: emr-1, address: 10.0.0.21 }]
  upstreams: [{ service: his, port: http, localPort: 9001 }]
`;
    const [emr] = valueOf(parseManifestText(text, 'emr.yaml')) as Service[];
    expect(emr).toMatchObject({
      namespace: 'default',
      ports: [{ name: 'http', port: 15011, targetPort: 15011, protocol: 'http' }],
      discovery: { mode: 'static', consulName: 'emr', register: false },
      instances: [
        {
          name: 'emr-1',
          address: '10.0.0.21',
          appAddress: '127.0.0.1',
          weight: 1,
          locality: {},
          meta: {},
        },
      ],
      upstreams: [{ service: 'his', namespace: 'default', port: 'http', localPort: 9001 }],
    });
  });

  it('lets a Consul-discovered service list no instances', () => {
    const text = service(
      'lab',
      '  ports: [{ name: http, port: 15041, protocol: http }]\n  discovery: { mode: consul, consulName: lab-api }\n',
    );
    const [lab] = valueOf(parseManifestText(text, 'lab.yaml')) as Service[];
    expect(lab).toMatchObject({
      instances: [],
      discovery: { mode: 'consul', consulName: 'lab-api', register: false },
    });
  });
});

describe('schema problems', () => {
  it('reports every problem of a multi-document file, each at its line with its field path', () => {
    const text = `${MINIMAL_SERVICE}---
apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: emr, namespace: clinical }
spec:
  ports:
    - { name: http, port: 15011, protocol: http }
  instances:
    - { name: emr-1, address: 127.0.0.21 }
    - { name: emr-2, address: 127.0.0.22, weight: 500 }
---
apiVersion: clinimesh.io/v1alpha1
kind: Mesh
metadata: { name: hospital }
spec:
  mtls: { mode: strict }
  defaults: { connectTimeout: 2 }
`;
    const problems = errorsOf(parseManifestText(text, 'mesh.yaml'));
    expect(problems.map(brief)).toEqual([
      { code: 'SCHEMA', field: 'spec.instances[1].weight', line: lineOf(text, 'weight: 500') },
      { code: 'SCHEMA', field: 'spec.mtls.mode', line: lineOf(text, 'mode: strict') },
      { code: 'SCHEMA', field: 'spec.defaults.connectTimeout', line: lineOf(text, 'connectTimeout: 2') },
    ]);
    expect(problems.map((p) => p.resource)).toEqual([
      'Service clinical/emr',
      'Mesh hospital',
      'Mesh hospital',
    ]);
    expect(problems.every((p) => p.pos?.file === 'mesh.yaml')).toBe(true);
  });

  it('rejects an unknown default action and a relative audit path', () => {
    const text = `apiVersion: clinimesh.io/v1alpha1
kind: Mesh
metadata: { name: m }
spec:
  authorization: { defaultAction: deny }
  audit: { enabled: yes, path: logs/audit.log }
`;
    const problems = errorsOf(parseManifestText(text, 'm.yaml'));
    expect(problems.map(brief)).toEqual([
      { code: 'SCHEMA', field: 'spec.authorization.defaultAction', line: 5 },
      { code: 'SCHEMA', field: 'spec.audit.enabled', line: 6 },
      { code: 'SCHEMA', field: 'spec.audit.path', line: 6 },
    ]);
    expect(problems[0]?.message).toContain('"DENY"');
  });

  it('points at the offending value, column included', () => {
    const text = MINIMAL_SERVICE.replace('port: 15001', 'port: 99999');
    const [problem] = errorsOf(parseManifestText(text, 'his.yaml'));
    const line = lineOf(text, 'port: 99999');
    expect(problem?.pos).toEqual({
      file: 'his.yaml',
      line,
      col: (text.split('\n')[line - 1]?.indexOf('99999') ?? -2) + 1,
    });
    expect(problem?.field).toBe('spec.ports[0].port');
  });

  it('rejects unknown fields with a suggestion when one is close', () => {
    const text = MINIMAL_SERVICE.replace('port: 15001,', 'port: 15001, targetport: 8080,');
    const [problem, ...rest] = errorsOf(parseManifestText(text, 'his.yaml'));
    expect(rest).toEqual([]);
    expect(brief(problem!)).toEqual({
      code: 'SCHEMA',
      field: 'spec.ports[0].targetport',
      line: lineOf(text, 'targetport'),
    });
    expect(problem?.message).toContain('"targetPort"');
  });

  it('rejects unknown fields without a suggestion when none is close', () => {
    const text = MINIMAL_SERVICE.replace('spec:\n', 'spec:\n  billingCode: X17\n');
    const [problem] = errorsOf(parseManifestText(text, 'his.yaml'));
    expect(brief(problem!)).toEqual({ code: 'SCHEMA', field: 'spec.billingCode', line: 5 });
    expect(problem?.message).not.toContain('did you mean');
  });

  it('reports a missing field at the map that lacks it', () => {
    const text = MINIMAL_SERVICE.replace('name: his-1, ', '');
    const problems = errorsOf(parseManifestText(text, 'his.yaml'));
    expect(problems.map(brief)).toEqual([
      { code: 'SCHEMA', field: 'spec.instances[0].name', line: lineOf(text, 'address: 127.0.0.11') },
    ]);
  });

  it('names the expected type when a value has the wrong one', () => {
    const text = MINIMAL_SERVICE.replace('port: 15001', 'port: "15001"').replace(
      'address: 127.0.0.11',
      'address: [127.0.0.11]',
    );
    const problems = errorsOf(parseManifestText(text, 'his.yaml'));
    expect(problems.map(brief)).toEqual([
      { code: 'SCHEMA', field: 'spec.ports[0].port', line: lineOf(text, '"15001"') },
      { code: 'SCHEMA', field: 'spec.instances[0].address', line: lineOf(text, 'address: [') },
    ]);
    expect(problems[0]?.message).toMatch(/integer/);
    expect(problems[1]?.message).toMatch(/string|address/);
  });

  it('reports unknown kinds and apiVersions, suggesting the kind meant', () => {
    const text = 'apiVersion: clinimesh.io/v1\nkind: Servise\nmetadata: { name: x }\n';
    const problems = errorsOf(parseManifestText(text, 'x.yaml'));
    expect(problems.map(brief)).toEqual([
      { code: 'UNKNOWN_KIND', field: 'apiVersion', line: 1 },
      { code: 'UNKNOWN_KIND', field: 'kind', line: 2 },
    ]);
    expect(problems[1]?.message).toContain('"Service"');
  });

  it('checks names, addresses and enumerations', () => {
    const text = service(
      'His_System',
      `  ports:
    - { name: http, port: 15001, protocol: https }
  discovery: { mode: dns }
  instances:
    - { name: his-1, address: 127.0.0.300, appAddress: his.local }
`,
    );
    const problems = errorsOf(parseManifestText(text, 'his.yaml'));
    expect(problems.map((p) => p.field)).toEqual([
      'metadata.name',
      'spec.ports[0].protocol',
      'spec.discovery.mode',
      'spec.instances[0].address',
      'spec.instances[0].appAddress',
    ]);
  });

  it('requires instances for static discovery and ports for every service', () => {
    const text = service('his', '  ports: []\n  instances: []\n');
    expect(errorsOf(parseManifestText(text, 'his.yaml')).map(brief)).toEqual([
      { code: 'SCHEMA', field: 'spec.ports', line: 5 },
      { code: 'SCHEMA', field: 'spec.instances', line: 6 },
    ]);
  });

  it('reports duplicate entries within a service alongside type errors', () => {
    const text = service(
      'his',
      `  ports:
    - { name: http, port: 15001, protocol: http }
    - { name: http, port: 15001, protocol: grpc }
  instances:
    - { name: his-1, address: 127.0.0.11 }
    - { name: his-1, address: 127.0.0.12, weight: 0 }
  upstreams:
    - { service: emr, port: http, localPort: 9001 }
    - { service: lab, port: http, localPort: 9001 }
    - { service: his, port: http, localPort: 9003 }
`,
    );
    const problems = errorsOf(parseManifestText(text, 'his.yaml'));
    expect(problems.map(brief)).toEqual([
      { code: 'DUPLICATE', field: 'spec.ports[1].name', line: lineOf(text, 'name: http', 2) },
      { code: 'DUPLICATE', field: 'spec.ports[1].port', line: lineOf(text, 'name: http', 2) },
      { code: 'DUPLICATE', field: 'spec.instances[1].name', line: lineOf(text, 'weight: 0') },
      { code: 'SCHEMA', field: 'spec.instances[1].weight', line: lineOf(text, 'weight: 0') },
      { code: 'DUPLICATE', field: 'spec.upstreams[1].localPort', line: lineOf(text, 'service: lab') },
      { code: 'REFERENCE', field: 'spec.upstreams[2].service', line: lineOf(text, 'service: his') },
    ]);
  });

  it('reports a duplicate document within one text', () => {
    const text = `${MINIMAL_SERVICE}---\n${MINIMAL_SERVICE}`;
    expect(errorsOf(parseManifestText(text, 'his.yaml')).map(brief)).toEqual([
      { code: 'DUPLICATE', field: 'metadata.name', line: lineOf(text, 'metadata', 2) },
    ]);
  });
});

describe('instance addresses', () => {
  it('refuses a host name, which EDS cannot take and which would make Envoy reject every endpoint of the service', () => {
    const yaml = `apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: emr, namespace: clinical }
spec:
  ports: [{ name: http, port: 15011, targetPort: 8080, protocol: http }]
  instances: [{ name: emr-1, address: emr.hospital.internal }]
`;
    const parsed = parseManifestText(yaml, 'emr.yaml');
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    expect(parsed.errors.map((p) => [p.code, p.field, p.pos?.line])).toEqual([
      ['SCHEMA', 'spec.instances[0].address', 6],
    ]);
  });
});
