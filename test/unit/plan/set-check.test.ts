// The whole-set manifest check gives the same answer on a worker thread as in place.
import { describe, expect, it } from 'vitest';
import { checkInPlace, WorkerSetChecker } from '../../../src/xds/plan/set-check.ts';
import type { Manifest } from '../../../src/manifest/index.ts';
import { meshManifests } from './fixtures.ts';

/** 600 copies of EMR, each its own Service on its own address, plus one that calls a missing upstream. */
function largeSet(): Manifest[] {
  const [his, emr] = meshManifests() as [Manifest, Manifest];
  if (emr.kind !== 'Service') throw new Error('fixture');
  const copies = Array.from({ length: 600 }, (_, i): Manifest => ({
    ...emr,
    name: `emr${i}`,
    instances: emr.instances.map((inst) => ({
      ...inst,
      name: `emr${i}-1`,
      address: `127.1.${i >> 8}.${i & 255}`,
      appAddress: `127.1.${i >> 8}.${i & 255}`,
    })),
  }));
  const broken: Manifest = {
    ...emr,
    name: 'broken',
    instances: [],
    upstreams: [{ ...emr.upstreams[0]!, service: 'nowhere' }],
  };
  return [his, ...copies, broken];
}

describe('manifest set check', () => {
  it('reports the same problems from the worker as in place', async () => {
    const set = largeSet();
    const checker = new WorkerSetChecker();
    try {
      const [inWorker, inPlace] = await Promise.all([checker.check(set), checkInPlace(set)]);
      expect(inPlace.map((p) => p.code)).toContain('REFERENCE');
      expect(inWorker).toEqual(inPlace);
    } finally {
      checker.stop();
    }
  }, 30_000);

  it('lets an idle worker go and starts another for the next large check', async () => {
    const set = largeSet();
    const checker = new WorkerSetChecker(50);
    try {
      const first = await checker.check(set);
      expect(checker.running).toBe(true);
      await expect.poll(() => checker.running, { timeout: 5_000 }).toBe(false);
      expect(await checker.check(set)).toEqual(first);
      expect(checker.running).toBe(true); // on a new worker, not in place
      expect(first.map((p) => p.code)).toContain('REFERENCE');
    } finally {
      checker.stop();
    }
  }, 60_000);
});
