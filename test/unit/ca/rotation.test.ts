import { X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CertificateAuthority,
  RotationScheduler,
  rotationDelayMs,
  type Timers,
  type WorkloadCert,
  type WorkloadId,
} from '../../../src/ca/index.ts';
import { fixedClock, tempDir } from './helpers.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

describe('rotationDelayMs', () => {
  const cert = { notBefore: new Date('2030-01-01T00:00:00Z'), notAfter: new Date('2030-01-02T00:00:00Z') };

  it('stays within 50–80 % of the lifetime', () => {
    expect(rotationDelayMs(cert, () => 0, cert.notBefore)).toBe(0.5 * DAY);
    expect(rotationDelayMs(cert, () => 1, cert.notBefore)).toBe(0.8 * DAY);
    for (const r of [0.1, 0.37, 0.5, 0.99]) {
      const d = rotationDelayMs(cert, () => r, cert.notBefore);
      expect(d).toBeGreaterThanOrEqual(0.5 * DAY);
      expect(d).toBeLessThanOrEqual(0.8 * DAY);
    }
  });

  it('subtracts the time already elapsed and never goes negative', () => {
    const sixHoursIn = new Date(cert.notBefore.getTime() + 6 * HOUR);
    expect(rotationDelayMs(cert, () => 0, sixHoursIn)).toBe(6 * HOUR);
    expect(rotationDelayMs(cert, () => 1, cert.notAfter)).toBe(0);
  });

  it('clamps a misbehaving random source into range', () => {
    expect(rotationDelayMs(cert, () => 7, cert.notBefore)).toBe(0.8 * DAY);
    expect(rotationDelayMs(cert, () => -1, cert.notBefore)).toBe(0.5 * DAY);
  });
});

/** Timers driven by a shared fake clock: `advance` fires what falls due, in order. */
function fakeTimers(clock: ReturnType<typeof fixedClock>) {
  let seq = 0;
  const pending = new Map<number, { at: number; fn: () => void }>();
  const timers: Timers = {
    setTimeout: (fn, ms) => {
      pending.set(++seq, { at: clock.now().getTime() + ms, fn });
      return seq;
    },
    clearTimeout: (h) => void pending.delete(h as number),
  };
  const advance = (ms: number): void => {
    const end = clock.now().getTime() + ms;
    for (;;) {
      const next = [...pending.entries()].sort((a, b) => a[1].at - b[1].at)[0];
      if (!next || next[1].at > end) break;
      pending.delete(next[0]);
      clock.advance(next[1].at - clock.now().getTime());
      next[1].fn();
    }
    clock.advance(end - clock.now().getTime());
  };
  return {
    timers,
    advance,
    pending: () => pending.size,
    delays: () => [...pending.values()].map((p) => p.at - clock.now().getTime()),
  };
}

