import { describe, expect, it } from 'vitest';
import {
  checkManifestSet,
  parseManifestText,
  type AccessPolicy,
  type Manifest,
} from '../../../src/manifest/index.ts';
import { brief, errorsOf, lineOf, service, valueOf } from './helpers.ts';

const policy = (spec: string, name = 'his-callers'): string => `apiVersion: clinimesh.io/v1alpha1
kind: AccessPolicy
metadata: { name: ${name}, namespace: clinical }
spec:
${spec}`;

const HIS_CALLERS = policy(`  destination: his
  rules:
    - from:
        - { service: emr }
        - { service: imaging, namespace: radiology }
      http:
        methods: [GET, POST]
        paths: ["/patients/*", "/orders"]
    - from: [{ service: lab }]
`);

const his = service(
  'his',
  '  ports: [{ name: http, port: 15001, protocol: http }]\n  instances: [{ name: his-1, address: 127.0.0.11 }]\n',
);
const emr = service(
  'emr',
  '  ports: [{ name: http, port: 15011, protocol: http }]\n  instances: [{ name: emr-1, address: 127.0.0.21 }]\n',
);
const pacs = service(
  'pacs',
  '  ports: [{ name: dicom, port: 15031, protocol: tcp }]\n  instances: [{ name: pacs-1, address: 127.0.0.31 }]\n',
);

function parse(...texts: string[]): Manifest[] {
  return texts.flatMap((t, i) => valueOf(parseManifestText(t, `f${i}.yaml`)));
}

describe('AccessPolicy parsing', () => {
  it('reads callers, methods and paths, defaulting namespaces to the policy namespace', () => {
    const [parsed] = valueOf(parseManifestText(HIS_CALLERS, 'access.yaml')) as AccessPolicy[];
    const { origin, ...rest } = parsed!;
    expect(rest).toEqual({
      kind: 'AccessPolicy',
      name: 'his-callers',
      namespace: 'clinical',
      destination: { service: 'his', namespace: 'clinical' },
      rules: [
        {
          from: [
            { service: 'emr', namespace: 'clinical' },
            { service: 'imaging', namespace: 'radiology' },
          ],
          http: { methods: ['GET', 'POST'], paths: [{ prefix: '/patients/' }, { exact: '/orders' }] },
        },
        { from: [{ service: 'lab', namespace: 'clinical' }] },
      ],
    });
    expect(origin).toMatchObject({ file: 'access.yaml', pos: { line: 1, col: 1 } });
  });

  it('accepts the destination as a map naming its namespace', () => {
    const text = policy(`  destination: { service: his, namespace: records }
  rules: [{ from: [{ service: emr }] }]
`);
    const [parsed] = valueOf(parseManifestText(text, 'access.yaml')) as AccessPolicy[];
    expect(parsed?.destination).toEqual({ service: 'his', namespace: 'records' });
  });

  it('reports a bad method, a bad path and an unknown field together, each at its node', () => {
    const text = policy(`  destination: his
  rules:
    - from:
        - { service: emr }
        - { service: imaging, namspace: clinical }
      http:
        methods: [GET, PSOT]
        paths: ["/patients/*/studies"]
`);
    const problems = errorsOf(parseManifestText(text, 'access.yaml'));
    expect(problems.map(brief)).toEqual([
      { code: 'SCHEMA', field: 'spec.rules[0].from[1].namspace', line: lineOf(text, 'namspace') },
      { code: 'SCHEMA', field: 'spec.rules[0].http.methods[1]', line: lineOf(text, 'PSOT') },
      { code: 'SCHEMA', field: 'spec.rules[0].http.paths[0]', line: lineOf(text, 'studies') },
    ]);
    expect(problems[0]?.message).toContain('"namespace"');
    expect(problems[1]?.message).toContain('"POST"');
    expect(problems.every((p) => p.resource === 'AccessPolicy clinical/his-callers')).toBe(true);
  });

  it('refuses paths that could never match: relative, with a query string, or a bare "*"', () => {
    const text = policy(`  destination: his
  rules:
    - from: [{ service: emr }]
      http: { paths: [patients, "/orders?id=1", "*", "/*"] }
`);
    expect(errorsOf(parseManifestText(text, 'access.yaml')).map((p) => p.field)).toEqual([
      'spec.rules[0].http.paths[0]',
      'spec.rules[0].http.paths[1]',
      'spec.rules[0].http.paths[2]',
    ]);
  });

  it('requires a destination, at least one rule, and at least one caller per rule', () => {
    const noRules = policy('  destination: his\n  rules: []\n');
    expect(errorsOf(parseManifestText(noRules, 'a.yaml')).map(brief)).toEqual([
      { code: 'SCHEMA', field: 'spec.rules', line: lineOf(noRules, 'rules') },
    ]);
    const noCallers = policy('  rules:\n    - from: []\n');
    expect(errorsOf(parseManifestText(noCallers, 'a.yaml')).map(brief)).toEqual([
      { code: 'SCHEMA', field: 'spec.destination', line: lineOf(noCallers, 'spec:') + 1 },
      { code: 'SCHEMA', field: 'spec.rules[0].from', line: lineOf(noCallers, 'from') },
    ]);
  });

  it('refuses empty method and path lists, which would read as "none" but mean "any"', () => {
    const text = policy(`  destination: his
  rules:
    - from: [{ service: emr }]
      http: { methods: [], paths: [] }
`);
    expect(errorsOf(parseManifestText(text, 'a.yaml')).map((p) => p.field)).toEqual([
      'spec.rules[0].http.methods',
      'spec.rules[0].http.paths',
    ]);
  });
});

