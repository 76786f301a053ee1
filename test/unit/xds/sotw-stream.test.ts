// The ADS state-of-the-world rules, driven request by request against a real cache.
import { fromBinary } from '@bufbuild/protobuf';
import { beforeEach, describe, expect, it } from 'vitest';
import { ok, type Problem } from '../../../src/errors.ts';
import { SnapshotCache } from '../../../src/xds/cache/snapshot.ts';
import { prepareResource, type PreparedResource } from '../../../src/xds/resources/prepared.ts';
import { messageDesc } from '../../../src/xds/resources/registry.ts';
import { CLUSTER, ENDPOINT, ROUTE } from '../../../src/xds/resources/type-urls.ts';
import type { XdsRequest } from '../../../src/xds/server/node.ts';
import { SotwStream } from '../../../src/xds/server/sotw-stream.ts';
import { StatusRegistry } from '../../../src/xds/status.ts';

const NODE = 'clinical/emr/emr-1';
const node = { id: NODE, cluster: 'emr', metadata: {}, userAgent: 'test' };

function cluster(name: string, timeout = '1s'): PreparedResource {
  const r = prepareResource({
    typeUrl: CLUSTER,
    name,
    body: { name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, connect_timeout: timeout },
  });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

function cla(name: string): PreparedResource {
  const r = prepareResource({ typeUrl: ENDPOINT, name, body: { cluster_name: name } });
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return r.value;
}

interface Sent {
  version: string;
  nonce: string;
  names: string[];
}

describe('SotW ADS stream', () => {
  let cache: SnapshotCache;
  let statuses: StatusRegistry;
  let sent: Sent[];
  let closed: Problem[];
  let stream: SotwStream;
  const responseDesc = messageDesc('envoy.service.discovery.v3.DiscoveryResponse');

  const req = (r: Partial<XdsRequest>): void =>
    stream.onRequest({ versionInfo: '', resourceNames: [], typeUrl: CLUSTER, responseNonce: '', ...r });

  beforeEach(() => {
    cache = new SnapshotCache();
    statuses = new StatusRegistry();
    sent = [];
    closed = [];
    stream = new SotwStream(
      cache,
      { connect: (n) => ok(n.id) },
      statuses,
      { transport: 'ads', peer: 'test' },
      {
        send: (bytes) => {
          const m = fromBinary(responseDesc, bytes) as unknown as {
            versionInfo: string;
            nonce: string;
            resources: { value: Uint8Array }[];
          };
          const clusterDesc = messageDesc('envoy.config.cluster.v3.Cluster');
          const endpointDesc = messageDesc('envoy.config.endpoint.v3.ClusterLoadAssignment');
          const names = m.resources.map((r) => {
            try {
              return (fromBinary(clusterDesc, r.value) as unknown as { name: string }).name;
            } catch {
              try {
                return (fromBinary(endpointDesc, r.value) as unknown as { clusterName: string }).clusterName;
              } catch {
                return '?';
              }
            }
          });
          sent.push({ version: m.versionInfo, nonce: m.nonce, names });
          return true;
        },
        close: (p) => closed.push(p),
      },
    );
  });

  it('refuses a stream whose first request has no node', () => {
    req({});
    expect(closed.map((p) => p.code)).toEqual(['UNAUTHENTICATED']);
    expect(sent).toEqual([]);
  });

  it('answers a wildcard subscription with every cluster, and accepts node only on the first request', () => {
    cache.set(NODE, { [CLUSTER]: [cluster('a'), cluster('b')] });
    req({ node });
    expect(sent).toHaveLength(1);
    expect(sent[0]!.names.sort()).toEqual(['a', 'b']);
    req({ versionInfo: sent[0]!.version, responseNonce: sent[0]!.nonce });
    expect(sent).toHaveLength(1);
    const status = statuses.all()[0]!.types.get(CLUSTER)!;
    expect(status.ackedVersion).toBe(sent[0]!.version);
    expect(status.pendingNonce).toBeUndefined();
  });

  it('pushes a new version when the snapshot changes', () => {
    cache.set(NODE, { [CLUSTER]: [cluster('a')] });
    req({ node });
    req({ versionInfo: sent[0]!.version, responseNonce: sent[0]!.nonce });
    cache.set(NODE, { [CLUSTER]: [cluster('a'), cluster('c')] });
    expect(sent).toHaveLength(2);
    expect(sent[1]!.version).not.toBe(sent[0]!.version);
    expect(sent[1]!.nonce).not.toBe(sent[0]!.nonce);
  });

  it('records a NACK and never re-pushes the rejected version; a newer version goes out', () => {
    cache.set(NODE, { [CLUSTER]: [cluster('a')] });
    req({ node });
    req({ versionInfo: sent[0]!.version, responseNonce: sent[0]!.nonce });
    cache.set(NODE, { [CLUSTER]: [cluster('a', '2s')] });
    const bad = sent[1]!;
    req({ versionInfo: sent[0]!.version, responseNonce: bad.nonce, errorDetail: 'cluster a: nope' });
    expect(sent).toHaveLength(2);
    const status = statuses.all()[0]!.types.get(CLUSTER)!;
    expect(status.lastNack).toMatchObject({ version: bad.version, error: 'cluster a: nope' });
    expect(status.ackedVersion).toBe(sent[0]!.version);
    // Re-setting the same content is not a new version: still not pushed.
    cache.set(NODE, { [CLUSTER]: [cluster('a', '2s')] });
    expect(sent).toHaveLength(2);
    cache.set(NODE, { [CLUSTER]: [cluster('a', '3s')] });
    expect(sent).toHaveLength(3);
  });

  it('ignores a request carrying a stale nonce', () => {
    cache.set(NODE, { [CLUSTER]: [cluster('a')] });
    req({ node });
    cache.set(NODE, { [CLUSTER]: [cluster('b')] });
    // An ACK for the first response arrives after the second was sent: stale, so it changes nothing.
    req({ versionInfo: sent[0]!.version, responseNonce: sent[0]!.nonce });
    expect(statuses.all()[0]!.types.get(CLUSTER)!.ackedVersion).toBeUndefined();
    expect(sent).toHaveLength(2);
  });

  it('waits for named resources that do not exist yet, then sends them', () => {
    cache.set(NODE, { [ENDPOINT]: [cla('x')] });
    req({ node, typeUrl: ENDPOINT, resourceNames: ['y'] });
    expect(sent).toHaveLength(0);
    cache.set(NODE, { [ENDPOINT]: [cla('x'), cla('y')] });
    expect(sent).toHaveLength(1);
    expect(sent[0]!.names).toEqual(['y']);
  });

  it('answers a change of subscribed names even when the version is the same', () => {
    cache.set(NODE, { [ENDPOINT]: [cla('x'), cla('y')] });
    req({ node, typeUrl: ENDPOINT, resourceNames: ['x'] });
    req({
      typeUrl: ENDPOINT,
      versionInfo: sent[0]!.version,
      responseNonce: sent[0]!.nonce,
      resourceNames: ['x', 'y'],
    });
    expect(sent).toHaveLength(2);
    expect(sent[1]!.names.sort()).toEqual(['x', 'y']);
  });

  it('keeps a removed cluster until the routes that used it are ACKed (make before break)', () => {
    const route = (cluster: string) => {
      const r = prepareResource({
        typeUrl: ROUTE,
        name: 'r',
        body: {
          name: 'r',
          virtual_hosts: [
            { name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster } }] },
          ],
        },
      });
      if (!r.ok) throw new Error(JSON.stringify(r.errors));
      return r.value;
    };
    cache.set(NODE, { [CLUSTER]: [cluster('old')], [ROUTE]: [route('old')] });
    req({ node });
    req({ typeUrl: ROUTE, resourceNames: ['r'] });
    const [cds0, rds0] = sent as [Sent, Sent];
    req({ versionInfo: cds0.version, responseNonce: cds0.nonce });
    req({ typeUrl: ROUTE, resourceNames: ['r'], versionInfo: rds0.version, responseNonce: rds0.nonce });

    cache.set(NODE, { [CLUSTER]: [cluster('new')], [ROUTE]: [route('new')] });
    const [cds1, rds1] = sent.slice(2) as [Sent, Sent];
    expect(cds1.names.sort()).toEqual(['new', 'old']);
    expect(sent).toHaveLength(4);
    req({ versionInfo: cds1.version, responseNonce: cds1.nonce });
    req({ typeUrl: ROUTE, resourceNames: ['r'], versionInfo: rds1.version, responseNonce: rds1.nonce });
    expect(sent).toHaveLength(5);
    expect(sent[4]!.names).toEqual(['new']);
    expect(sent[4]!.version).toBe(cache.get(NODE, CLUSTER)!.version);
  });

  it('does not resend what a reconnecting sidecar already has, and records it as held, not ACKed', () => {
    cache.set(NODE, { [CLUSTER]: [cluster('a')] });
    const version = cache.get(NODE, CLUSTER)!.version;
    req({ node, versionInfo: version });
    expect(sent).toHaveLength(0);
    const status = statuses.all()[0]!.types.get(CLUSTER)!;
    expect(status.heldVersion).toBe(version);
    expect(status.ackedVersion).toBeUndefined();
  });
});