describe('RotationScheduler', () => {
  const tmp = tempDir();
  const clock = fixedClock('2030-01-01T00:00:00Z');
  let ca: CertificateAuthority;
  const his: WorkloadId = { namespace: 'clinical', service: 'his' };
  const emr: WorkloadId = { namespace: 'clinical', service: 'emr' };
  beforeAll(async () => {
    const opened = await CertificateAuthority.open({
      dir: `${tmp.dir}/ca`,
      trustDomain: 'clinic.example',
      now: clock.now,
    });
    if (!opened.ok) throw new Error('open failed');
    ca = opened.value;
  });
  afterAll(tmp.cleanup);

  function scheduler(random = () => 0.5) {
    const fake = fakeTimers(clock);
    const rotated: [string, WorkloadCert][] = [];
    const errors: unknown[] = [];
    const s = new RotationScheduler({
      issue: (id) => ca.issueWorkload(id),
      onRotate: (id, cert) => void rotated.push([id.service, cert]),
      onError: (_id, e) => void errors.push(e),
      now: clock.now,
      random,
      timers: fake.timers,
    });
    return { s, fake, rotated, errors };
  }

  it('re-issues each workload at its jittered point, then again for the new certificate', () => {
    const { s, fake, rotated } = scheduler();
    const first = ca.issueWorkload(his);
    s.track(his, first);
    const due = rotationDelayMs(first, () => 0.5, clock.now());
    expect(s.dueAt(his)?.getTime()).toBe(clock.now().getTime() + due);
    fake.advance(due - 1);
    expect(rotated).toEqual([]);
    fake.advance(1);
    expect(rotated.map(([svc]) => svc)).toEqual(['his']);
    const second = rotated[0]![1];
    expect(second.serial).not.toBe(first.serial);
    expect(second.notAfter.getTime()).toBeGreaterThan(first.notAfter.getTime());
    fake.advance(DAY);
    expect(rotated).toHaveLength(2);
    expect(rotated.at(-1)![1].notBefore.getTime()).toBeLessThanOrEqual(clock.now().getTime());
    expect(rotated.at(-1)![1].notAfter.getTime()).toBeGreaterThan(clock.now().getTime());
    s.stopAll();
  });

  it('spreads workloads issued together over the 50–80 % window', () => {
    let i = 0;
    const randoms = [0, 1];
    const { s, fake } = scheduler(() => randoms[i++ % 2]!);
    s.track(his, ca.issueWorkload(his));
    s.track(emr, ca.issueWorkload(emr));
    const lifetime = DAY + 60_000; // includes the backdating for clock skew
    const elapsed = 60_000;
    expect(fake.delays().sort((a, b) => a - b)).toEqual([0.5 * lifetime - elapsed, 0.8 * lifetime - elapsed]);
    s.stopAll();
  });

  it('stops rotating a cancelled workload, and stops everything on stopAll', () => {
    const { s, fake, rotated } = scheduler();
    s.track(his, ca.issueWorkload(his));
    s.track(emr, ca.issueWorkload(emr));
    s.cancel(his);
    expect(s.size).toBe(1);
    fake.advance(DAY);
    expect(rotated.map(([svc]) => svc)).toEqual(['emr']);
    s.stopAll();
    expect(fake.pending()).toBe(0);
    fake.advance(DAY);
    expect(rotated).toHaveLength(1);
  });

  it('retries when issuing fails, and reports the error', () => {
    const fake = fakeTimers(clock);
    let fail = true;
    const rotated: WorkloadCert[] = [];
    const errors: unknown[] = [];
    const s = new RotationScheduler({
      issue: (id) => {
        if (fail) throw new Error('disk on fire');
        return ca.issueWorkload(id);
      },
      onRotate: (_id, c) => void rotated.push(c),
      onError: (_id, e) => void errors.push(e),
      now: clock.now,
      random: () => 0,
      timers: fake.timers,
      retryMs: 1000,
    });
    const cert = ca.issueWorkload(his);
    s.track(his, cert);
    fake.advance(rotationDelayMs(cert, () => 0, clock.now()));
    expect(errors).toEqual([new Error('disk on fire')]);
    expect(rotated).toEqual([]);
    fail = false;
    fake.advance(999);
    expect(rotated).toEqual([]);
    fake.advance(1);
    expect(rotated).toHaveLength(1);
    s.stopAll();
  });

  it('re-issues everyone within a spread after a root rotation begins', () => {
    const { s, fake, rotated } = scheduler(() => 0.25);
    s.track(his, ca.issueWorkload(his));
    s.track(emr, ca.issueWorkload(emr));
    ca.beginRootRotation();
    s.rotateAll(60_000);
    fake.advance(15_000);
    expect(rotated.map(([svc]) => svc).sort()).toEqual(['emr', 'his']);
    const newRoot = new X509Certificate(ca.trustBundle()[0]!);
    expect(rotated.every(([, c]) => new X509Certificate(c.certChainPem).verify(newRoot.publicKey))).toBe(
      true,
    );
    s.stopAll();
    ca.completeRootRotation();
  });

  it('waits in steps when a lifetime is longer than a timer can hold', () => {
    const { s, fake, rotated } = scheduler(() => 0);
    const long = ca.issueWorkload(his, { ttlMs: 100 * DAY });
    s.track(his, long);
    expect(Math.max(...fake.delays())).toBeLessThanOrEqual(2 ** 31 - 1);
    fake.advance(49 * DAY);
    expect(rotated).toEqual([]);
    fake.advance(2 * DAY);
    // first rotation at half of the 100-day lifetime; the replacement (default TTL) was issued then
    const halfway = long.notBefore.getTime() + (long.notAfter.getTime() - long.notBefore.getTime()) / 2;
    const reissuedAt = rotated[0]![1].notBefore.getTime() + 60_000; // leaves are backdated a minute
    expect(Math.abs(reissuedAt - halfway)).toBeLessThan(1000);
    s.stopAll();
  });
});
