// The pure pieces behind get/diff: manifests written back as documents read back to the same
// model, and unified diffs in the shape `diff -u` prints.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseManifestText } from '../../../src/manifest/load.ts';
import type { Manifest } from '../../../src/manifest/types.ts';
import { formatDuration, toYaml } from '../../../src/cli/manifest-document.ts';
import { parseKind, parseName } from '../../../src/cli/kinds.ts';
import { unifiedDiff } from '../../../src/cli/unified-diff.ts';

const withoutOrigin = (m: Manifest) =>
  JSON.parse(JSON.stringify(m, (k, v: unknown) => (k === 'origin' ? undefined : v))) as unknown;

describe('manifests written back as documents', () => {
  const dir = 'manifests/examples';
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
    it(`reads ${file} back to the same model`, () => {
      const parsed = parseManifestText(readFileSync(join(dir, file), 'utf8'), file);
      if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
      for (const m of parsed.value) {
        const again = parseManifestText(toYaml(m), 'written.yaml');
        if (!again.ok) throw new Error(JSON.stringify(again.errors));
        expect(again.value.map(withoutOrigin)).toEqual([withoutOrigin(m)]);
      }
    });
  }

  it('reads ExternalServices, and Services calling them, back to the same model', () => {
    const text = `apiVersion: clinimesh.io/v1alpha1
kind: ExternalService
metadata: { name: reference-lab, namespace: clinical }
spec:
  endpoints: [{ address: lab.example.org, port: 443 }, { address: 10.0.0.7, port: 8443 }]
  protocol: http
  tls: { mode: ORIGINATE, sni: lab.example.org, caFile: /etc/ca.pem }
---
apiVersion: clinimesh.io/v1alpha1
kind: ExternalService
metadata: { name: hl7-feed, namespace: clinical }
spec:
  endpoints: [{ address: 10.0.0.9, port: 2575 }]
  protocol: tcp
  tls: { mode: NONE }
  allowPlaintext: true
  plaintextReason: carrier-encrypted private link
---
apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: emr, namespace: clinical }
spec:
  ports: [{ name: http, port: 15011, protocol: http }]
  instances: [{ name: emr-1, address: 127.0.0.21 }]
  upstreams: [{ external: reference-lab, localPort: 9101 }, { external: hl7-feed, localPort: 9102 }]
`;
    const parsed = parseManifestText(text, 'ext.yaml');
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    for (const m of parsed.value) {
      const again = parseManifestText(toYaml(m), 'written.yaml');
      if (!again.ok) throw new Error(JSON.stringify(again.errors));
      expect(again.value.map(withoutOrigin)).toEqual([withoutOrigin(m)]);
    }
  });

  it('writes durations in the largest whole unit', () => {
    expect([0, 250, 2000, 90_000, 120_000].map(formatDuration)).toEqual(['0s', '250ms', '2s', '90s', '2m']);
  });
});

describe('kinds and names as typed', () => {
  it('accepts any case, plural and short forms', () => {
    expect(['ext', 'ExternalServices'].map(parseKind)).toEqual(['ExternalService', 'ExternalService']);
    expect(['svc', 'Services', 'SERVICE', 'accesspolicies', 'AP', 'Mesh'].map(parseKind)).toEqual([
      'Service',
      'Service',
      'Service',
      'AccessPolicy',
      'AccessPolicy',
      'Mesh',
    ]);
  });
  it('refuses an unknown kind and a namespaced Mesh as usage errors', () => {
    expect(() => parseKind('pods')).toThrow(/unknown kind "pods"/);
    expect(() => parseName('Mesh', 'a/b', undefined)).toThrow(/cluster-scoped/);
    expect(() => parseName('Service', 'clinical/his', 'other')).toThrow(/-n says other/);
    expect(parseName('Service', 'his', 'clinical')).toEqual({ namespace: 'clinical', name: 'his' });
  });
});

describe('unified diff', () => {
  it('is empty for equal texts', () => {
    expect(unifiedDiff('a', 'b', 'x\ny\n', 'x\ny\n')).toBe('');
  });
  it('shows removals before additions with three lines of context', () => {
    const from = ['1', '2', '3', '4', '5', '6', '7', '8'].join('\n');
    const to = ['1', '2', '3', '4', 'five', '6', '7', '8'].join('\n');
    expect(unifiedDiff('a', 'b', from, to)).toBe(
      ['--- a', '+++ b', '@@ -2,7 +2,7 @@', ' 2', ' 3', ' 4', '-5', '+five', ' 6', ' 7', ' 8'].join('\n'),
    );
  });
  it('diffs a new document against nothing', () => {
    expect(unifiedDiff('/dev/null', 'b', '', 'x\n')).toBe(
      ['--- /dev/null', '+++ b', '@@ -0,0 +1,1 @@', '+x'].join('\n'),
    );
  });
});
