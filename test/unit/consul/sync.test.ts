// ConsulSync keeps Consul in step with commits: watches for `discovery.mode: consul` Services and
// registrations for `register: true` ones. After the first sync, a commit names the documents it
// touched and only those Services are looked at again.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ConsulHttp } from '../../../src/consul/http.ts';
import { ConsulRegistrar } from '../../../src/discovery/consul-register.ts';
import { ConsulSync } from '../../../src/discovery/consul-sync.ts';
import { ConsulWatcher } from '../../../src/discovery/consul.ts';
import type { Service } from '../../../src/manifest/types.ts';
import { buildState } from '../../../src/store/state.ts';
import { ConsulDouble } from '../../consul-double/server.ts';
import { clientFor, RecordingSink } from './helpers.ts';

const service = (name: string, discovery: Service['discovery']): Service => ({
  kind: 'Service',
  name,
  namespace: 'clinical',
  ports: [{ name: 'http', port: 15001, targetPort: 8080, protocol: 'http' }],
  discovery,
  instances:
    discovery.mode === 'static'
      ? [
          {
            name: `${name}-1`,
            address: '127.0.40.1',
            appAddress: '127.0.0.1',
            locality: {},
            weight: 1,
            meta: {},
          },
        ]
      : [],
  upstreams: [],
  origin: { file: `${name}.yaml` },
});

describe('ConsulSync', () => {
  let double: ConsulDouble;
  let client: ConsulHttp;
  let watcher: ConsulWatcher;
  let sync: ConsulSync;
  const registered = () => double.state.instances('default', 'lis').map((s) => s.id);

  beforeEach(async () => {
    double = await ConsulDouble.start();
    client = await clientFor(double.address);
    watcher = new ConsulWatcher({ client, sink: new RecordingSink() });
    sync = new ConsulSync(watcher, new ConsulRegistrar(client), () => undefined);
  });
  afterEach(async () => {
    sync.stop();
    client.close();
    await double.stop();
  });

  it('watches and registers what the state wants, then follows only the Services a commit touched', async () => {
    const emr = service('emr', { mode: 'consul', register: false });
    const his = service('his', { mode: 'consul', register: false });
    const lis = service('lis', { mode: 'static', register: true });
    await sync.sync(buildState(1, [emr, his, lis]));
    expect(watcher.watched()).toEqual(['emr.clinical', 'his.clinical']);
    expect(registered()).toEqual(['lis.clinical-lis-1']);

    // emr turns static; pacs comes, watched; a commit that names neither his nor lis leaves them be.
    const pacs = service('pacs', { mode: 'consul', consulName: 'pacs-dicom', register: false });
    const emrStatic = service('emr', { mode: 'static', register: false });
    await sync.sync(buildState(2, [emrStatic, his, lis, pacs]), [
      'Service clinical/emr',
      'Service clinical/pacs',
    ]);
    expect(watcher.watched()).toEqual(['his.clinical', 'pacs.clinical']);
    expect(registered()).toEqual(['lis.clinical-lis-1']);

    // lis removed: deregistered; his removed: no longer watched.
    await sync.sync(buildState(3, [emrStatic, pacs]), ['Service clinical/lis', 'Service clinical/his']);
    expect(watcher.watched()).toEqual(['pacs.clinical']);
    expect(registered()).toEqual([]);
  });

  it('a commit of policies only changes no watch and no registration', async () => {
    const his = service('his', { mode: 'consul', register: false });
    await sync.sync(buildState(1, [his]));
    // The state no longer holds his, but the commit did not touch it: nothing is looked at.
    await sync.sync(buildState(2, []), ['AccessPolicy clinical/his-readers']);
    expect(watcher.watched()).toEqual(['his.clinical']);
  });

  it('retries a registration that failed on the next sync, whatever that sync touched', async () => {
    const lis = service('lis', { mode: 'static', register: true });
    double.failNext(1);
    await sync.sync(buildState(1, [lis]));
    expect(registered()).toEqual([]);
    await sync.sync(buildState(2, [lis]), ['AccessPolicy clinical/lis-readers']);
    expect(registered()).toEqual(['lis.clinical-lis-1']);
  });

  it('runs syncs in commit order, so a quick revert leaves no instance registered that the state has not', async () => {
    const one = service('lis', { mode: 'static', register: true });
    const two: Service = {
      ...one,
      instances: [...one.instances, { ...one.instances[0]!, name: 'lis-2', address: '127.0.40.2' }],
    };
    await sync.sync(buildState(1, [one]));
    const touched = ['Service clinical/lis'];
    await Promise.all([sync.sync(buildState(2, [two]), touched), sync.sync(buildState(3, [one]), touched)]);
    expect(registered()).toEqual(['lis.clinical-lis-1']);
  });
});
