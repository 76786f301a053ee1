// The incremental (delta) ADS rules, driven request by request against a real cache.
import { fromBinary } from '@bufbuild/protobuf';
import { beforeEach, describe, expect, it } from 'vitest';
import { ok, type Problem } from '../../../src/errors.ts';
import { SnapshotCache } from '../../../src/xds/cache/snapshot.ts';
import { prepareResource, type PreparedResource } from '../../../src/xds/resources/prepared.ts';
import { messageDesc } from '../../../src/xds/resources/registry.ts';
import { CLUSTER, ENDPOINT, LISTENER, ROUTE } from '../../../src/xds/resources/type-urls.ts';
import { DeltaStream } from '../../../src/xds/server/delta-stream.ts';
import type { DeltaRequest } from '../../../src/xds/server/delta-wire.ts';
import { StatusRegistry } from '../../../src/xds/status.ts';

const NODE = 'clinical/emr/emr-1';
const node = { id: NODE, cluster: 'emr', metadata: {}, userAgent: 'test' };

function prepared(r: Parameters<typeof prepareResource>[0]): PreparedResource {
  const p = prepareResource(r);
  if (!p.ok) throw new Error(JSON.stringify(p.errors));
  return p.value;
}

const cluster = (name: string, timeout = '1s') =>
  prepared({
    typeUrl: CLUSTER,
    name,
    body: { name, type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, connect_timeout: timeout },
  });

const cla = (name: string, port = 8080) =>
  prepared({
    typeUrl: ENDPOINT,
    name,
    body: {
      cluster_name: name,
      endpoints: [
        {
          lb_endpoints: [
            { endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } },
          ],
        },
      ],
    },
  });

const route = (to: string) =>
  prepared({
    typeUrl: ROUTE,
    name: 'r',
    body: {
      name: 'r',
      virtual_hosts: [
        { name: 'v', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: to } }] },
      ],
    },
  });

interface Sent {
  typeUrl: string;
  systemVersion: string;
  nonce: string;
  /** name → version */
  resources: Record<string, string>;
  removed: string[];
}

