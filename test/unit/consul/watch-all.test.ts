// The optional whole-datacenter mode: every service in the catalog is watched as it appears, and one
// that leaves the catalog ends with an empty set.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConsulWatcher } from '../../../src/discovery/consul.ts';
import type { ConsulHttp } from '../../../src/consul/http.ts';
import { ConsulDouble } from '../../consul-double/server.ts';
import { waitFor } from '../../helpers/wait.ts';
import { clientFor, RecordingSink } from './helpers.ts';

describe('ConsulWatcher.watchAll', () => {
  let double: ConsulDouble;
  let client: ConsulHttp;
  let watcher: ConsulWatcher;
  let sink: RecordingSink;

  beforeEach(async () => {
    double = await ConsulDouble.start();
    client = await clientFor(double.address);
    sink = new RecordingSink();
    watcher = new ConsulWatcher({ client, sink, waitMs: 5_000, rateLimit: { burst: 5, refillMs: 50 } });
  });
  afterEach(async () => {
    await watcher.stop();
    client.close();
    await double.stop();
  });

  it('follows services as they join and leave the catalog, skipping the ones keyFor refuses', async () => {
    double.registerService({ ID: 'his-1', Name: 'his', Port: 15001 });
    watcher.watchAll({
      portName: 'http',
      keyFor: (name) => (name === 'consul' ? undefined : `${name}.consul`),
    });
    await waitFor(async () => sink.last('his.consul')?.endpoints.length === 1, { what: 'his' });
    double.registerService({ ID: 'pacs-1', Name: 'pacs', Port: 104 });
    await waitFor(async () => sink.last('pacs.consul')?.endpoints.length === 1, { what: 'pacs' });
    expect(watcher.watched()).toEqual(['his.consul', 'pacs.consul']);
    expect(watcher.catalogStatus()).toMatchObject({ services: 2, consecutiveFailures: 0 });

    double.deregisterService('pacs-1');
    await waitFor(
      async () => sink.last('pacs.consul')?.endpoints.length === 0 && watcher.watched().length === 1,
      { what: 'pacs to leave' },
    );
    expect(watcher.watched()).toEqual(['his.consul']);
    expect(sink.sets.filter((s) => s.service === 'pacs.consul' && s.endpoints.length === 0)).toHaveLength(1);
  });

  it('keeps its services when the catalog comes back empty from a leaderless server', async () => {
    double.registerService({ ID: 'his-1', Name: 'his', Port: 15001 });
    watcher.watchAll({ portName: 'http', keyFor: (name) => (name === 'consul' ? undefined : `${name}.dc`) });
    await waitFor(async () => sink.last('his.dc')?.endpoints.length === 1, { what: 'his' });
    double.knownLeader = false;
    double.deregisterService('his-1');
    double.deregisterService('consul');
    await waitFor(async () => (watcher.catalogStatus()?.consecutiveFailures ?? 0) >= 1, {
      what: 'the empty catalog to be refused',
    });
    expect(watcher.watched()).toEqual(['his.dc']);
    expect(sink.last('his.dc')?.endpoints).toHaveLength(1);
  });
});

describe('ConsulWatcher.watchAll with ACLs', () => {
  it('treats a catalog filtered by ACLs as a failure, not as every service leaving', async () => {
    const double = await ConsulDouble.start({ acl: { management: 'f00df00d-0000-4000-8000-000000000001' } });
    double.registerService({ ID: 'his-1', Name: 'his', Port: 15001 });
    const client = await clientFor(double.address);
    const sink = new RecordingSink();
    const watcher = new ConsulWatcher({ client, sink, waitMs: 5_000, backoff: { baseMs: 20, maxMs: 100 } });
    try {
      watcher.watchAll({ portName: 'http', keyFor: (name) => name });
      await waitFor(async () => (watcher.catalogStatus()?.consecutiveFailures ?? 0) >= 2, {
        what: 'the filtered catalog to be refused',
      });
      expect(watcher.catalogStatus()?.lastError).toMatch(/ACL/);
      expect(sink.sets).toEqual([]);
    } finally {
      await watcher.stop();
      client.close();
      await double.stop();
    }
  });
});
