import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConsulHttp } from '../../../src/consul/http.ts';
import {
  ConsulRegistrar,
  registrationsFor,
  selfRegistration,
} from '../../../src/discovery/consul-register.ts';
import type { Instance, Service } from '../../../src/manifest/types.ts';
import { ConsulDouble } from '../../consul-double/server.ts';
import { clientFor } from './helpers.ts';

const instance = (name: string, extra: Partial<Instance> = {}): Instance => ({
  name,
  address: `127.0.40.${name.slice(-1)}`,
  appAddress: '127.0.0.1',
  locality: {},
  weight: 1,
  meta: {},
  ...extra,
});

const his = (instances: readonly Instance[], register = true): Service => ({
  kind: 'Service',
  name: 'his',
  namespace: 'clinical',
  ports: [{ name: 'http', port: 15001, targetPort: 8080, protocol: 'http' }],
  discovery: { mode: 'consul', register },
  instances,
  upstreams: [],
  origin: { file: 'his.yaml' },
});

describe('registration bodies', () => {
  it('registers each instance as <service>.<namespace>-<instance> with clinimesh meta, tag and weights', () => {
    const result = registrationsFor(
      his([
        instance('his-1', { weight: 4, locality: { region: 'eu', zone: 'eu-a' }, meta: { tier: 'gold' } }),
      ]),
    );
    expect(result).toEqual({
      ok: true,
      value: [
        {
          ID: 'his.clinical-his-1',
          Name: 'his',
          Tags: ['clinimesh'],
          Address: '127.0.40.1',
          Port: 15001,
          Meta: {
            tier: 'gold',
            'clinimesh-instance': 'his-1',
            namespace: 'clinical',
            'clinimesh-port-name': 'http',
            region: 'eu',
            zone: 'eu-a',
          },
          Weights: { Passing: 4, Warning: 1 },
          EnableTagOverride: false,
        },
      ],
    });
  });

  it('adds a TCP check on the mesh port when asked', () => {
    const result = registrationsFor(his([instance('his-1')]), { tcpIntervalMs: 5_000 });
    expect(result.ok && result.value[0]!.Check).toEqual({
      Name: 'clinimesh TCP 127.0.40.1:15001',
      TCP: '127.0.40.1:15001',
      Interval: '5s',
      Timeout: '2s',
    });
  });

  it('refuses meta keys Consul would refuse, naming the field', () => {
    const result = registrationsFor(
      his([
        instance('his-1'),
        instance('his-2', { meta: { 'app.kubernetes.io/name': 'his', 'consul-x': 'y' } }),
      ]),
    );
    expect(result.ok ? [] : result.errors.map((p) => [p.code, p.resource, p.field])).toEqual([
      ['CONSUL', 'Service clinical/his', 'spec.instances[1].meta.app.kubernetes.io/name'],
      ['CONSUL', 'Service clinical/his', 'spec.instances[1].meta.consul-x'],
    ]);
  });

  it('registers the control plane with an HTTP check on its /healthz', () => {
    expect(
      selfRegistration({
        id: 'cp-1',
        address: '10.0.0.5',
        port: 9901,
        healthzUrl: 'http://10.0.0.5:9901/healthz',
        deregisterCriticalAfterMs: 600_000,
      }),
    ).toEqual({
      ID: 'cp-1',
      Name: 'clinimesh',
      Tags: ['clinimesh', 'control-plane'],
      Address: '10.0.0.5',
      Port: 9901,
      Meta: {},
      Weights: { Passing: 1, Warning: 1 },
      EnableTagOverride: false,
      Check: {
        CheckID: 'service:cp-1',
        Name: 'clinimesh /healthz',
        HTTP: 'http://10.0.0.5:9901/healthz',
        Method: 'GET',
        Interval: '10s',
        Timeout: '2s',
        DeregisterCriticalServiceAfter: '600s',
      },
    });
  });
});

describe('ConsulRegistrar against the double', () => {
  let double: ConsulDouble;
  let client: ConsulHttp;
  const ids = () => double.state.instances('default', 'his').map((s) => s.id);

  beforeEach(async () => {
    double = await ConsulDouble.start();
    client = await clientFor(double.address);
  });
  afterEach(async () => {
    client.close();
    await double.stop();
  });

  it('syncs a service through create, update and delete', async () => {
    const registrar = new ConsulRegistrar(client);
    const v1 = his([instance('his-1'), instance('his-2')]);
    expect(await registrar.sync(undefined, v1)).toEqual({
      ok: true,
      value: ['his.clinical-his-1', 'his.clinical-his-2'],
    });
    expect(ids()).toEqual(['his.clinical-his-1', 'his.clinical-his-2']);
    const v2 = his([instance('his-2', { weight: 7 }), instance('his-3')]);
    expect((await registrar.sync(v1, v2)).ok).toBe(true);
    expect(ids()).toEqual(['his.clinical-his-2', 'his.clinical-his-3']);
    expect(double.state.findService(double.node, 'his.clinical-his-2')!.weights).toEqual({
      Passing: 7,
      Warning: 1,
    });
    expect((await registrar.sync(v2, his(v2.instances, false))).ok).toBe(true);
    expect(ids()).toEqual([]);
  });

  it('treats deregistering something already gone as done', async () => {
    expect(await new ConsulRegistrar(client).deregister(his([instance('his-9')]))).toEqual({
      ok: true,
      value: ['his.clinical-his-9'],
    });
  });

  it('reports Consul errors as CONSUL problems naming the instance', async () => {
    double.failNext(1, 500);
    const result = await new ConsulRegistrar(client).register(his([instance('his-1'), instance('his-2')]));
    expect(result.ok ? [] : result.errors.map((p) => [p.code, p.field, /500/.test(p.message)])).toEqual([
      ['CONSUL', 'spec.instances[0]', true],
    ]);
    expect(ids()).toEqual(['his.clinical-his-2']);
  });
});
