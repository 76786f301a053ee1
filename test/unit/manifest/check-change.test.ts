// Checking a change costs what it touches and reports what the whole-set check reports: over random
// edit sequences from a valid set (services added, changed and removed, sockets shared, policies
// naming services that come and go, instances edited in place), the problems of checkManifestChange
// equal those of checkManifestSet on the new set, with and without the set before the change.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkManifestChange } from '../../../src/manifest/check-change.ts';
import { checkManifestSet, parseManifestText } from '../../../src/manifest/index.ts';
import { manifestId, type Manifest } from '../../../src/manifest/types.ts';
import { deletedBy, edit, instanceEdited, manifestOf, seedServices } from '../plan/mesh-edits.ts';

const canonical = (m: Manifest) => JSON.stringify(m, (k, v: unknown) => (k === 'origin' ? undefined : v));
const sorted = (problems: readonly unknown[]) => problems.map((p) => JSON.stringify(p)).sort();

describe('checkManifestChange', () => {
  it('reports the same problems as checking the whole set, over random edit sequences', () => {
    let rejected = 0;
    let accepted = 0;
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 20 }), (random) => {
        let current = new Map<string, Manifest>();
        for (const e of [...seedServices(), ...random]) {
          const next = new Map(current);
          const m = e.op === 'instance' ? instanceEdited(e, [...current.values()]) : manifestOf(e);
          const gone = deletedBy(e);
          if (m) next.set(manifestId(m), m);
          else if (gone) next.delete(manifestId(gone));
          else continue;
          const touched = [...new Set([...current.keys(), ...next.keys()])].filter((id) => {
            const a = current.get(id);
            const b = next.get(id);
            return !a || !b || canonical(a) !== canonical(b);
          });
          const full = checkManifestSet([...next.values()]);
          expect(sorted(checkManifestChange([...next.values()], touched))).toEqual(sorted(full));
          expect(sorted(checkManifestChange([...next.values()], touched, current))).toEqual(sorted(full));
          // Only a set without problems is committed, as the store does.
          if (full.length === 0) {
            current = next;
            accepted++;
          } else rejected++;
        }
      }),
      { numRuns: 300 },
    );
    // Both outcomes must be exercised for the comparison to mean anything.
    expect(rejected).toBeGreaterThan(100);
    expect(accepted).toBeGreaterThan(300);
  });

  it('reports the same Consul name conflicts as checking the whole set, over random edits across namespaces', () => {
    const namespaces = ['clinical', 'lab'] as const;
    const names = ['his', 'lis'] as const;
    const consulEdit = fc.record({
      ns: fc.integer({ min: 0, max: 1 }),
      name: fc.integer({ min: 0, max: 1 }),
      remove: fc.boolean(),
      mode: fc.constantFrom('static', 'consul'),
      register: fc.boolean(),
      consulName: fc.constantFrom(undefined, 'his', 'HIS', 'lis', 'pacs'),
    });
    function serviceOf(e: {
      ns: number;
      name: number;
      mode: string;
      register: boolean;
      consulName: string | undefined;
    }): Manifest {
      const address = `127.0.${e.ns + 1}.${e.name + 1}`;
      const text = `apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: ${names[e.name]}, namespace: ${namespaces[e.ns]} }
spec:
  ports: [{ name: http, port: 15001, targetPort: 8080, protocol: http }]
  discovery: { mode: ${e.mode}, register: ${e.register}${e.consulName ? `, consulName: ${e.consulName}` : ''} }
  instances: [{ name: x-1, address: ${address}, appAddress: ${address} }]
`;
      const parsed = parseManifestText(text, 'edit.yaml');
      if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
      return parsed.value[0]!;
    }
    let rejected = 0;
    fc.assert(
      fc.property(fc.array(consulEdit, { minLength: 1, maxLength: 15 }), (edits) => {
        let current = new Map<string, Manifest>();
        for (const e of edits) {
          const m = serviceOf(e);
          const id = manifestId(m);
          const next = new Map(current);
          if (e.remove) next.delete(id);
          else next.set(id, m);
          const full = checkManifestSet([...next.values()]);
          expect(sorted(checkManifestChange([...next.values()], [id]))).toEqual(sorted(full));
          expect(sorted(checkManifestChange([...next.values()], [id], current))).toEqual(sorted(full));
          if (full.length === 0) current = next;
          else rejected++;
        }
      }),
      { numRuns: 200 },
    );
    expect(rejected).toBeGreaterThan(20);
  });

  it('checks nothing when nothing changed', () => {
    expect(checkManifestChange([], [])).toEqual([]);
  });
});