describe('delta ADS stream', () => {
  let cache: SnapshotCache;
  let statuses: StatusRegistry;
  let sent: Sent[];
  let closed: Problem[];
  let stream: DeltaStream;
  const responseDesc = messageDesc('envoy.service.discovery.v3.DeltaDiscoveryResponse');

  const req = (r: Partial<DeltaRequest>): void =>
    stream.onRequest({
      typeUrl: CLUSTER,
      subscribe: [],
      unsubscribe: [],
      initialVersions: {},
      responseNonce: '',
      ...r,
    });
  const ack = (s: Sent, more: Partial<DeltaRequest> = {}) =>
    req({ typeUrl: s.typeUrl, responseNonce: s.nonce, ...more });
  const names = (s: Sent) => Object.keys(s.resources).sort();

  const newStream = () =>
    new DeltaStream(
      cache,
      { connect: (n) => ok(n.id) },
      statuses,
      { transport: 'ads', peer: 'test' },
      {
        send: (bytes) => {
          const m = fromBinary(responseDesc, bytes) as unknown as {
            systemVersionInfo: string;
            typeUrl: string;
            nonce: string;
            resources: { name: string; version: string }[];
            removedResources: string[];
          };
          sent.push({
            typeUrl: m.typeUrl,
            systemVersion: m.systemVersionInfo,
            nonce: m.nonce,
            resources: Object.fromEntries(m.resources.map((r) => [r.name, r.version])),
            removed: m.removedResources,
          });
          return true;
        },
        close: (p) => closed.push(p),
      },
    );

  beforeEach(() => {
    cache = new SnapshotCache();
    statuses = new StatusRegistry();
    sent = [];
    closed = [];
    stream = newStream();
  });

  it('refuses a stream whose first request has no node', () => {
    req({});
    expect(closed.map((p) => p.code)).toEqual(['UNAUTHENTICATED']);
    expect(sent).toEqual([]);
  });

  it('answers a wildcard CDS subscription with every cluster, versioned by content hash', () => {
    const a = cluster('a');
    cache.set(NODE, { [CLUSTER]: [a, cluster('b')] });
    req({ node });
    expect(sent).toHaveLength(1);
    expect(names(sent[0]!)).toEqual(['a', 'b']);
    expect(sent[0]!.resources.a).toBe(a.hash);
    expect(sent[0]!.systemVersion).toBe(cache.get(NODE, CLUSTER)!.version);
    ack(sent[0]!);
    expect(sent).toHaveLength(1);
    const status = statuses.all()[0]!;
    expect(status.transport).toBe('delta');
    expect(status.types.get(CLUSTER)!.ackedVersion).toBe(sent[0]!.systemVersion);
  });

  it('treats a subscription to * as wildcard, and answers an empty wildcard once', () => {
    cache.set(NODE, { [LISTENER]: [] });
    req({ node, typeUrl: LISTENER, subscribe: ['*'] });
    expect(sent).toHaveLength(1);
    expect(sent[0]!.resources).toEqual({});
  });

  it('sends explicitly subscribed names only, and waits for names that do not exist yet', () => {
    cache.set(NODE, { [ENDPOINT]: [cla('x'), cla('y')] });
    req({ node, typeUrl: ENDPOINT, subscribe: ['x', 'z'] });
    expect(sent.map(names)).toEqual([['x']]);
    ack(sent[0]!);
    req({ typeUrl: ENDPOINT, subscribe: ['y'] });
    expect(sent.map(names)).toEqual([['x'], ['y']]);
    cache.set(NODE, { [ENDPOINT]: [cla('x'), cla('y'), cla('z')] });
    expect(sent.map(names)).toEqual([['x'], ['y'], ['z']]);
  });

  it('sends only the resource that changed', () => {
    cache.set(NODE, { [ENDPOINT]: [cla('x'), cla('y')] });
    req({ node, typeUrl: ENDPOINT, subscribe: ['x', 'y'] });
    ack(sent[0]!);
    cache.set(NODE, { [ENDPOINT]: [cla('x'), cla('y', 9090)] });
    expect(sent).toHaveLength(2);
    expect(sent[1]!.resources).toEqual({ y: cla('y', 9090).hash });
    expect(sent[1]!.removed).toEqual([]);
    expect(statuses.all()[0]!.types.get(ENDPOINT)!.lastPush).toEqual({ resources: 1, removed: 0 });
  });

  it('removes what the client holds and no longer exists', () => {
    cache.set(NODE, { [CLUSTER]: [cluster('a'), cluster('b')] });
    req({ node });
    ack(sent[0]!);
    cache.set(NODE, { [CLUSTER]: [cluster('a')] });
    expect(sent).toHaveLength(2);
    expect(sent[1]!.resources).toEqual({});
    expect(sent[1]!.removed).toEqual(['b']);
  });

  it('records a NACK and never re-sends that version of the resource; a newer one goes out', () => {
    cache.set(NODE, { [CLUSTER]: [cluster('a'), cluster('b')] });
    req({ node });
    ack(sent[0]!);
    cache.set(NODE, { [CLUSTER]: [cluster('a', '2s'), cluster('b')] });
    const bad = sent[1]!;
    expect(names(bad)).toEqual(['a']);
    ack(bad, { errorDetail: 'cluster a: nope' });
    const status = statuses.all()[0]!.types.get(CLUSTER)!;
    expect(status.lastNack).toMatchObject({ version: bad.systemVersion, error: 'cluster a: nope' });
    expect(status.ackedVersion).toBe(sent[0]!.systemVersion);
    // Another change elsewhere: b goes out, the rejected a does not.
    cache.set(NODE, { [CLUSTER]: [cluster('a', '2s'), cluster('b', '5s')] });
    expect(sent).toHaveLength(3);
    expect(names(sent[2]!)).toEqual(['b']);
    ack(sent[2]!);
    cache.set(NODE, { [CLUSTER]: [cluster('a', '3s'), cluster('b', '5s')] });
    expect(sent).toHaveLength(4);
    expect(names(sent[3]!)).toEqual(['a']);
  });

  it('resumes with initial_resource_versions: unchanged content sends nothing, a change sends only it', () => {
    cache.set(NODE, { [CLUSTER]: [cluster('a'), cluster('b')], [ENDPOINT]: [cla('a'), cla('b')] });
    const held = { a: cluster('a').hash, b: cluster('b').hash };
    req({ node, initialVersions: held });
    req({
      typeUrl: ENDPOINT,
      subscribe: ['a', 'b'],
      initialVersions: { a: cla('a').hash, b: cla('b').hash },
    });
    expect(sent).toEqual([]);
    const status = statuses.all()[0]!;
    expect(status.types.get(CLUSTER)!.heldVersion).toBe(cache.get(NODE, CLUSTER)!.version);
    expect(status.types.get(ENDPOINT)!.heldVersion).toBe(cache.get(NODE, ENDPOINT)!.version);

    const other = newStream();
    stream.close();
    stream = other;
    req({ node, initialVersions: { a: held.a, b: 'stale', gone: 'x' } });
    expect(sent).toHaveLength(1);
    expect(names(sent[0]!)).toEqual(['b']);
    expect(sent[0]!.removed).toEqual(['gone']);
  });

  it('forgets unsubscribed names: no removal for them, and a re-subscription is answered', () => {
    cache.set(NODE, { [ENDPOINT]: [cla('x'), cla('y')] });
    req({ node, typeUrl: ENDPOINT, subscribe: ['x', 'y'] });
    ack(sent[0]!, { unsubscribe: ['y'] });
    expect(sent).toHaveLength(1);
    cache.set(NODE, { [ENDPOINT]: [cla('x')] });
    expect(sent).toHaveLength(1); // y was not held any more: nothing to remove
    cache.set(NODE, { [ENDPOINT]: [cla('x', 1), cla('y')] });
    expect(sent.map(names)).toEqual([['x', 'y'], ['x']]);
    req({ typeUrl: ENDPOINT, subscribe: ['y'] });
    expect(sent.map(names)).toEqual([['x', 'y'], ['x'], ['y']]);
  });

  it('keeps a removed cluster until the routes that used it are ACKed (make before break)', () => {
    cache.set(NODE, { [CLUSTER]: [cluster('old')], [ROUTE]: [route('old')] });
    req({ node });
    req({ typeUrl: ROUTE, subscribe: ['r'] });
    ack(sent[0]!);
    ack(sent[1]!);
    cache.set(NODE, { [CLUSTER]: [cluster('new')], [ROUTE]: [route('new')] });
    const [cds1, rds1] = sent.slice(2) as [Sent, Sent];
    expect(cds1.typeUrl).toBe(CLUSTER);
    expect(names(cds1)).toEqual(['new']);
    expect(cds1.removed).toEqual([]);
    expect(rds1.typeUrl).toBe(ROUTE);
    ack(cds1);
    expect(sent).toHaveLength(4);
    ack(rds1);
    expect(sent).toHaveLength(5);
    expect(sent[4]!.removed).toEqual(['old']);
    expect(sent[4]!.systemVersion).toBe(cache.get(NODE, CLUSTER)!.version);
  });

  it('holds responses while the transport is full and then sends one difference per type', () => {
    let room = false;
    stream = new DeltaStream(
      cache,
      { connect: (n) => ok(n.id) },
      statuses,
      { transport: 'ads', peer: 'test' },
      {
        send: (bytes) => {
          const m = fromBinary(responseDesc, bytes) as unknown as {
            resources: { name: string; version: string }[];
          };
          sent.push({
            typeUrl: CLUSTER,
            systemVersion: '',
            nonce: '',
            resources: Object.fromEntries(m.resources.map((r) => [r.name, r.version])),
            removed: [],
          });
          return room;
        },
        close: (p) => closed.push(p),
      },
    );
    cache.set(NODE, { [CLUSTER]: [cluster('a')] });
    req({ node });
    cache.set(NODE, { [CLUSTER]: [cluster('a', '2s')] });
    cache.set(NODE, { [CLUSTER]: [cluster('a', '3s'), cluster('b')] });
    expect(sent).toHaveLength(1);
    room = true;
    stream.resume();
    expect(sent).toHaveLength(2);
    expect(sent[1]!.resources).toEqual({ a: cluster('a', '3s').hash, b: cluster('b').hash });
  });
});
