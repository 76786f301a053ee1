// ExternalService manifests (egress to partners outside the mesh) and the Services that call them:
// what is read, what is refused and where (file:line, field), and the checks across documents.
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkManifestChange } from '../../../src/manifest/check-change.ts';
import {
  checkManifestSet,
  manifestId,
  parseManifestText,
  type ExternalService,
  type Manifest,
  type Service,
} from '../../../src/manifest/index.ts';
import { makeTestCa } from '../../helpers/partner-tls.ts';
import { brief, errorsOf, lineOf, service, valueOf } from './helpers.ts';

const external = (spec: string, name = 'reference-lab'): string => `apiVersion: clinimesh.io/v1alpha1
kind: ExternalService
metadata: { name: ${name}, namespace: clinical }
spec:
${spec}`;

const LAB = external(`  endpoints: [{ address: Lab.Example.org, port: 443 }]
  protocol: http
  tls: { mode: ORIGINATE, caFile: /etc/clinimesh/partner-ca.pem }
`);

const emr = (upstreams: string) =>
  service(
    'emr',
    `  ports: [{ name: http, port: 15011, protocol: http }]
  instances: [{ name: emr-1, address: 127.0.0.21 }]
  upstreams:
${upstreams}`,
  );

function parse(...texts: string[]): Manifest[] {
  return texts.flatMap((t, i) => valueOf(parseManifestText(t, `f${i}.yaml`)));
}

const problemsOf = (text: string) => errorsOf(parseManifestText(text, 'ext.yaml')).map(brief);

describe('ExternalService parsing', () => {
  it('reads endpoints, protocol and TLS, verifying the one host name the endpoints share by default', () => {
    const [lab] = parse(LAB) as ExternalService[];
    const { origin, ...rest } = lab!;
    expect(origin.file).toBe('f0.yaml');
    expect(rest).toEqual({
      kind: 'ExternalService',
      name: 'reference-lab',
      namespace: 'clinical',
      endpoints: [{ address: 'lab.example.org', port: 443 }],
      protocol: 'http',
      tls: {
        mode: 'ORIGINATE',
        sni: 'lab.example.org',
        caFile: '/etc/clinimesh/partner-ca.pem',
        subjectAltNames: ['lab.example.org'],
      },
    });
  });

  it('verifies IP endpoints by the names given, and sends no SNI without one', () => {
    const [e] = parse(
      external(`  endpoints: [{ address: 10.1.2.3, port: 2575 }, { address: 10.1.2.4, port: 2575 }]
  protocol: tcp
  tls: { mode: ORIGINATE, subjectAltNames: [hl7.partner.example, 10.1.2.3] }
`),
    ) as ExternalService[];
    expect(e?.tls).toEqual({ mode: 'ORIGINATE', subjectAltNames: ['hl7.partner.example', '10.1.2.3'] });
  });

  it('refuses ORIGINATE with nothing to verify the partner by, at spec.tls', () => {
    const text = external(`  endpoints: [{ address: 10.1.2.3, port: 443 }]
  protocol: http
  tls: { mode: ORIGINATE }
`);
    expect(problemsOf(text)).toEqual([{ code: 'SCHEMA', field: 'spec.tls', line: lineOf(text, 'tls:') }]);
  });

  it('refuses plaintext unless allowed with a reason, and allows it then', () => {
    const bare = external(`  endpoints: [{ address: hl7.partner.example, port: 2575 }]
  protocol: tcp
  tls: { mode: NONE }
`);
    expect(problemsOf(bare)).toEqual([
      { code: 'SCHEMA', field: 'spec.tls.mode', line: lineOf(bare, 'mode: NONE') },
    ]);
    const noReason = `${bare}  allowPlaintext: true\n`;
    expect(problemsOf(noReason).map((p) => p.field)).toEqual(['spec.tls.mode']);
    const allowed = `${noReason}  plaintextReason: private link to the lab, TLS terminated by the carrier\n`;
    const [e] = parse(allowed) as ExternalService[];
    expect(e?.tls).toEqual({ mode: 'NONE' });
    expect(e?.plaintextReason).toMatch(/private link/);
  });

  it('are held to the same rules when built in code (plaintext without a reason, nothing to verify)', () => {
    const [lab] = parse(LAB) as ExternalService[];
    const plaintext: ExternalService = { ...lab!, tls: { mode: 'NONE' } };
    const unverified: ExternalService = {
      ...lab!,
      name: 'other-lab',
      tls: { mode: 'ORIGINATE', subjectAltNames: [] },
    };
    expect(checkManifestSet([plaintext]).map((p) => [p.code, p.field])).toEqual([
      ['SCHEMA', 'spec.tls.mode'],
    ]);
    expect(checkManifestSet([unverified]).map((p) => [p.code, p.field])).toEqual([['SCHEMA', 'spec.tls']]);
    expect(checkManifestChange([unverified], ['ExternalService clinical/other-lab'])).toHaveLength(1);
  });

  it('takes the partner CA inline (caCertificates), so no sidecar depends on a file being there', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clinimesh-ext-ca-'));
    try {
      const pem = await readFile((await makeTestCa(dir, 'lab')).certFile, 'utf8');
      const block = pem.trim().replace(/\n/g, '\n      ');
      const [e] = parse(
        external(`  endpoints: [{ address: lab.example.org, port: 443 }]
  protocol: http
  tls:
    mode: ORIGINATE
    caCertificates: |
      ${block}
`),
      ) as ExternalService[];
      expect(e?.tls).toMatchObject({ mode: 'ORIGINATE', caCertificates: `${pem.trim()}\n` });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses an inline CA that holds no certificate, a private key, or comes with caFile', () => {
    const text = (ca: string, extra = '') =>
      external(`  endpoints: [{ address: lab.example.org, port: 443 }]
  protocol: http
  tls:
    mode: ORIGINATE${extra}
    caCertificates: |
      ${ca}
`);
    // A key made now (none is committed), indented as the block scalar holds it.
    const key = (
      generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
        type: 'pkcs8',
        format: 'pem',
      }) as string
    )
      .trim()
      .replace(/\n/g, '\n      ');
    for (const [what, t] of [
      ['no certificate', text('not a certificate')],
      ['a key', text(key)],
      [
        'a broken certificate',
        text('-----BEGIN CERTIFICATE-----\n      AAAA\n      -----END CERTIFICATE-----'),
      ],
    ] as const) {
      const problems = problemsOf(t);
      expect(
        problems.map((p) => [p.field, p.line]),
        what,
      ).toEqual([['spec.tls.caCertificates', lineOf(t, 'caCertificates')]]);
    }
    expect(problemsOf(text('x', '\n    caFile: /etc/ca.pem')).map((p) => p.field)).toContain(
      'spec.tls.caCertificates',
    );
    expect(errorsOf(parseManifestText(text(key), 'ext.yaml'))[0]?.message).toContain('private key');
  });

  it('reports every bad field with its line, and a did-you-mean for a misspelt one', () => {
    const text = external(`  endpoints:
    - { address: "lab example", port: 443 }
    - { address: lab.example.org, port: 70000 }
    - { address: lab.example.org, port: 443 }
    - { address: lab.example.org, port: 443 }
  protocol: https
  tls: { mode: ORIGINATE, sni: 10.0.0.1, caFil: /x.pem }
  allowPlaintext: true
`);
    const problems = errorsOf(parseManifestText(text, 'ext.yaml'));
    expect(problems.map(brief)).toEqual(
      expect.arrayContaining([
        { code: 'SCHEMA', field: 'spec.endpoints[0].address', line: lineOf(text, 'lab example') },
        { code: 'SCHEMA', field: 'spec.endpoints[1].port', line: lineOf(text, '70000') },
        { code: 'DUPLICATE', field: 'spec.endpoints[3].address', line: lineOf(text, 'port: 443 }', 3) },
        { code: 'SCHEMA', field: 'spec.protocol', line: lineOf(text, 'https') },
        { code: 'SCHEMA', field: 'spec.tls.sni', line: lineOf(text, 'sni:') },
        { code: 'SCHEMA', field: 'spec.tls.caFil', line: lineOf(text, 'caFil') },
        { code: 'SCHEMA', field: 'spec.allowPlaintext', line: lineOf(text, 'allowPlaintext') },
      ]),
    );
    expect(problems.find((p) => p.field === 'spec.tls.caFil')?.message).toContain('"caFile"');
    expect(problems.every((p) => p.pos?.file === 'ext.yaml')).toBe(true);
    expect(problems.every((p) => p.resource === 'ExternalService clinical/reference-lab')).toBe(true);
  });
});