describe('AccessPolicy rules limited to ports', () => {
  const mixed = pacs.replace(
    '[{ name: dicom, port: 15031, protocol: tcp }]',
    '[{ name: dicom, port: 15031, protocol: tcp }, { name: web, port: 15032, protocol: http }]',
  );

  it('reads the port names a rule opens', () => {
    const text = policy(
      '  destination: pacs\n  rules:\n    - { from: [{ service: emr }], ports: [dicom] }\n',
    );
    const [parsed] = parse(text) as [AccessPolicy];
    expect(parsed.rules[0]?.ports).toEqual(['dicom']);
    expect(checkManifestSet(parse(mixed, emr, text))).toEqual([]);
  });

  it('refuses an empty ports list, which would read as "none" but mean "all"', () => {
    const text = policy('  destination: pacs\n  rules:\n    - { from: [{ service: emr }], ports: [] }\n');
    expect(errorsOf(parseManifestText(text, 'a.yaml')).map((p) => p.field)).toEqual(['spec.rules[0].ports']);
  });

  it('reports a port the destination does not have, at its line, suggesting the name meant', () => {
    const text = policy(`  destination: pacs
  rules:
    - from: [{ service: emr }]
      ports:
        - dicom
        - dicon
`);
    const problems = checkManifestSet(parse(mixed, emr, text));
    expect(problems.map(brief)).toEqual([
      { code: 'REFERENCE', field: 'spec.rules[0].ports[1]', line: lineOf(text, 'dicon') },
    ]);
    expect(problems[0]?.message).toContain('"dicom"');
  });

  it('rejects http conditions on a rule that names a tcp port', () => {
    const text = policy(`  destination: pacs
  rules:
    - from: [{ service: emr }]
      ports: [web, dicom]
      http: { methods: [GET] }
`);
    expect(checkManifestSet(parse(mixed, emr, text)).map(brief)).toEqual([
      { code: 'CONFLICT', field: 'spec.rules[0].ports[1]', line: lineOf(text, 'ports:') },
    ]);
  });

  it('lets http conditions limit a rule that names only http ports', () => {
    const text = policy(`  destination: pacs
  rules:
    - { from: [{ service: emr }], ports: [web], http: { methods: [GET] } }
`);
    expect(checkManifestSet(parse(mixed, emr, text))).toEqual([]);
  });
});

describe('AccessPolicy set checks', () => {
  it('accepts a policy whose destination and callers exist', () => {
    const text = policy(`  destination: his
  rules: [{ from: [{ service: emr }], http: { methods: [GET] } }]
`);
    expect(checkManifestSet(parse(his, emr, text))).toEqual([]);
  });

  it('reports a dangling destination and a dangling caller as REFERENCE, suggesting the name meant', () => {
    const text = policy(`  destination: hiss
  rules:
    - from:
        - { service: emr }
        - { service: emrr }
`);
    const problems = checkManifestSet(parse(his, emr, text));
    expect(problems.map(brief)).toEqual([
      { code: 'REFERENCE', field: 'spec.destination', line: lineOf(text, 'hiss') },
      { code: 'REFERENCE', field: 'spec.rules[0].from[1].service', line: lineOf(text, 'emrr') },
    ]);
    expect(problems[0]?.message).toContain('"his"');
    expect(problems[1]?.message).toContain('"emr"');
    expect(problems[0]?.resource).toBe('AccessPolicy clinical/his-callers');
  });

  it('reports a missing destination written as a map at its service field', () => {
    const text = policy(`  destination: { service: his, namespace: records }
  rules: [{ from: [{ service: emr }] }]
`);
    expect(checkManifestSet(parse(his, emr, text)).map(brief)).toEqual([
      { code: 'REFERENCE', field: 'spec.destination.service', line: lineOf(text, 'destination') },
    ]);
  });

  it('rejects an http rule on a destination with only tcp ports', () => {
    const text = policy(
      `  destination: pacs
  rules:
    - from: [{ service: emr }]
    - from: [{ service: emr }]
      http: { methods: [GET] }
`,
      'pacs-callers',
    );
    expect(checkManifestSet(parse(pacs, emr, text)).map(brief)).toEqual([
      { code: 'CONFLICT', field: 'spec.rules[1].http', line: lineOf(text, 'http:') },
    ]);
  });

  it('lets a destination with tcp and http ports take http rules', () => {
    const mixed = pacs.replace(
      '[{ name: dicom, port: 15031, protocol: tcp }]',
      '[{ name: dicom, port: 15031, protocol: tcp }, { name: web, port: 15032, protocol: http }]',
    );
    const text = policy(
      '  destination: pacs\n  rules:\n    - from: [{ service: emr }]\n      http: { paths: ["/studies/*"] }\n',
      'pacs-callers',
    );
    expect(checkManifestSet(parse(mixed, emr, text))).toEqual([]);
  });
});