describe('snapshot versions', () => {
  it('are content hashes: the same resources give the same version in a new cache', () => {
    const a = new SnapshotCache();
    const b = new SnapshotCache();
    a.set(NODE, { [CLUSTER]: [cluster('a'), cluster('b')] });
    b.set(NODE, { [CLUSTER]: [cluster('b'), cluster('a')] });
    expect(a.get(NODE, CLUSTER)!.version).toBe(b.get(NODE, CLUSTER)!.version);
  });

  it('tell listeners only about types that changed', () => {
    const cache = new SnapshotCache();
    const heard: string[] = [];
    cache.watch(NODE, (s) => heard.push(s.typeUrl));
    cache.set(NODE, { [CLUSTER]: [cluster('a')], [ENDPOINT]: [cla('a')] });
    cache.set(NODE, { [CLUSTER]: [cluster('a')], [ENDPOINT]: [cla('b')] });
    expect(heard).toEqual([CLUSTER, ENDPOINT, ENDPOINT]);
  });
});

describe('SotW ADS stream: bounded state', () => {
  const NODE2 = 'clinical/emr/emr-2';
  let cache: SnapshotCache;
  let statuses: StatusRegistry;
  let versions: string[];
  let closed: Problem[];
  let room: boolean;
  let stream: SotwStream;
  const responseDesc = messageDesc('envoy.service.discovery.v3.DiscoveryResponse');

  beforeEach(() => {
    cache = new SnapshotCache();
    statuses = new StatusRegistry();
    versions = [];
    closed = [];
    room = true;
    stream = new SotwStream(
      cache,
      { connect: (n) => ok(n.id) },
      statuses,
      { transport: 'ads', peer: 'test' },
      {
        send: (bytes) => {
          versions.push((fromBinary(responseDesc, bytes) as unknown as { versionInfo: string }).versionInfo);
          return room;
        },
        close: (p) => closed.push(p),
      },
    );
  });

  it('writes nothing while the transport is full, then only the latest version of each type', () => {
    cache.set(NODE2, { [CLUSTER]: [cluster('a')], [ENDPOINT]: [cla('a')] });
    room = false;
    stream.onRequest({
      node: { ...node, id: NODE2 },
      versionInfo: '',
      resourceNames: [],
      typeUrl: CLUSTER,
      responseNonce: '',
    });
    stream.onRequest({ versionInfo: '', resourceNames: ['a'], typeUrl: ENDPOINT, responseNonce: '' });
    expect(versions).toHaveLength(1);
    for (const t of ['2s', '3s', '4s']) cache.set(NODE2, { [CLUSTER]: [cluster('a', t)] });
    expect(versions).toHaveLength(1);
    room = true;
    stream.resume();
    expect(versions).toEqual([
      versions[0],
      cache.get(NODE2, CLUSTER)!.version,
      cache.get(NODE2, ENDPOINT)!.version,
    ]);
    expect(statuses.all()[0]!.types.get(CLUSTER)!.pushes).toBe(2);
  });

  it('does not count as ACKed a version it never sent, even with the current nonce', () => {
    cache.set(NODE2, { [CLUSTER]: [cluster('a')] });
    stream.onRequest({
      node: { ...node, id: NODE2 },
      versionInfo: '',
      resourceNames: [],
      typeUrl: CLUSTER,
      responseNonce: '',
    });
    stream.onRequest({
      versionInfo: 'not-a-version-we-sent',
      resourceNames: [],
      typeUrl: CLUSTER,
      responseNonce: '1',
    });
    expect(statuses.all()[0]!.types.get(CLUSTER)!.ackedVersion).toBeUndefined();
    stream.onRequest({ versionInfo: versions[0]!, resourceNames: [], typeUrl: CLUSTER, responseNonce: '1' });
    expect(statuses.all()[0]!.types.get(CLUSTER)!.ackedVersion).toBe(versions[0]);
  });

  it('does not count a reconnecting client claiming a version we do not have', () => {
    cache.set(NODE2, { [CLUSTER]: [cluster('a')] });
    stream.onRequest({
      node: { ...node, id: NODE2 },
      versionInfo: 'garbage',
      resourceNames: [],
      typeUrl: CLUSTER,
      responseNonce: '',
    });
    const status = statuses.all()[0]!.types.get(CLUSTER)!;
    expect(status.ackedVersion).toBeUndefined();
    expect(status.heldVersion).toBeUndefined();
    expect(versions).toEqual([cache.get(NODE2, CLUSTER)!.version]);
  });

  it('refuses a node id over 256 bytes, or oversized metadata, at once and without echoing them', () => {
    stream.onRequest({
      node: { ...node, id: `clinical/emr/${'a'.repeat(100_000)}` },
      versionInfo: '',
      resourceNames: [],
      typeUrl: CLUSTER,
      responseNonce: '',
    });
    expect(closed.map((p) => [p.code, p.field])).toEqual([['SCHEMA', 'node.id']]);
    expect(closed[0]!.message.length).toBeLessThan(200);
    expect(statuses.all()).toEqual([]);
    const other = new SotwStream(
      cache,
      { connect: (n) => ok(n.id) },
      statuses,
      { transport: 'ads', peer: 'test' },
      { send: () => true, close: (p) => closed.push(p) },
    );
    other.onRequest({
      node: { ...node, metadata: { big: 'x'.repeat(20_000) } },
      versionInfo: '',
      resourceNames: [],
      typeUrl: CLUSTER,
      responseNonce: '',
    });
    expect(closed.map((p) => p.field)).toEqual(['node.id', 'node.metadata']);
  });
});

