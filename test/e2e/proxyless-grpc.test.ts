// A proxyless gRPC client served by clinimesh: EMR's grpc-js-xds channel to `xds:///imaging.clinical`
// gets its listener, route, cluster and endpoints from clinimesh over ADS, and calls two imaging
// instances that sit behind real Envoy sidecars demanding mutual TLS (mesh mode STRICT). EMR joins as
// any workload does, with a join token and its node agent: the agent writes the certificate files the
// client's bootstrap names and carries its ADS stream to the control plane over mutual TLS, so no
// plaintext xDS port is opened. Removing an imaging instance moves every call to the other.
import { readFile } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { spiffeId } from '../../src/ca/spiffe.ts';
import { nodeId } from '../../src/xds/server/node-id.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import { CLUSTER, ENDPOINT, LISTENER, ROUTE } from '../../src/xds/resources/type-urls.ts';
import { describeWithEnvoy, dumpLogsOnFailure, type EnvoyHandle } from '../helpers/envoy.ts';
import {
  dropConnectionsTo,
  proxylessImagingClient,
  startImagingServer,
  type GrpcUpstream,
  type ImagingClient,
} from '../helpers/grpc.ts';
import {
  applyYaml,
  emrManifest,
  instances,
  meshManifest,
  NS,
  serviceManifest,
  startNodeAgent,
  startSidecar,
  type TestInstance,
} from '../helpers/mesh.ts';
import { waitFor } from '../helpers/wait.ts';

const IMAGING_MESH_PORT = 15041;
const IMAGING_APP_PORT = 50051;

const imagingManifest = (imaging: readonly TestInstance[]) =>
  serviceManifest({
    name: 'imaging',
    ports: [`{ name: grpc, port: ${IMAGING_MESH_PORT}, targetPort: ${IMAGING_APP_PORT}, protocol: grpc }`],
    instances: imaging,
  });

const emrCallingImaging = (emr: TestInstance) =>
  emrManifest(emr, ['{ service: imaging, port: grpc, localPort: 9201 }']);

describeWithEnvoy('a proxyless gRPC client (grpc-js-xds) calls imaging through mTLS sidecars', () => {
  let cp: RunningControlPlane;
  let client: ImagingClient | undefined;
  let agent: Awaited<ReturnType<typeof startNodeAgent>> | undefined;
  const envoys: EnvoyHandle[] = [];
  const apps: GrpcUpstream[] = [];
  const imaging = instances('imaging', 2);
  const [emr] = instances('emr', 1) as [TestInstance];
  const emrNode = nodeId({ namespace: NS, service: 'emr', instance: emr.name });

  async function countServers(calls: number): Promise<{ counts: Map<string, number>; failures: string[] }> {
    const counts = new Map<string, number>();
    const failures: string[] = [];
    for (let i = 0; i < calls; i++) {
      try {
        const answer = await client!.query(`study-${i}`);
        counts.set(answer.served_by, (counts.get(answer.served_by) ?? 0) + 1);
      } catch (err) {
        failures.push((err as Error).message);
      }
    }
    return { counts, failures };
  }

  beforeAll(async () => {
    cp = await startControlPlane({ trustDomain: 'hospital.local', xdsPort: 0, xdsRestPort: 0, adminPort: 0 });
    await applyYaml(cp, [meshManifest, imagingManifest(imaging), emrCallingImaging(emr)].join('---\n'));
    for (const i of imaging)
      apps.push(await startImagingServer({ name: i.name, host: i.address, port: IMAGING_APP_PORT }));
    envoys.push(...(await Promise.all(imaging.map((i) => startSidecar(cp, 'imaging', i.name)))));
    agent = await startNodeAgent(cp, 'emr', emr.name, { proxyless: true });
    client = proxylessImagingClient(
      'imaging.clinical',
      JSON.parse(await readFile(agent.bootstrapPath, 'utf8')) as object,
    );
    await waitFor(async () => (await client!.query('warm-up', 2_000)).served_by, {
      what: 'the proxyless client to reach imaging',
      timeoutMs: 20_000,
    });
  });

  afterEach(dumpLogsOnFailure(() => envoys));
  afterAll(async () => {
    client?.close();
    if (agent?.xdsProxyPort) dropConnectionsTo(agent.xdsProxyPort);
    agent?.stop();
    await Promise.all(envoys.map((e) => e.stop()));
    await Promise.all(apps.map((a) => a.close()));
    await cp?.stop();
  });

  it('balances calls across both imaging instances, with real answers', async () => {
    const { counts, failures } = await countServers(30);
    expect(failures).toEqual([]);
    expect([...counts.keys()].sort()).toEqual(['imaging-1', 'imaging-2']);
    expect(Math.min(...counts.values())).toBeGreaterThanOrEqual(5);
    const answer = await client!.query('CT-2024-0042');
    expect(answer.study).toBe('CT-2024-0042');
  });

  it("reaches the sidecars over mutual TLS with EMR's SPIFFE identity", async () => {
    // The sidecar sets x-forwarded-client-cert from the client certificate it verified (STRICT mode).
    const answer = await client!.query('MR-7');
    expect(answer.xfcc).toContain(`URI=${spiffeId('hospital.local', { namespace: NS, service: 'emr' })}`);
    for (const e of envoys) {
      const stats = await e.stats('listener\\..*ssl\\.handshake');
      expect(
        Object.values(stats).reduce((a, b) => a + b, 0),
        `${e.name}: ${JSON.stringify(stats)}`,
      ).toBeGreaterThan(0);
    }
  });

  it('has ACKed the listener, route, cluster and endpoints without a NACK', async () => {
    const types = await waitFor(
      async () => {
        const s = cp.statuses.all().find((x) => x.nodeId === emrNode);
        const all = ([CLUSTER, ENDPOINT, LISTENER, ROUTE] as const).map((t) => s?.types.get(t));
        return all.every((t) => t?.ackedVersion) ? all : undefined;
      },
      { what: 'the proxyless client to ACK CDS, EDS, LDS and RDS' },
    );
    for (const t of types) expect(t?.lastNack).toBeUndefined();
    const listeners = [...(cp.cache.get(emrNode, LISTENER)?.resources.keys() ?? [])];
    expect(listeners).toEqual(['imaging.clinical']);
  });

  it('moves every call to imaging-2 when imaging-1 is removed', async () => {
    await applyYaml(cp, imagingManifest([imaging[1]!]));
    const failures: string[] = [];
    await waitFor(
      async () => {
        const recent = await countServers(10);
        failures.push(...recent.failures);
        return recent.counts.get('imaging-2') === 10;
      },
      { what: 'every proxyless call to land on imaging-2', timeoutMs: 10_000 },
    );
    expect(failures).toEqual([]);
    // Re-planned after the apply, EMR is still served as a proxyless client, not as an Envoy.
    expect([...(cp.cache.get(emrNode, LISTENER)?.resources.keys() ?? [])]).toEqual(['imaging.clinical']);
    const before = apps[0]!.count;
    await countServers(10);
    expect(apps[0]!.count).toBe(before);
  });
});
