// One contract, two Consuls: every case drives the target only through Consul's HTTP API and watches it
// with the real ConsulWatcher, so the double is held to what a real agent does.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConsulWatcher } from '../../../src/discovery/consul.ts';
import { consulDefaultAclPolicy } from '../../../src/consul/acl-policy.ts';
import type { ConsulHttp } from '../../../src/consul/http.ts';
import { ConsulRegistrar, registrationId } from '../../../src/discovery/consul-register.ts';
import type { Service } from '../../../src/manifest/types.ts';
import { waitFor } from '../../helpers/wait.ts';
import { clientFor, RecordingSink, uniqueName } from './helpers.ts';
import type { ConsulTarget } from './targets.ts';
import { realConsulUnavailable, startDoubleTarget, startRealTarget } from './targets.ts';

const FAST = { waitMs: 10_000, rateLimit: { burst: 5, refillMs: 100 }, backoff: { baseMs: 50, maxMs: 500 } };

interface TtlInstance {
  id: string;
  address?: string;
  port: number;
  tags?: string[];
  meta?: Record<string, string>;
  weights?: { Passing: number; Warning: number };
  status?: 'passing' | 'warning' | 'critical';
}

function consulContract(name: string, makeTarget: () => Promise<ConsulTarget>): void {
  describe(`Consul contract: ${name}`, () => {
    let target: ConsulTarget;
    let admin: ConsulHttp;
    const cleanups: Array<() => Promise<unknown>> = [];

    beforeAll(async () => {
      target = await makeTarget();
      admin = await clientFor(target.address, target.token);
    });
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
    });
    afterAll(async () => {
      admin?.close();
      await target?.close();
    });

    async function watch(consulName: string, token = target.token) {
      const client = await clientFor(target.address, token);
      const sink = new RecordingSink();
      const watcher = new ConsulWatcher({ client, sink, ...FAST });
      cleanups.push(async () => {
        await watcher.stop();
        client.close();
      });
      watcher.watch('his.clinical', consulName, 'http');
      return { watcher, sink };
    }

    async function registerTtl(service: string, i: TtlInstance): Promise<void> {
      await admin.put('/agent/service/register', {
        ID: i.id,
        Name: service,
        Port: i.port,
        ...(i.address ? { Address: i.address } : {}),
        ...(i.tags ? { Tags: i.tags } : {}),
        ...(i.meta ? { Meta: i.meta } : {}),
        ...(i.weights ? { Weights: i.weights } : {}),
        Check: { CheckID: `check-${i.id}`, Name: 'ttl', TTL: '10m', Status: i.status ?? 'passing' },
      });
      cleanups.push(() => admin.put(`/agent/service/deregister/${encodeURIComponent(i.id)}`));
    }

    const setCheck = (id: string, verb: 'pass' | 'warn' | 'fail') =>
      admin.put(`/agent/check/${verb}/check-${encodeURIComponent(id)}`);

    it('emits a registered instance with its address, port, locality, weight, tags and meta', async () => {
      const svc = uniqueName('his');
      await registerTtl(svc, {
        id: `${svc}-1`,
        address: '127.0.10.5',
        port: 15001,
        tags: ['v1', 'primary'],
        meta: { region: 'eu-west', zone: 'eu-west-1a', team: 'emr' },
        weights: { Passing: 5, Warning: 2 },
      });
      const { sink } = await watch(svc);
      const e = await waitFor(async () => sink.endpoint('his.clinical', `${svc}-1`), {
        what: 'the instance to be emitted',
      });
      expect(e).toEqual({
        instance: `${svc}-1`,
        address: '127.0.10.5',
        ports: { http: 15001 },
        health: 'HEALTHY',
        locality: { region: 'eu-west', zone: 'eu-west-1a' },
        weight: 5,
        tags: ['v1', 'primary'],
        meta: { region: 'eu-west', team: 'emr', zone: 'eu-west-1a' },
      });
      expect(sink.last('his.clinical')?.source).toBe('consul');
    });

    it("falls back to the node's address and to the datacenter as region", async () => {
      const svc = uniqueName('his');
      await registerTtl(svc, { id: `${svc}-1`, port: 15002 });
      const { sink } = await watch(svc);
      const e = await waitFor(async () => sink.endpoint('his.clinical', `${svc}-1`), {
        what: 'the instance to be emitted',
      });
      // What the agent itself reports for its node (an external Consul need not be on loopback).
      const raw = (await admin.get(`/health/service/${svc}`)).body as Array<{
        Node: Record<string, string>;
        Service: Record<string, unknown>;
      }>;
      expect(raw[0]!.Service).toMatchObject({ Address: '' });
      expect(e.address).toBe(raw[0]!.Node.Address);
      expect(e.locality).toEqual({ region: raw[0]!.Node.Datacenter });
      expect(e.weight).toBe(1);
    });

    it('answers a blocking query as soon as the watched service changes', async () => {
      const svc = uniqueName('his');
      await registerTtl(svc, { id: `${svc}-1`, port: 15003 });
      const path = `/health/service/${svc}`;
      const first = await admin.get(path);
      expect(first.index).toBeGreaterThan(0n);
      const started = Date.now();
      const pending = admin.get(path, { index: String(first.index), wait: '30s' }, { timeoutMs: 40_000 });
      if (target.heldQueries)
        await waitFor(async () => target.heldQueries!() > 0, { what: 'the query to be held' });
      await setCheck(`${svc}-1`, 'warn');
      const res = await pending;
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(res.index).toBeGreaterThan(first.index!);
      expect(JSON.stringify(res.body)).toContain('"warning"');
    });

    it('holds a blocking query while nothing changes, then answers with the same index', async () => {
      const svc = uniqueName('his');
      await registerTtl(svc, { id: `${svc}-1`, port: 15004 });
      const path = `/health/service/${svc}`;
      const first = await admin.get(path);
      const started = Date.now();
      const res = await admin.get(path, { index: String(first.index), wait: '1s' }, { timeoutMs: 10_000 });
      const elapsed = Date.now() - started;
      expect(elapsed).toBeGreaterThanOrEqual(900);
      expect(elapsed).toBeLessThan(1_000 + 1_000 / 16 + 2_000);
      expect(res.index).toBe(first.index);
    });

    it('marks an instance with a warning check DEGRADED and weights it by Weights.Warning', async () => {
      const svc = uniqueName('his');
      await registerTtl(svc, { id: `${svc}-1`, port: 15005, weights: { Passing: 10, Warning: 3 } });
      const { sink } = await watch(svc);
      await waitFor(async () => sink.endpoint('his.clinical', `${svc}-1`)?.health === 'HEALTHY', {
        what: 'HEALTHY first',
      });
      await setCheck(`${svc}-1`, 'warn');
      const e = await waitFor(
        async () =>
          sink.endpoint('his.clinical', `${svc}-1`)?.health === 'DEGRADED'
            ? sink.endpoint('his.clinical', `${svc}-1`)
            : undefined,
        { what: 'DEGRADED' },
      );
      expect(e.weight).toBe(3);
    });

    it('marks an instance with a critical check, or in maintenance, UNHEALTHY', async () => {
      const svc = uniqueName('his');
      await registerTtl(svc, { id: `${svc}-1`, port: 15006 });
      await registerTtl(svc, { id: `${svc}-2`, port: 15007 });
      const { sink } = await watch(svc);
      await waitFor(async () => sink.last('his.clinical')?.endpoints.length === 2, {
        what: 'both instances',
      });
      await setCheck(`${svc}-1`, 'fail');
      await admin.put(`/agent/service/maintenance/${svc}-2`, undefined, {
        enable: 'true',
        reason: 'patching',
      });
      await waitFor(async () => sink.last('his.clinical')?.endpoints.every((e) => e.health === 'UNHEALTHY'), {
        what: 'both UNHEALTHY',
      });
      await setCheck(`${svc}-1`, 'pass');
      await admin.put(`/agent/service/maintenance/${svc}-2`, undefined, { enable: 'false' });
      await waitFor(async () => sink.last('his.clinical')?.endpoints.every((e) => e.health === 'HEALTHY'), {
        what: 'both HEALTHY again',
      });
    });

    it('drops a deregistered instance, down to an empty set', async () => {
      const svc = uniqueName('his');
      await registerTtl(svc, { id: `${svc}-1`, port: 15008 });
      await registerTtl(svc, { id: `${svc}-2`, port: 15009 });
      const { sink } = await watch(svc);
      await waitFor(async () => sink.last('his.clinical')?.endpoints.length === 2, {
        what: 'both instances',
      });
      await admin.put(`/agent/service/deregister/${svc}-1`);
      await waitFor(
        async () =>
          sink
            .last('his.clinical')
            ?.endpoints.map((e) => e.instance)
            .join() === `${svc}-2`,
        { what: 'only the second' },
      );
      await admin.put(`/agent/service/deregister/${svc}-2`);
      await waitFor(async () => sink.last('his.clinical')?.endpoints.length === 0, { what: 'an empty set' });
    });

    it('registers manifest instances with clinimesh meta, tag and weight, and removes them on delete', async () => {
      const consulName = uniqueName('his');
      const service: Service = {
        kind: 'Service',
        name: 'his',
        namespace: 'clinical',
        ports: [{ name: 'http', port: 15010, targetPort: 8080, protocol: 'http' }],
        discovery: { mode: 'consul', consulName, register: true },
        instances: [
          {
            name: 'his-1',
            address: '127.0.10.21',
            appAddress: '127.0.0.1',
            locality: { region: 'eu-west', zone: 'eu-west-1b' },
            weight: 3,
            meta: { tier: 'gold' },
          },
        ],
        upstreams: [],
        origin: { file: 'his.yaml' },
      };
      const registrar = new ConsulRegistrar(admin);
      const registered = await registrar.sync(undefined, service);
      expect(registered).toEqual({ ok: true, value: ['his.clinical-his-1'] });
      cleanups.push(() => registrar.deregister(service));
      const { sink } = await watch(consulName);
      const e = await waitFor(async () => sink.endpoint('his.clinical', registrationId(service, 'his-1')), {
        what: 'the registered instance',
      });
      expect(e).toMatchObject({
        address: '127.0.10.21',
        ports: { http: 15010 },
        health: 'HEALTHY',
        weight: 3,
        tags: ['clinimesh'],
        locality: { region: 'eu-west', zone: 'eu-west-1b' },
      });
      expect(e.meta).toMatchObject({ 'clinimesh-instance': 'his-1', namespace: 'clinical', tier: 'gold' });
      expect((await registrar.sync(service, undefined)).ok).toBe(true);
      await waitFor(async () => sink.last('his.clinical')?.endpoints.length === 0, {
        what: 'the instance to be gone',
      });
    });

    it("keeps instances clinimesh registered for another namespace out of this namespace's service", async () => {
      const consulName = uniqueName('his');
      const registered = (namespace: string, name: string, address: string): Service => ({
        kind: 'Service',
        name,
        namespace,
        ports: [{ name: 'http', port: 15031, targetPort: 8031, protocol: 'http' }],
        discovery: { mode: 'static', consulName, register: true },
        instances: [{ name: `${name}-1`, address, appAddress: address, locality: {}, weight: 1, meta: {} }],
        upstreams: [],
        origin: { file: `${name}.yaml` },
      });
      const registrar = new ConsulRegistrar(admin);
      const foreign = registered('lab', 'labsvc', '127.0.66.6');
      const own = registered('clinical', 'his-legacy', '127.0.10.31');
      for (const s of [foreign, own]) {
        expect((await registrar.sync(undefined, s)).ok).toBe(true);
        cleanups.push(() => registrar.deregister(s));
      }
      // Registered by someone else, with a namespace meta of its own: not ours to judge.
      await registerTtl(consulName, { id: `${consulName}-ext`, port: 15032, meta: { namespace: 'lab' } });
      const { sink, watcher } = await watch(consulName);
      const seen = await waitFor(
        async () => {
          const ids = sink.last('his.clinical')?.endpoints.map((e) => e.instance);
          return ids?.includes(`${consulName}-ext`) && ids.includes(registrationId(own, 'his-legacy-1'))
            ? ids
            : undefined;
        },
        { what: "this namespace's instances and the external one" },
      );
      expect(seen).not.toContain(registrationId(foreign, 'labsvc-1'));
      expect(sink.last('his.clinical')?.endpoints.map((e) => e.address)).not.toContain('127.0.66.6');
      expect(watcher.status()[0]?.foreignEntries).toBe(1);
    });

    it('registers the control plane with an HTTP check on /healthz that follows its health', async () => {
      let healthy = true;
      const healthz = createServer((req, res) =>
        res.writeHead(req.url === '/healthz' && healthy ? 200 : 503).end(),
      );
      await new Promise<void>((resolve) => healthz.listen(0, '127.0.0.1', resolve));
      cleanups.push(() => new Promise((resolve) => healthz.close(resolve)));
      const port = (healthz.address() as AddressInfo).port;
      const name = uniqueName('clinimesh');
      const registrar = new ConsulRegistrar(admin);
      const self = {
        id: `${name}-cp`,
        name,
        address: '127.0.0.1',
        port,
        healthzUrl: `http://127.0.0.1:${port}/healthz`,
        intervalMs: 1_000,
        timeoutMs: 1_000,
      };
      expect(await registrar.registerSelf(self)).toEqual({ ok: true, value: self.id });
      cleanups.push(() => registrar.deregisterSelf(self.id));
      const { sink } = await watch(name);
      await waitFor(async () => sink.endpoint('his.clinical', self.id)?.health === 'HEALTHY', {
        what: 'the control plane to pass its check',
      });
      healthy = false;
      await waitFor(async () => sink.endpoint('his.clinical', self.id)?.health === 'UNHEALTHY', {
        what: 'the control plane to fail its check',
      });
    });

    it('names its default ACL policy on every answer: deny when ACLs guard it', async () => {
      expect(await consulDefaultAclPolicy(admin)).toBe(target.aclEnabled ? 'deny' : 'allow');
    });

    it('honours the token: a wrong one gets 403, anonymous sees a filtered view, and neither emits a set', async (ctx) => {
      if (!target.aclEnabled) ctx.skip();
      const svc = uniqueName('his');
      await registerTtl(svc, { id: `${svc}-1`, port: 15011 });
      const wrong = await watch(svc, 'b0b0b0b0-0000-4000-8000-00000000bad1');
      const anonymous = await watch(svc, '');
      await waitFor(async () => wrong.watcher.status()[0]!.consecutiveFailures >= 2, {
        what: 'the wrong token to fail',
      });
      expect(wrong.watcher.status()[0]!.lastError).toMatch(/403/);
      await waitFor(async () => anonymous.watcher.status()[0]!.consecutiveFailures >= 2, {
        what: 'the anonymous view to be refused',
      });
      expect(anonymous.watcher.status()[0]!.lastError).toMatch(/ACL/);
      expect(wrong.sink.sets).toEqual([]);
      expect(anonymous.sink.sets).toEqual([]);
      const denied = await new ConsulRegistrar(
        await clientFor(target.address, 'b0b0b0b0-0000-4000-8000-00000000bad1'),
      ).registerSelf({
        id: `${svc}-x`,
        address: '127.0.0.1',
        port: 1,
        healthzUrl: 'http://127.0.0.1:1/healthz',
      });
      expect(denied.ok ? [] : denied.errors.map((p) => p.code)).toEqual(['CONSUL']);
    });
  });
}

consulContract('in-process double', startDoubleTarget);

const unavailable = realConsulUnavailable();
if (unavailable) {
  console.warn(`[consul contract] skipping the real-Consul run: ${unavailable}`);
  describe.skip('Consul contract: real Consul', () => {
    it('needs CONSUL_HTTP_ADDR or `consul` on PATH', () => {});
  });
} else {
  consulContract('real Consul', startRealTarget);
}
