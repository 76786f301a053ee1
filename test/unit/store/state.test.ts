// The state made from the previous one by redoing what a change touched is the state made whole
// from the new set: over random edit sequences (services, policies, the Mesh, instance edits).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { manifestId, type Manifest } from '../../../src/manifest/types.ts';
import { buildState, nextState, type DesiredState } from '../../../src/store/state.ts';
import { deletedBy, edit, instanceEdited, manifestOf, seedServices } from '../plan/mesh-edits.ts';

/** Services in set order; policy lists by destination (their order within a destination matters). */
function plain(s: DesiredState): unknown {
  const sorted = <V>(m: ReadonlyMap<string, V>) => [...m].sort(([a], [b]) => a.localeCompare(b));
  return {
    revision: s.revision,
    mesh: s.mesh,
    services: [...s.services],
    policies: sorted(s.policies),
    traffic: sorted(s.traffic),
  };
}

describe('nextState', () => {
  it('equals the state built whole from the new set, over random edit sequences', () => {
    let compared = 0;
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 20 }), (random) => {
        let before = new Map<string, Manifest>();
        let state = buildState(0, []);
        for (const e of [...seedServices(), ...random]) {
          const next = new Map(before);
          const m = e.op === 'instance' ? instanceEdited(e, [...before.values()]) : manifestOf(e);
          const gone = deletedBy(e);
          if (m) next.set(manifestId(m), m);
          else if (gone) next.delete(manifestId(gone));
          else continue;
          const touched = [...new Set([...before.keys(), ...next.keys()])].filter(
            (id) => before.get(id) !== next.get(id),
          );
          state = nextState(state, state.revision + 1, before, next, touched);
          expect(plain(state)).toEqual(plain(buildState(state.revision, next.values())));
          before = next;
          compared++;
        }
      }),
      { numRuns: 200 },
    );
    expect(compared).toBeGreaterThan(1000);
  });
});
