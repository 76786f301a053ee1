// Where the double used to depart from Consul, held to the contract against both targets: only TTL
// checks take pass/warn/fail/update, DeregisterCriticalServiceAfter reaps the service, open-source
// Consul refuses namespaces with 400, and an unknown route is a 404.
import { expect, it } from 'vitest';
import { waitFor } from '../../helpers/wait.ts';
import { uniqueName } from './helpers.ts';
import { rawConsul } from './raw-http.ts';
import { contractSuite, elapse } from './targets.ts';

contractSuite('Consul agent contract', (target) => {
  const consul = () => rawConsul(target().address, target().token);

  async function register(body: Record<string, unknown>): Promise<void> {
    const res = await consul().put('/v1/agent/service/register', body);
    expect(res.status, res.text).toBe(200);
  }
  const deregister = (id: string) => consul().put(`/v1/agent/service/deregister/${id}`);

  it('lets only a TTL check be set through pass/warn/fail/update', async () => {
    const svc = uniqueName('his');
    await register({
      ID: `${svc}-1`,
      Name: svc,
      Port: 1,
      Checks: [
        { CheckID: `${svc}-http`, HTTP: 'http://127.0.0.1:1/healthz', Interval: '10s' },
        { CheckID: `${svc}-ttl`, TTL: '10m' },
      ],
    });
    try {
      for (const verb of ['pass', 'warn', 'fail']) {
        const res = await consul().put(`/v1/agent/check/${verb}/${svc}-http`);
        expect([res.status, res.text]).toEqual([500, `CheckID "${svc}-http" does not have associated TTL`]);
      }
      const update = await consul().put(`/v1/agent/check/update/${svc}-http`, { Status: 'passing' });
      expect(update.status).toBe(500);
      expect((await consul().put(`/v1/agent/check/pass/${svc}-ttl`)).status).toBe(200);
      expect((await consul().put(`/v1/agent/check/update/${svc}-ttl`, { Status: 'warning' })).status).toBe(
        200,
      );
      const unknown = await consul().put(`/v1/agent/check/pass/${svc}-nope`);
      expect(unknown.status).toBe(404);
      const health = (await consul().get(`/v1/health/service/${svc}`)).json<
        Array<{ Checks: Array<{ CheckID: string; Status: string }> }>
      >();
      const statuses = Object.fromEntries(health[0]!.Checks.map((c) => [c.CheckID, c.Status]));
      expect(statuses[`${svc}-ttl`]).toBe('warning');
      expect(statuses[`${svc}-http`]).toBe('critical');
    } finally {
      await deregister(`${svc}-1`);
    }
  });

  it('removes a service whose check stays critical past DeregisterCriticalServiceAfter', async () => {
    const svc = uniqueName('his');
    await register({
      ID: `${svc}-doomed`,
      Name: svc,
      Port: 1,
      Check: {
        CheckID: `${svc}-doomed-ttl`,
        TTL: '10m',
        Status: 'critical',
        DeregisterCriticalServiceAfter: '1m',
      },
    });
    await register({
      ID: `${svc}-kept`,
      Name: svc,
      Port: 2,
      Check: {
        CheckID: `${svc}-kept-ttl`,
        TTL: '10m',
        Status: 'passing',
        DeregisterCriticalServiceAfter: '1m',
      },
    });
    try {
      const ids = async () =>
        (await consul().get(`/v1/catalog/service/${svc}`))
          .json<Array<{ ServiceID: string }>>()
          .map((s) => s.ServiceID);
      expect(await ids()).toEqual([`${svc}-doomed`, `${svc}-kept`]);
      await elapse(target(), 30_000);
      expect(await ids()).toEqual([`${svc}-doomed`, `${svc}-kept`]);
      await elapse(target(), 31_000);
      // A real agent reaps every 30 s; the double at the deadline.
      await waitFor(async () => (await ids()).length === 1, {
        what: 'the reap',
        timeoutMs: 90_000,
        intervalMs: 500,
      });
      expect(await ids()).toEqual([`${svc}-kept`]);
    } finally {
      await deregister(`${svc}-doomed`);
      await deregister(`${svc}-kept`);
    }
  }, 150_000);

  it('refuses namespaces and partitions as open-source Consul does', async () => {
    const byQuery = await consul().get('/v1/health/service/consul?ns=clinical');
    expect([byQuery.status, byQuery.text]).toEqual([
      400,
      'Invalid query parameter: "ns" - Namespaces are a Consul Enterprise feature',
    ]);
    const byHeader = await consul().request('GET', '/v1/catalog/services', undefined, {
      headers: { 'x-consul-namespace': 'clinical' },
    });
    expect([byHeader.status, byHeader.text]).toEqual([
      400,
      'Invalid header: "X-Consul-Namespace" - Namespaces are a Consul Enterprise feature',
    ]);
    expect((await consul().get('/v1/kv/anything?ns=clinical')).status).toBe(400);
    expect((await consul().get('/v1/catalog/services?partition=p1')).status).toBe(400);
  });

  it('answers an unknown route with 404, and a known route with the wrong method with 405', async () => {
    expect((await consul().get('/v1/agent/no-such-endpoint')).status).toBe(404);
    expect((await consul().put('/v1/no/such/thing')).status).toBe(404);
    expect((await consul().get('/v1/agent/service/register')).status).toBe(405);
  });
});