describe('SotW ADS stream: cluster warming', () => {
  it('answers the EDS request that follows a CDS push even when the assignments did not change', () => {
    const cache = new SnapshotCache();
    const statuses = new StatusRegistry();
    const sent: { type: string; nonce: string }[] = [];
    const responseDesc = messageDesc('envoy.service.discovery.v3.DiscoveryResponse');
    const stream = new SotwStream(
      cache,
      { connect: (n) => ok(n.id) },
      statuses,
      { transport: 'ads', peer: 'test' },
      {
        send: (bytes) => {
          const m = fromBinary(responseDesc, bytes) as unknown as { typeUrl: string; nonce: string };
          sent.push({ type: m.typeUrl, nonce: m.nonce });
          return true;
        },
        close: () => undefined,
      },
    );
    cache.set(NODE, { [CLUSTER]: [cluster('a')], [ENDPOINT]: [cla('a')] });
    stream.onRequest({ node, versionInfo: '', resourceNames: [], typeUrl: CLUSTER, responseNonce: '' });
    stream.onRequest({ versionInfo: '', resourceNames: ['a'], typeUrl: ENDPOINT, responseNonce: '' });
    const edsVersion = cache.get(NODE, ENDPOINT)!.version;
    stream.onRequest({
      versionInfo: edsVersion,
      resourceNames: ['a'],
      typeUrl: ENDPOINT,
      responseNonce: '2',
    });
    expect(sent.map((s) => s.type.split('.').pop())).toEqual(['Cluster', 'ClusterLoadAssignment']);
    // The cluster changes in place; its assignment does not. Envoy re-requests EDS to warm it.
    cache.set(NODE, { [CLUSTER]: [cluster('a', '5s')] });
    stream.onRequest({
      versionInfo: edsVersion,
      resourceNames: ['a'],
      typeUrl: ENDPOINT,
      responseNonce: '2',
    });
    expect(sent.map((s) => s.type.split('.').pop())).toEqual([
      'Cluster',
      'ClusterLoadAssignment',
      'Cluster',
      'ClusterLoadAssignment',
    ]);
    // Only once: its ACK is not answered again.
    stream.onRequest({
      versionInfo: edsVersion,
      resourceNames: ['a'],
      typeUrl: ENDPOINT,
      responseNonce: sent[3]!.nonce,
    });
    expect(sent).toHaveLength(4);
  });
});
