// Per-instance ports (instancePorts): how they are read, and every way a manifest can get them wrong,
// each reported at the field to fix.
import { describe, expect, it } from 'vitest';
import {
  checkManifestSet,
  parseManifestText,
  type Manifest,
  type Service,
} from '../../../src/manifest/index.ts';
import { instanceOrdinal } from '../../../src/manifest/instance-ordinal.ts';
import { brief, errorsOf, lineOf, service, valueOf } from './helpers.ts';

const kafka = (instances: string, extra = ''): string =>
  service(
    'kafka',
    `  ports:
    - { name: kafka, port: 19092, targetPort: 9092, protocol: tcp, instancePorts: { base: 29092, count: 3 } }
  instances:
${instances}${extra}`,
  );

const threeBrokers = `    - { name: kafka-0, address: 127.0.0.50, appAddress: 127.0.0.50 }
    - { name: kafka-1, address: 127.0.0.51, appAddress: 127.0.0.51 }
    - { name: broker-c, address: 127.0.0.52, appAddress: 127.0.0.52, meta: { ordinal: "2" } }
`;

function parse(...texts: string[]): Manifest[] {
  return texts.flatMap((t, i) => valueOf(parseManifestText(t, `f${i}.yaml`)));
}

describe('instance ordinals', () => {
  it('come from meta ordinal first, else the name suffix', () => {
    expect(instanceOrdinal('kafka-2', {})).toBe(2);
    expect(instanceOrdinal('kafka.imaging-kafka-10', {})).toBe(10);
    expect(instanceOrdinal('node-a/kafka-1', {})).toBe(1);
    expect(instanceOrdinal('broker', { ordinal: '0' })).toBe(0);
    expect(instanceOrdinal('kafka-1', { ordinal: '4' })).toBe(4);
    expect(instanceOrdinal('broker', {})).toBeUndefined();
    expect(instanceOrdinal('kafka-01', {})).toBeUndefined();
    expect(instanceOrdinal('kafka-1', { ordinal: 'one' })).toBeUndefined();
  });
});

describe('instancePorts', () => {
  it('is read with its base and count, and a service may then be its own upstream on that port', () => {
    const text = kafka(threeBrokers, '  upstreams: [{ service: kafka, port: kafka, localPort: 29000 }]\n');
    const [svc] = parse(text) as [Service];
    expect(svc.ports[0]?.instancePorts).toEqual({ base: 29092, count: 3 });
    expect(checkManifestSet([svc])).toEqual([]);
  });

  it('refuses an instance without an ordinal, two instances with one ordinal, and an ordinal past count', () => {
    const text = kafka(`    - { name: kafka-0, address: 127.0.0.50, appAddress: 127.0.0.50 }
    - { name: broker, address: 127.0.0.51, appAddress: 127.0.0.51 }
    - { name: other, address: 127.0.0.52, appAddress: 127.0.0.52, meta: { ordinal: "0" } }
    - { name: kafka-3, address: 127.0.0.53, appAddress: 127.0.0.53 }
`);
    expect(errorsOf(parseManifestText(text, 'k.yaml')).map(brief)).toEqual([
      { code: 'SCHEMA', field: 'spec.instances[1].name', line: lineOf(text, 'name: broker') },
      { code: 'DUPLICATE', field: 'spec.instances[2].name', line: lineOf(text, 'name: other') },
      { code: 'SCHEMA', field: 'spec.instances[3].name', line: lineOf(text, 'name: kafka-3') },
    ]);
  });

  it('refuses a range that runs past port 65535, at count', () => {
    const text = service(
      'kafka',
      `  ports:
    - name: kafka
      port: 19092
      protocol: tcp
      instancePorts:
        base: 65534
        count: 3
  instances: [{ name: kafka-0, address: 127.0.0.50 }]
`,
    );
    expect(errorsOf(parseManifestText(text, 'k.yaml')).map(brief)).toEqual([
      { code: 'SCHEMA', field: 'spec.ports[0].instancePorts.count', line: lineOf(text, 'count: 3') },
    ]);
  });

  it('needs a tcp port', () => {
    const text = service(
      'kafka',
      `  ports:
    - name: web
      port: 19092
      protocol: http
      instancePorts: { base: 29092, count: 1 }
  instances: [{ name: kafka-0, address: 127.0.0.50 }]
`,
    );
    expect(errorsOf(parseManifestText(text, 'k.yaml')).map(brief)).toEqual([
      { code: 'SCHEMA', field: 'spec.ports[0].instancePorts', line: lineOf(text, 'instancePorts') },
    ]);
  });

  it('still refuses a service as its own upstream on a port without instancePorts', () => {
    const text = service(
      'his',
      `  ports: [{ name: http, port: 15001, protocol: http }]
  instances: [{ name: his-1, address: 127.0.0.11 }]
  upstreams: [{ service: his, port: http, localPort: 9001 }]
`,
    );
    expect(errorsOf(parseManifestText(text, 'h.yaml')).map(brief)).toEqual([
      { code: 'REFERENCE', field: 'spec.upstreams[0].service', line: lineOf(text, 'upstreams') },
    ]);
  });
});

describe("a caller's local ports against per-instance ranges", () => {
  const caller = (upstreams: string): string =>
    service(
      'pacs',
      `  ports: [{ name: http, port: 15061, targetPort: 8080, protocol: http }]
  instances: [{ name: pacs-1, address: 127.0.0.61, appAddress: 127.0.0.61 }]
  upstreams:
${upstreams}`,
    );

  it('reports a localPort inside the range of another upstream, at the field written second', () => {
    const pacs = caller(`    - { service: kafka, port: kafka, localPort: 9092 }
    - { service: his, port: http, localPort: 29093 }
`);
    const his = service(
      'his',
      '  ports: [{ name: http, port: 15001, protocol: http }]\n  instances: [{ name: his-1, address: 127.0.0.11 }]\n',
    );
    const problems = checkManifestSet(parse(kafka(threeBrokers), his, pacs));
    expect(problems.map(brief)).toEqual([
      { code: 'CONFLICT', field: 'spec.upstreams[1].localPort', line: lineOf(pacs, 'localPort: 29093') },
    ]);
    expect(problems[0]?.message).toContain('instance 1');
  });

  it('reports two per-instance ranges that overlap, across upstreams', () => {
    const ledger = service(
      'ledger',
      `  ports:
    - { name: tcp, port: 19500, protocol: tcp, instancePorts: { base: 29094, count: 2 } }
  instances: [{ name: ledger-0, address: 127.0.0.70 }]
`,
    );
    const pacs = caller(`    - { service: kafka, port: kafka, localPort: 9092 }
    - { service: ledger, port: tcp, localPort: 9500 }
`);
    const problems = checkManifestSet(parse(kafka(threeBrokers), ledger, pacs));
    expect(problems.map(brief)).toEqual([
      { code: 'CONFLICT', field: 'spec.upstreams[1].port', line: lineOf(pacs, 'service: ledger') },
    ]);
  });

  it("reports a range over the caller's own application port", () => {
    const pacs = service(
      'pacs',
      `  ports: [{ name: http, port: 15061, targetPort: 29094, protocol: http }]
  instances: [{ name: pacs-1, address: 127.0.0.61, appAddress: 127.0.0.61 }]
  upstreams: [{ service: kafka, port: kafka, localPort: 9092 }]
`,
    );
    expect(checkManifestSet(parse(kafka(threeBrokers), pacs)).map((p) => p.code)).toEqual(['CONFLICT']);
  });
});
