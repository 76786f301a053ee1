// The xDS transports over real sockets (plaintext, no Envoy): limits on what a client may send, and
// on what a client that does not read can make the server hold.
import { create, fromBinary, toBinary, type DescMessage } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ok } from '../../../src/errors.ts';
import { SnapshotCache } from '../../../src/xds/cache/snapshot.ts';
import { prepareResource, type PreparedResource } from '../../../src/xds/resources/prepared.ts';
import { messageDesc } from '../../../src/xds/resources/registry.ts';
import { CLUSTER } from '../../../src/xds/resources/type-urls.ts';
import { startXdsServers, type XdsServers } from '../../../src/xds/server/index.ts';
import { StatusRegistry } from '../../../src/xds/status.ts';

const NODE = 'clinical/emr/emr-1';
const ADS_PATH = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

function discoveryRequest(fields: {
  nodeId?: string;
  versionInfo?: string;
  responseNonce?: string;
}): Uint8Array {
  const desc: DescMessage = messageDesc('envoy.service.discovery.v3.DiscoveryRequest');
  const node = messageDesc('envoy.config.core.v3.Node');
  const init = {
    typeUrl: CLUSTER,
    versionInfo: fields.versionInfo ?? '',
    responseNonce: fields.responseNonce ?? '',
    node: fields.nodeId ? create(node, { id: fields.nodeId, cluster: 'x' } as never) : undefined,
  };
  return toBinary(desc, create(desc, init as never));
}

/** Many clusters with padding, so one CDS response is a few hundred KB. */
function bigClusters(round: number): PreparedResource[] {
  return Array.from({ length: 200 }, (_, i) => {
    const name = `c${i}`;
    const r = prepareResource({
      typeUrl: CLUSTER,
      name,
      body: {
        name,
        type: 'EDS',
        eds_cluster_config: { eds_config: { ads: {} } },
        connect_timeout: `${round + 1}s`,
        metadata: { filter_metadata: { pad: { text: 'x'.repeat(1500) } } },
      },
    });
    if (!r.ok) throw new Error(JSON.stringify(r.errors));
    return r.value;
  });
}

describe('xDS servers', () => {
  let cache: SnapshotCache;
  let statuses: StatusRegistry;
  let servers: XdsServers;
  let client: grpc.Client;

  beforeEach(async () => {
    cache = new SnapshotCache();
    statuses = new StatusRegistry();
    servers = await startXdsServers({
      host: '127.0.0.1',
      grpcPort: 0,
      restPort: 0,
      cache,
      statuses,
      hooks: { connect: (n) => ok(n.id) },
      longPollMs: 200,
    });
    client = new grpc.Client(`127.0.0.1:${servers.grpcPort}`, grpc.credentials.createInsecure());
  });

  afterEach(async () => {
    client.close();
    await servers.close();
  });

  const open = () =>
    client.makeBidiStreamRequest(
      ADS_PATH,
      (b: Uint8Array) => Buffer.from(b),
      (b: Buffer) => b,
    );

  it('refuses a 100 KB node id with INVALID_ARGUMENT at once', async () => {
    const call = open();
    const error = await new Promise<grpc.ServiceError>((resolve) => {
      call.on('error', resolve);
      call.on('data', () => undefined);
      call.write(discoveryRequest({ nodeId: `clinical/emr/${'a'.repeat(100_000)}` }));
    });
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(statuses.all()).toEqual([]);
  });

  it('answers a 100 KB node id over REST with 400', async () => {
    const res = await fetch(`http://127.0.0.1:${servers.restPort}/v3/discovery:clusters`, {
      method: 'POST',
      body: JSON.stringify({ node: { id: 'a'.repeat(100_000) } }),
    });
    expect(res.status).toBe(400);
  });

  it('holds at most a bounded number of responses for a client that never reads, coalescing to the latest', async () => {
    cache.set(NODE, { [CLUSTER]: bigClusters(0) });
    const call = open(); // no 'data' listener: the client never reads
    call.write(discoveryRequest({ nodeId: NODE }));
    await until(() => statuses.all().length === 1);
    for (let round = 1; round <= 60; round++) {
      cache.set(NODE, { [CLUSTER]: bigClusters(round) });
      await new Promise((r) => setImmediate(r));
    }
    await new Promise((r) => setTimeout(r, 300));
    const pushes = statuses.all()[0]!.types.get(CLUSTER)!.pushes;
    // Without a bound every one of the 61 versions would be queued (~20 MB); the client's own
    // buffer and the HTTP/2 window take a handful, the rest are coalesced.
    expect(pushes).toBeLessThan(20);
    // Once it reads, it gets the latest version.
    const versions: string[] = [];
    const responseDesc = messageDesc('envoy.service.discovery.v3.DiscoveryResponse');
    call.on('data', (b: Buffer) =>
      versions.push((fromBinary(responseDesc, b) as unknown as { versionInfo: string }).versionInfo),
    );
    await until(() => versions.at(-1) === cache.get(NODE, CLUSTER)!.version);
    call.on('error', () => undefined);
    call.cancel();
  });

  it('over REST, records an ACK only of a version it answered with', async () => {
    cache.set(NODE, { [CLUSTER]: bigClusters(0).slice(0, 1) });
    const poll = async (body: object) =>
      fetch(`http://127.0.0.1:${servers.restPort}/v3/discovery:clusters`, {
        method: 'POST',
        body: JSON.stringify({ node: { id: NODE }, ...body }),
      });
    expect((await poll({ version_info: 'never-sent' })).status).toBe(200);
    const type = () => statuses.all()[0]!.types.get(CLUSTER)!;
    expect(type().ackedVersion).toBeUndefined();
    const version = cache.get(NODE, CLUSTER)!.version;
    expect((await poll({ version_info: version, response_nonce: version })).status).toBe(304);
    expect(type().ackedVersion).toBe(version);
  });
});

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
