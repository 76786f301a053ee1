// The double's test controls for time and outages: TTL checks and sessions run on a clock tests move,
// a stopped double expires nothing and resets session TTLs when it comes back (as a new Consul leader
// does), while a hung one keeps expiring them (the servers live on, only the client is cut off).
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConsulDouble } from '../../consul-double/server.ts';
import { rawConsul } from './raw-http.ts';

describe('the Consul double clock and outages', () => {
  let double: ConsulDouble;
  const consul = () => rawConsul(double.address);
  const exists = async (id: string) =>
    (await consul().get(`/v1/session/info/${id}`)).json<unknown[]>().length === 1;
  async function session(body: object): Promise<string> {
    return (await consul().put('/v1/session/create', body)).json<{ ID: string }>().ID;
  }

  beforeEach(async () => {
    double = await ConsulDouble.start({ sessionTtlMinMs: 1_000, manualClock: true });
  });
  afterEach(() => double.stop());

  it('expires a TTL check when the clock passes its TTL', async () => {
    double.registerService({
      ID: 'his-1',
      Name: 'his',
      Check: { CheckID: 'his-ttl', TTL: '10m', Status: 'passing' },
    });
    double.advanceClock(9 * 60_000);
    expect(double.state.findCheck(double.node, 'his-ttl')?.status).toBe('passing');
    double.advanceClock(60_001);
    expect(double.state.findCheck(double.node, 'his-ttl')?.status).toBe('critical');
  });

  it('accepts TTLs down to sessionTtlMinMs and expires them at exactly 2 × TTL', async () => {
    const id = await session({ TTL: '1s' });
    double.advanceClock(1_999);
    expect(await exists(id)).toBe(true);
    double.advanceClock(1);
    expect(await exists(id)).toBe(false);
  });

  it('expires nothing while stopped, and gives every session a fresh TTL when it starts again', async () => {
    const id = await session({ TTL: '10s' });
    await double.stop();
    double.advanceClock(60_000);
    await double.start();
    expect(await exists(id)).toBe(true);
    double.advanceClock(19_999);
    expect(await exists(id)).toBe(true);
    double.advanceClock(1);
    expect(await exists(id)).toBe(false);
  });

  it('keeps expiring sessions while hung, and answers again on resume', async () => {
    const id = await session({ TTL: '10s' });
    await double.pause('hang');
    double.advanceClock(20_000);
    await double.resume();
    expect(await exists(id)).toBe(false);
    expect(double.sessions.sessions.size).toBe(0);
  });
});
