// HIS instances come and go through Consul (here a faithful double of its HTTP API; a real agent
// when CONSUL_HTTP_ADDR is set): a new instance registered in Consul gets traffic, one marked
// critical stops getting it without a failed request, and when Consul goes away the sidecars keep
// the last known instances until it is back.
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { consulConfigFromEnv } from '../../src/consul/config.ts';
import { startControlPlane, type RunningControlPlane } from '../../src/main.ts';
import { ConsulDouble } from '../consul-double/server.ts';
import { adminRequest } from '../helpers/admin.ts';
import { describeWithEnvoy, dumpLogsOnFailure, type EnvoyHandle } from '../helpers/envoy.ts';
import {
  applyYaml,
  emrManifest,
  EMR_TO_HIS_PORT,
  HIS_APP_PORT,
  HIS_MESH_PORT,
  instances,
  meshManifest,
  NS,
  startSidecar,
} from '../helpers/mesh.ts';
import { httpRequest, startHttpUpstream, type ServedBy, type Upstream } from '../helpers/upstream.ts';
import { waitFor } from '../helpers/wait.ts';

const hisFromConsul = `apiVersion: clinimesh.io/v1alpha1
kind: Service
metadata: { name: his, namespace: ${NS} }
spec:
  ports: [{ name: http, port: ${HIS_MESH_PORT}, targetPort: ${HIS_APP_PORT}, protocol: http }]
  discovery: { mode: consul }
`;

describeWithEnvoy('discovery through Consul with real Envoy', () => {
  let consul: ConsulDouble;
  let cp: RunningControlPlane;
  const envoys: EnvoyHandle[] = [];
  const apps: Upstream[] = [];
  const his = instances('his', 2);
  const [emr] = instances('emr', 1) as [{ name: string; address: string }];
  const failures: number[] = [];

  async function servedBy(): Promise<string | undefined> {
    const res = await httpRequest(`http://${emr.address}:${EMR_TO_HIS_PORT}/patients/9`, {
      timeoutMs: 5_000,
    });
    if (res.status !== 200) failures.push(res.status);
    return res.status === 200 ? (JSON.parse(res.body) as ServedBy).served_by : undefined;
  }

  /** Polls until `n` requests in a row are served as `ok` says; counts failures on the way. */
  const until = (ok: (served: string[]) => boolean, what: string, timeoutMs = 15_000) =>
    waitFor(
      async () => {
        const served: string[] = [];
        for (let i = 0; i < 8; i++) served.push((await servedBy()) ?? 'FAILED');
        return ok(served);
      },
      { what, timeoutMs },
    );

  const consulPut = (path: string, body?: unknown) =>
    fetch(`http://${consul.address}${path}`, {
      method: 'PUT',
      body: body === undefined ? undefined : JSON.stringify(body),
    }).then((r) => {
      if (!r.ok) throw new Error(`${path}: ${r.status}`);
    });

  const register = (i: { name: string; address: string }) =>
    consulPut('/v1/agent/service/register', {
      ID: i.name,
      Name: 'his',
      Address: i.address,
      Port: HIS_MESH_PORT,
      Meta: { 'clinimesh-app-address': i.address, zone: 'a' },
      Check: { CheckID: `${i.name}-ttl`, TTL: '10m', Status: 'passing' },
    });

  beforeAll(async () => {
    consul = await ConsulDouble.start();
    const config = consulConfigFromEnv({ CONSUL_HTTP_ADDR: consul.address });
    if (!config.ok) throw new Error(JSON.stringify(config.errors));
    cp = await startControlPlane({
      trustDomain: 'hospital.local',
      xdsPort: 0,
      xdsRestPort: 0,
      adminPort: 0,
      consul: config.value,
    });
    await applyYaml(cp, [meshManifest, hisFromConsul, emrManifest(emr)].join('---\n'));
    for (const h of his)
      apps.push(await startHttpUpstream({ name: h.name, host: h.address, port: HIS_APP_PORT }));
    await register(his[0]!);
    // his-1 exists only in Consul: its sidecar is configured from what Consul says about it.
    await waitFor(async () => cp.cache.has(`${NS}/his/${his[0]!.name}`), {
      what: 'a snapshot for the Consul-discovered his-1',
    });
    envoys.push(await startSidecar(cp, 'his', his[0]!.name), await startSidecar(cp, 'emr', emr.name));
    await waitFor(async () => (await servedBy()) === his[0]!.name, {
      what: 'EMR to reach his-1',
      timeoutMs: 20_000,
    });
    failures.length = 0;
  });

  afterEach(dumpLogsOnFailure(() => envoys));
  afterAll(async () => {
    await Promise.all(envoys.map((e) => e.stop()));
    await Promise.all(apps.map((a) => a.close()));
    await cp?.stop();
    await consul?.stop();
  });

  it('sends traffic to a HIS instance newly registered in Consul', async () => {
    await register(his[1]!);
    await waitFor(async () => cp.cache.has(`${NS}/his/${his[1]!.name}`), { what: 'a snapshot for his-2' });
    envoys.push(await startSidecar(cp, 'his', his[1]!.name));
    await until((s) => s.includes(his[1]!.name) && s.includes(his[0]!.name), 'both instances to serve');
    expect(failures).toEqual([]);
  });

  it('stops sending traffic to an instance Consul marks critical, without a failed request', async () => {
    await consulPut(`/v1/agent/check/fail/${his[1]!.name}-ttl`);
    await until((s) => s.every((x) => x === his[0]!.name), 'all traffic on his-1');
    expect(failures).toEqual([]);
    const eds = await envoys.find((e) => e.name === emr.name)!.clusterEndpoints(`outbound|http|his.${NS}`);
    expect(eds.map((h) => h.address)).toEqual([`${his[0]!.address}:${HIS_MESH_PORT}`]);
  });

  it('keeps serving the last known instances while Consul is down, and recovers when it returns', async () => {
    await consulPut(`/v1/agent/check/pass/${his[1]!.name}-ttl`);
    await until((s) => s.includes(his[1]!.name), 'his-2 back in rotation');
    await consul.stop();
    await waitFor(
      async () => {
        const s = (await adminRequest(cp, 'GET', '/v1/status')).json as {
          consul: Array<{ consecutiveFailures: number; stalenessMs: number }>;
        };
        return s.consul[0]!.consecutiveFailures > 0 && s.consul[0]!.stalenessMs > 0;
      },
      { what: 'the admin status to show Consul is stale' },
    );
    const served = new Set<string>();
    for (let i = 0; i < 20; i++) served.add((await servedBy()) ?? 'FAILED');
    expect([...served].sort()).toEqual([his[0]!.name, his[1]!.name].sort());
    const metrics = (await adminRequest(cp, 'GET', '/metrics')).text;
    expect(metrics).toMatch(/clinimesh_consul_consecutive_failures\{service="his.clinical"\} [1-9]/);

    await consul.start();
    await consulPut(`/v1/agent/check/fail/${his[1]!.name}-ttl`).catch(async () => {
      // A restarted agent keeps its catalog in the double; re-register if it did not.
      await register(his[1]!);
      await consulPut(`/v1/agent/check/fail/${his[1]!.name}-ttl`);
    });
    await until(
      (s) => s.every((x) => x === his[0]!.name),
      'changes to flow again after Consul returns',
      40_000,
    );
    expect(failures).toEqual([]);
  });
});