describe('Services calling an ExternalService', () => {
  it('read `external` entries beside service ones, in the Service namespace by default', () => {
    const [, s] = parse(LAB, emr('    - { external: reference-lab, localPort: 9101 }\n')) as [
      ExternalService,
      Service,
    ];
    expect(s.upstreams).toEqual([{ external: 'reference-lab', namespace: 'clinical', localPort: 9101 }]);
  });

  it('refuses a port on an external entry, at its field', () => {
    const text = emr('    - { external: reference-lab, port: http, localPort: 9101 }\n');
    expect(problemsOf(text)).toEqual([
      { code: 'SCHEMA', field: 'spec.upstreams[0].port', line: lineOf(text, 'external:') },
    ]);
  });

  it('must name an ExternalService of the set, with a did-you-mean', () => {
    const text = emr('    - { external: reference-lb, localPort: 9101 }\n');
    const problems = checkManifestSet(parse(LAB, text));
    expect(problems.map(brief)).toEqual([
      { code: 'REFERENCE', field: 'spec.upstreams[0].external', line: lineOf(text, 'reference-lb') },
    ]);
    expect(problems[0]?.message).toContain('"reference-lab"');
  });

  it('share local ports with the service upstreams (one socket each)', () => {
    const text = emr(
      '    - { service: emr, port: http, localPort: 9101 }\n    - { external: reference-lab, localPort: 9101 }\n',
    );
    const codes = problemsOf(text);
    expect(codes).toContainEqual({
      code: 'DUPLICATE',
      field: 'spec.upstreams[1].localPort',
      line: lineOf(text, 'external:'),
    });
  });

  it('are reported when the ExternalService they name is removed, by the change check too', () => {
    const caller = emr('    - { external: reference-lab, localPort: 9101 }\n');
    const before = parse(LAB, caller);
    expect(checkManifestSet(before)).toEqual([]);
    const after = before.filter((m) => m.kind !== 'ExternalService');
    const full = checkManifestSet(after);
    expect(full.map(brief)).toEqual([
      { code: 'REFERENCE', field: 'spec.upstreams[0].external', line: lineOf(caller, 'external:') },
    ]);
    const previous = new Map(before.map((m) => [manifestId(m), m]));
    const touched = ['ExternalService clinical/reference-lab'];
    expect(checkManifestChange(after, touched, previous)).toEqual(full);
    expect(checkManifestChange(after, touched)).toEqual(full);
  });
});
